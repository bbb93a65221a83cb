import * as fs from "node:fs";
import { z } from "zod";
import { previewCommentMarker } from "../preview/render-preview";
import { SettingsError } from "../reconcile/stack-settings";

/** Where preview results go on GitHub: the API, the token, the repository and, as needed, the pull request and commit. */
export interface GitHubTarget {
  /** REST API root without a trailing slash, e.g. `https://api.github.com`. */
  readonly apiUrl: string;
  /** Never logged or shown in errors. */
  readonly token: string;
  /** `owner/name`. */
  readonly repo: string;
  /** The pull request to comment on. */
  readonly pr?: number;
  /** The commit (head of the pull request) that gets a status. */
  readonly sha?: string;
}

/** A commit status, as `POST /repos/{owner}/{repo}/statuses/{sha}` takes it. */
export interface CommitStatus {
  readonly state: "pending" | "success" | "failure" | "error";
  /** Names the check; one status per context is shown, the latest wins (e.g. `ferry/preview: dev`). */
  readonly context: string;
  /** Cut to 140 characters, GitHub's limit. */
  readonly description: string;
  readonly targetUrl?: string;
}

const DEFAULT_API_URL = "https://api.github.com";
const REQUEST_TIMEOUT_MS = 30_000;
const PAGE_SIZE = 100;
// A pull request has at most a few thousand comments; the cap only guards against a server that always says "next".
const MAX_PAGES = 100;
const STATUS_DESCRIPTION_MAX = 140;
const REPO_PATTERN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const SHA_PATTERN = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

const PERMISSIONS_HINT = "the workflow needs `permissions: pull-requests: write` and `statuses: write`";

const EventSchema = z.object({
  pull_request: z
    .object({
      number: z.number().int().positive(),
      head: z.object({ sha: z.string() }),
    })
    .optional(),
});

const CommentSchema = z.object({
  id: z.number(),
  body: z.string().nullish(),
  html_url: z.string().optional(),
  user: z.object({ login: z.string(), type: z.string().optional() }).nullish(),
});
type Comment = z.infer<typeof CommentSchema>;

/**
 * Resolves where to post: explicit options first, then GitHub Actions' environment (`GITHUB_TOKEN`,
 * `GITHUB_API_URL`, `GITHUB_REPOSITORY`, and the pull request number and head SHA from the event at `GITHUB_EVENT_PATH`).
 */
export function githubTarget(
  options: { repo?: string; pr?: number; sha?: string; apiUrl?: string },
  env: NodeJS.ProcessEnv = process.env,
): GitHubTarget {
  const token = env.GITHUB_TOKEN?.trim();
  if (!token) {
    throw new SettingsError(
      `GITHUB_TOKEN is not set: set it to a token with \`pull-requests: write\` and \`statuses: write\` permissions (in GitHub Actions: \`env: GITHUB_TOKEN: \${{ secrets.GITHUB_TOKEN }}\` and a \`permissions:\` block granting both)`,
    );
  }
  const apiUrl = (options.apiUrl ?? env.GITHUB_API_URL ?? DEFAULT_API_URL).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]/.test(apiUrl))
    throw new SettingsError(`GitHub API URL "${apiUrl}" is not an http(s) URL: fix --github-api-url or GITHUB_API_URL`);
  const repo = options.repo ?? env.GITHUB_REPOSITORY;
  if (!repo) throw new SettingsError("no GitHub repository: pass --github-repo <owner/name> or set GITHUB_REPOSITORY");
  if (!REPO_PATTERN.test(repo))
    throw new SettingsError(`GitHub repository "${repo}" is not owner/name: fix --github-repo or GITHUB_REPOSITORY`);

  let { pr, sha } = options;
  if ((pr === undefined || sha === undefined) && env.GITHUB_EVENT_PATH) {
    const event = readPullRequestEvent(env.GITHUB_EVENT_PATH);
    pr ??= event?.number;
    sha ??= event?.head.sha;
  }
  if (pr !== undefined && !(Number.isInteger(pr) && pr > 0))
    throw new SettingsError(`--github-pr must be a pull request number, got ${pr}`);
  if (sha !== undefined && !SHA_PATTERN.test(sha))
    throw new SettingsError(`--github-sha must be a full commit SHA (40 hex characters), got "${sha}"`);
  return { apiUrl, token, repo, pr, sha };
}

