import * as fs from "node:fs";
import * as path from "node:path";
import * as semver from "semver";
import { simpleGit, SimpleGit } from "simple-git";
import { describeGitRef, GitRef } from "../desired-state/git-ref";

/** Credentials for a git repository; all optional. Never logged. */
export interface GitAuth {
  /** HTTPS token (GitHub/GitLab personal or app token), sent as an HTTP header, never in the URL. */
  readonly token?: string;
  /** HTTPS basic auth (a Flux source's Secret `username`/`password`), sent as an HTTP header, never in the URL. */
  readonly username?: string;
  readonly password?: string;
  /** SSH deploy key file (`identity`). */
  readonly sshKeyFile?: string;
  /** known_hosts file for SSH; without it, host keys are checked against the user's known_hosts. */
  readonly knownHostsFile?: string;
}

/** Where the desired state comes from. */
export interface GitSource {
  /** A local path, `file://`, `https://` or `ssh://` (or scp-like `git@host:org/repo`) URL. */
  readonly url: string;
  /** A branch, tag or commit SHA; the remote's default branch when absent. */
  readonly ref?: string;
  readonly auth?: GitAuth;
}

/** The commit a checkout is at: what the stack history records. */
export interface Revision {
  readonly sha: string;
  /** The branch, tag, ref name or commit asked for (for a semver range, the tag chosen), or the default branch. */
  readonly ref: string;
  readonly author: string;
  readonly authorEmail: string;
  readonly committer: string;
  readonly committerEmail: string;
  /** ISO 8601 commit time. */
  readonly date: string;
  readonly subject: string;
}

/** A source that could not be fetched or whose ref does not exist. */
export class SourceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SourceError";
  }
}

/** Normalises a local path to an absolute path; URLs are returned as they are. */
export function normalizeRepoUrl(url: string, cwd: string = process.cwd()): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]+@[^/]+:/.test(url)) return url;
  return path.resolve(cwd, url);
}

/** Removes credentials from a URL before it is shown anywhere. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}

/** Environment variables git may see: enough to run, reach the network and verify TLS; nothing that runs programs. */
const GIT_ENV_ALLOWED = [
  "PATH",
  "HOME",
  "USER",
  "LANG",
  "LC_ALL",
  "TMPDIR",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "GIT_SSL_CAINFO",
  "SSH_AUTH_SOCK",
];

/** How far git may be trusted with a repository: the config repo, or a repository its content names. */
export interface GitAccess {
  /**
   * The URL comes from repo content (a chart's git repository): git runs without the user's git
   * config, credential helpers, ssh agent or default keys, follows no redirects and speaks only
   * remote protocols, so nothing but the credentials given reaches the named host.
   */
  readonly untrusted?: boolean;
}

function gitFor(dir: string | undefined, auth: GitAuth | undefined, access: GitAccess = {}): SimpleGit {
  const config: string[] = [];
  const basic = auth?.token
    ? `x-access-token:${auth.token}`
    : auth?.username !== undefined
      ? `${auth.username}:${auth.password ?? ""}`
      : undefined;
  if (basic !== undefined) config.push(`http.extraHeader=Authorization: Basic ${Buffer.from(basic).toString("base64")}`);
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: "0" };
  for (const k of GIT_ENV_ALLOWED) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  const quote = (p: string): string => `'${p.replace(/'/g, "'\\''")}'`;
  if (access.untrusted) {
    env.GIT_CONFIG_GLOBAL = "/dev/null";
    env.GIT_CONFIG_NOSYSTEM = "1";
    delete env.SSH_AUTH_SOCK;
    config.push("http.followRedirects=false", "credential.helper=", "protocol.allow=never");
    for (const p of ["https", "http", "ssh", "git"]) config.push(`protocol.${p}.allow=always`);
  }
  if (auth?.sshKeyFile || access.untrusted) {
    // Only the key given (none for an untrusted source without one): no agent, no default keys, no user ssh config.
    const identity = auth?.sshKeyFile ? `-i ${quote(auth.sshKeyFile)} ` : "-o IdentityFile=none ";
    const isolation = access.untrusted ? "-F /dev/null -o IdentityAgent=none " : "";
    const known = auth?.knownHostsFile ? ` -o UserKnownHostsFile=${quote(auth.knownHostsFile)}` : "";
    env.GIT_SSH_COMMAND = `ssh ${isolation}${identity}-o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o BatchMode=yes${known}`;
  }
  // The SSH command and the settings above are ours (constants and key paths), so simple-git may pass them on.
  return simpleGit({
    baseDir: dir,
    config,
    timeout: { block: 120_000 },
    unsafe: {
      allowUnsafeSshCommand: !!env.GIT_SSH_COMMAND,
      allowUnsafeConfigPaths: !!access.untrusted,
      allowUnsafeCredentialHelper: !!access.untrusted,
      allowUnsafeProtocolOverride: !!access.untrusted,
    },
  }).env(env);
}

