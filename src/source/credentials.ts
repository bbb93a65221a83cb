import { parseRemoteUrl } from "../desired-state/outbound-policy";
import { GitAuth } from "./git-source";

/** The config repo as configured for a stack: its URL and the credentials meant for it. */
export interface ConfigRepoCredentials {
  readonly url: string;
  readonly auth?: GitAuth;
}

/** A git URL split into what decides where credentials may go. */
interface RepoLocation {
  readonly scheme: string;
  readonly host: string;
  readonly port: number;
  /** Decoded, without trailing slashes or `.git`. */
  readonly segments: readonly string[];
}

/**
 * Whether a git URL names the config repo itself: the configured scheme, host and port, and the
 * configured path or a path below it (`.git` and trailing slashes aside). A local path never matches.
 */
export function isConfigRepoUrl(url: string, configRepoUrl: string): boolean {
  const target = repoLocation(url);
  const own = repoLocation(configRepoUrl);
  if (!target || !own) return false;
  if (target.scheme !== own.scheme || target.host !== own.host || target.port !== own.port) return false;
  if (target.segments.length < own.segments.length) return false;
  return own.segments.every((s, i) => target.segments[i] === s);
}

/**
 * The config repo's credentials for a git URL the repo's content names: only when the URL is the
 * config repo's own ({@link isConfigRepoUrl}); otherwise undefined, so a token or key never reaches
 * another host or another repository of the same host.
 */
export function credentialsFor(url: string, configRepo: ConfigRepoCredentials): GitAuth | undefined {
  return configRepo.auth && isConfigRepoUrl(url, configRepo.url) ? configRepo.auth : undefined;
}

function repoLocation(url: string): RepoLocation | undefined {
  const remote = parseRemoteUrl(url);
  if (!remote) return undefined;
  let segments: string[];
  try {
    segments = remote.path.split("/").map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
  // A path that climbs or hides a separator could name another repository than it seems to.
  if (segments.some((s) => s === "." || s === ".." || s.includes("/") || s.includes("\\"))) return undefined;
  segments = segments.filter((s) => s !== "");
  const last = segments.length - 1;
  if (last >= 0) segments[last] = segments[last]!.replace(/\.git$/, "");
  return { scheme: remote.scheme, host: remote.host, port: remote.port, segments: segments.filter((s) => s !== "") };
}