/** The pull request part of a GitHub Actions event file, or undefined for events of other kinds (push, schedule...). */
function readPullRequestEvent(file: string): z.infer<typeof EventSchema>["pull_request"] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new SettingsError(`GITHUB_EVENT_PATH ${file}: cannot read the event: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = EventSchema.safeParse(raw);
  if (!parsed.success) {
    throw new SettingsError(`GITHUB_EVENT_PATH ${file}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  return parsed.data.pull_request;
}

/**
 * Creates or updates the pull request's one preview comment of a stack (found by `previewCommentMarker(stack)`),
 * leaving every other comment alone.
 */
export async function upsertPreviewComment(
  target: GitHubTarget,
  stack: string,
  body: string,
): Promise<{ action: "created" | "updated"; id: number; url: string }> {
  const pr = requirePr(target);
  const marker = previewCommentMarker(stack);
  const text = body.startsWith(marker) ? body : `${marker}\n${body}`;
  const existing = await findPreviewComment(target, pr, marker);
  if (existing) {
    const path = `${repoPath(target)}/issues/comments/${existing.id}`;
    const updated = parseComment("PATCH", path, await request(target, "PATCH", path, "pull-requests", { body: text }));
    return { action: "updated", id: updated.id, url: updated.html_url ?? "" };
  }
  const path = `${repoPath(target)}/issues/${pr}/comments`;
  const created = parseComment("POST", path, await request(target, "POST", path, "pull-requests", { body: text }));
  return { action: "created", id: created.id, url: created.html_url ?? "" };
}

/** Sets a status on the target's commit (`target.sha`), shown on the pull request as a check. */
export async function setCommitStatus(target: GitHubTarget, status: CommitStatus): Promise<void> {
  const sha = requireSha(target);
  const chars = Array.from(status.description);
  const description =
    chars.length <= STATUS_DESCRIPTION_MAX ? status.description : chars.slice(0, STATUS_DESCRIPTION_MAX - 1).join("") + "…";
  await request(target, "POST", `${repoPath(target)}/statuses/${sha}`, "statuses", {
    state: status.state,
    context: status.context,
    description,
    ...(status.targetUrl ? { target_url: status.targetUrl } : {}),
  });
}

/**
 * The stack's comment: the first whose body starts with the marker; failing that, a bot's comment that
 * contains it (someone moved it). People quoting the marker in their own comments are never matched that way.
 */
async function findPreviewComment(target: GitHubTarget, pr: number, marker: string): Promise<Comment | undefined> {
  let fallback: Comment | undefined;
  for (let page = 1; page <= MAX_PAGES; page++) {
    const path = `${repoPath(target)}/issues/${pr}/comments?per_page=${PAGE_SIZE}&page=${page}`;
    const res = await request(target, "GET", path, "pull-requests");
    const comments = z.array(CommentSchema).safeParse(res.data);
    if (!comments.success)
      throw new Error(`GitHub API GET ${path}: unexpected response: ${comments.error.issues[0]?.message ?? "not a list"}`);
    for (const c of comments.data) {
      const body = c.body ?? "";
      if (body.trimStart().startsWith(marker)) return c;
      if (!fallback && body.includes(marker) && c.user?.type === "Bot") fallback = c;
    }
    if (comments.data.length < PAGE_SIZE || !/<[^>]*>\s*;\s*rel="next"/.test(res.link ?? "")) break;
  }
  return fallback;
}