/**
 * Brings `dir` to the commit `source.ref` names (a branch, else a tag, else a commit; the remote's
 * default branch when absent): clones on first use, fetches afterwards, then checks out that commit
 * detached with a clean tree. Returns the commit's metadata.
 */
export async function checkoutSource(source: GitSource, dir: string): Promise<Revision> {
  return checkoutGitRef(source, source.ref ? { kind: "auto", ref: source.ref } : undefined, dir);
}

/**
 * Brings `dir` to the commit a typed {@link GitRef} names in the repository at `remote.url` (the
 * remote's default branch when `ref` is undefined): clones on first use, fetches afterwards, then
 * checks out that commit detached with a clean tree. Returns the commit's metadata.
 */
export async function checkoutGitRef(
  remote: Pick<GitSource, "url" | "auth">,
  ref: GitRef | undefined,
  dir: string,
  access: GitAccess = {},
): Promise<Revision> {
  const url = normalizeRepoUrl(remote.url);
  const shown = redactUrl(url);
  try {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    if (!fs.existsSync(path.join(dir, ".git")) || (await remoteUrl(dir)) !== url) {
      fs.rmSync(dir, { recursive: true, force: true });
      await gitFor(undefined, remote.auth, access).clone(url, dir, ["--no-checkout", "--origin", "origin"]);
    } else {
      await gitFor(dir, remote.auth, access).fetch(["origin", "--prune", "--force", "--tags", "+refs/heads/*:refs/remotes/origin/*"]);
    }
  } catch (err) {
    throw new SourceError(`cannot fetch ${shown}: ${firstLine(err)}`, { cause: err });
  }
  const git = gitFor(dir, remote.auth, access);
  const resolved = await resolveRef(git, ref, shown);
  await git.raw(["checkout", "--force", "--detach", resolved.sha]);
  await git.raw(["clean", "-ffdx"]);
  return revisionOf(git, resolved.sha, resolved.ref);
}

/**
 * The files a change touches: `git diff --name-only base...head` in a checkout made by
 * {@link checkoutSource} (changes on `head` since it left `base`, as a pull request shows them).
 */
export async function changedPaths(dir: string, base: string, head: string, auth?: GitAuth): Promise<string[]> {
  const git = gitFor(dir, auth);
  const { sha } = await resolveRef(git, { kind: "auto", ref: base }, "the config repo");
  const out = await git.raw(["diff", "--name-only", "--no-renames", `${sha}...${head}`]);
  return out.split("\n").filter(Boolean);
}

/** Metadata of one commit of a checkout. */
export async function revisionOf(git: SimpleGit, sha: string, ref: string): Promise<Revision> {
  const out = await git.raw(["log", "-1", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%cI%x00%s", sha]);
  const [full, author, authorEmail, committer, committerEmail, date, subject] = out.trim().split("\0");
  return {
    sha: full ?? sha,
    ref,
    author: author ?? "",
    authorEmail: authorEmail ?? "",
    committer: committer ?? "",
    committerEmail: committerEmail ?? "",
    date: date ?? "",
    subject: subject ?? "",
  };
}

async function remoteUrl(dir: string): Promise<string | undefined> {
  try {
    return (await simpleGit(dir).raw(["config", "--get", "remote.origin.url"])).trim();
  } catch {
    return undefined;
  }
}

/** The commit `ref` names in a clone made by {@link checkoutGitRef}, and the name recorded for it. */
async function resolveRef(git: SimpleGit, ref: GitRef | undefined, shown: string): Promise<{ sha: string; ref: string }> {
  const tryRev = async (rev: string): Promise<string | undefined> => {
    try {
      return (await git.raw(["rev-parse", "--verify", "--quiet", `${rev}^{commit}`])).trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const found = (sha: string | undefined, name: string): { sha: string; ref: string } => {
    if (!sha) throw new SourceError(`${shown} has no ${describeGitRef(ref ?? { kind: "branch", branch: name })}`);
    return { sha, ref: name };
  };
  /** A commit no branch or tag brought may still be fetchable by its SHA. */
  const commit = async (sha: string): Promise<string | undefined> => {
    // Only hex reaches git here, so a ref can never be read as an option.
    if (!/^[0-9a-f]{4,40}$/i.test(sha)) return undefined;
    const local = await tryRev(sha);
    if (local || sha.length !== 40) return local;
    await git.fetch(["origin", sha]).catch(() => undefined);
    return tryRev(sha);
  };
  if (ref === undefined) {
    let head: string;
    try {
      head = (await git.raw(["symbolic-ref", "--short", "refs/remotes/origin/HEAD"])).trim().replace(/^origin\//, "");
    } catch {
      head = "main";
    }
    const sha = await tryRev(`refs/remotes/origin/${head}`);
    if (!sha) throw new SourceError(`${shown} has no default branch; pass a ref (branch, tag or commit)`);
    return { sha, ref: head };
  }
  switch (ref.kind) {
    case "branch":
      return found(await tryRev(`refs/remotes/origin/${ref.branch}`), ref.branch);
    case "tag":
      return found(await tryRev(`refs/tags/${ref.tag}`), ref.tag);
    case "semver": {
      const tags = (await git.raw(["for-each-ref", "--format=%(refname:strip=2)", "refs/tags"])).split("\n").filter(Boolean);
      const tag = highestMatchingTag(tags, ref.range, shown);
      return found(await tryRev(`refs/tags/${tag}`), tag);
    }
    case "commit":
      return found(await commit(ref.sha), ref.sha);
    case "name": {
      if (!isFetchableRefName(ref.name)) {
        throw new SourceError(`${shown}: ref "${ref.name}" is not a full ref name; write it like refs/heads/main or refs/pull/1/head`);
      }
      try {
        await git.fetch(["origin", ref.name]);
      } catch (err) {
        throw new SourceError(`${shown} has no ref "${ref.name}": ${firstLine(err)}`, { cause: err });
      }
      return found(await tryRev("FETCH_HEAD"), ref.name);
    }
    case "auto": {
      for (const candidate of [`refs/remotes/origin/${ref.ref}`, `refs/tags/${ref.ref}`]) {
        const sha = await tryRev(candidate);
        if (sha) return { sha, ref: ref.ref };
      }
      return found(await commit(ref.ref), ref.ref);
    }
  }
}

/**
 * The tag a semver range picks, as source-controller does: the highest version among the tags that
 * are versions (`v1.2.3` counts as 1.2.3) and satisfy the range; pre-releases only when the range
 * names one. Commas between comparators (`>=1.0.0, <2.0.0`, the Masterminds syntax Flux reads) mean
 * "and". Throws a SourceError naming the range when it is invalid or nothing matches.
 */
export function highestMatchingTag(tags: readonly string[], range: string, shown = "the repository"): string {
  const normalized = range.replace(/,/g, " ").trim();
  if (semver.validRange(normalized) === null) {
    throw new SourceError(`semver range "${range}" of ${shown} is not a valid range; write it like ">=1.0.0 <2.0.0" or "1.x"`);
  }
  const matching = tags
    .map((tag) => ({ tag, version: semver.parse(tag, { loose: true }) }))
    .filter((t): t is { tag: string; version: semver.SemVer } => t.version !== null && semver.satisfies(t.version, normalized))
    .sort((a, b) => semver.rcompare(a.version, b.version) || a.tag.localeCompare(b.tag));
  const best = matching[0];
  if (!best) {
    throw new SourceError(`${shown} has no tag matching semver range "${range}"; tag a version in that range, or change the range`);
  }
  return best.tag;
}

/** A full ref name safe to fetch as it is: `refs/...`, no option-like or malformed parts. */
function isFetchableRefName(name: string): boolean {
  return /^refs\/[A-Za-z0-9._\/-]+$/.test(name) && !/(^|\/)\.|\.\.|\/\/|\.lock$|\/$/.test(name);
}

function firstLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return (
    m
      .trim()
      .split("\n")
      .filter((l) => l.trim())
      .slice(-1)[0] ?? m
  );
}

/**
 * The commit a source's ref points to now, asked of the remote without fetching (`git ls-remote`),
 * so a poll that finds nothing new costs one round trip.
 */
export async function remoteHead(source: GitSource): Promise<string> {
  const url = normalizeRepoUrl(source.url);
  if (source.ref && /^[0-9a-f]{40}$/i.test(source.ref)) return source.ref.toLowerCase();
  const ask = async (): Promise<string> => {
    try {
      return await gitFor(undefined, source.auth).listRemote([url, ...(source.ref ? [source.ref, `${source.ref}^{}`] : ["HEAD"])]);
    } catch (err) {
      throw new SourceError(`cannot reach ${redactUrl(url)}: ${firstLine(err)}`, { cause: err });
    }
  };
  // simple-git answers "" for a git that exited non-zero without a word (seen under load with a
  // hundred stacks polling one repo): ask once more before saying the ref does not exist.
  let out = await ask();
  if (!out.trim()) out = await ask();
  const lines = out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t") as [string, string]);
  // A peeled annotated tag (^{}) names the commit; prefer it, then a branch, then anything.
  const pick = lines.find(([, r]) => r.endsWith("^{}")) ?? lines.find(([, r]) => r === `refs/heads/${source.ref}`) ?? lines[0];
  if (!pick) throw new SourceError(`${redactUrl(url)} has no ref "${source.ref ?? "HEAD"}"`);
  return pick[0];
}