function parseComment(method: string, path: string, res: { data: unknown }): Comment {
  const parsed = CommentSchema.safeParse(res.data);
  if (!parsed.success)
    throw new Error(`GitHub API ${method} ${path}: unexpected response: ${parsed.error.issues[0]?.message ?? "not a comment"}`);
  return parsed.data;
}

function requirePr(target: GitHubTarget): number {
  if (target.pr === undefined) {
    throw new SettingsError(
      "no pull request to comment on: pass --github-pr <number> (in GitHub Actions, a pull_request event provides it through GITHUB_EVENT_PATH)",
    );
  }
  return target.pr;
}

function requireSha(target: GitHubTarget): string {
  if (target.sha === undefined) {
    throw new SettingsError(
      "no commit to set a status on: pass --github-sha <full SHA> (in GitHub Actions, a pull_request event provides it through GITHUB_EVENT_PATH)",
    );
  }
  return target.sha;
}

function repoPath(target: GitHubTarget): string {
  if (!REPO_PATTERN.test(target.repo)) throw new SettingsError(`GitHub repository "${target.repo}" is not owner/name`);
  const [owner, name] = target.repo.split("/") as [string, string];
  return `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
}

/** One REST call; failures name the call and say how to fix permission or addressing problems, never the token. */
async function request(
  target: GitHubTarget,
  method: "GET" | "POST" | "PATCH",
  path: string,
  permission: "pull-requests" | "statuses",
  body?: unknown,
): Promise<{ data: unknown; link: string | null }> {
  const call = `GitHub API ${method} ${path}`;
  let status: number;
  let statusText: string;
  let text: string;
  let link: string | null;
  try {
    const res = await fetch(target.apiUrl + path, {
      method,
      headers: {
        Authorization: `Bearer ${target.token}`,
        Accept: "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "ferry",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    status = res.status;
    statusText = res.statusText;
    link = res.headers.get("link");
    text = await res.text();
  } catch (err) {
    throw new Error(redact(`${call} failed: ${describeError(err)}`, target.token), { cause: err });
  }
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = text;
  }
  if (status >= 200 && status < 300) return { data, link };
  const detail = githubMessage(data);
  const hint = errorHint(status, permission);
  throw new Error(
    redact(
      `${call} answered ${status}${statusText ? ` ${statusText}` : ""}${detail ? `: ${detail}` : ""}${hint ? `. ${hint}` : ""}`,
      target.token,
    ),
  );
}

/** GitHub's `message`, plus the `errors` details a 422 carries. */
function githubMessage(data: unknown): string {
  if (typeof data === "string") return data.slice(0, 200);
  if (!data || typeof data !== "object") return "";
  const { message, errors } = data as { message?: unknown; errors?: unknown };
  const parts = typeof message === "string" ? [message] : [];
  if (Array.isArray(errors)) {
    for (const e of errors.slice(0, 3)) {
      if (typeof e === "string") parts.push(e);
      else if (e && typeof e === "object") {
        const { message: m, code, field } = e as { message?: unknown; code?: unknown; field?: unknown };
        parts.push(typeof m === "string" ? m : [field, code].filter((x) => typeof x === "string").join(" "));
      }
    }
  }
  return parts.filter(Boolean).join("; ");
}

function errorHint(status: number, permission: "pull-requests" | "statuses"): string {
  switch (status) {
    case 401:
      return "Hint: the token was refused; set GITHUB_TOKEN to a valid, unexpired token";
    case 403:
      return `Hint: the token is missing the \`${permission}: write\` permission (${PERMISSIONS_HINT}; a pull request from a fork gets a read-only GITHUB_TOKEN)`;
    case 404:
      return `Hint: check the repository (--github-repo owner/name) and pull request (--github-pr); GitHub also answers 404 when the token cannot see the repository or lacks \`${permission}: write\``;
    default:
      return "";
  }
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError") return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  // fetch reports "fetch failed" and keeps the useful part (ECONNREFUSED, a TLS error...) in its cause.
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}

function redact(message: string, token: string): string {
  return token ? message.split(token).join("***") : message;
}
