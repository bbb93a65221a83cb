import * as os from "node:os";
import * as path from "node:path";

/** The root of the ferry package (where Pulumi.yaml and package.json live). */
export function ferryRoot(): string {
  // Compiled files live in dist/src/lib; sources (ts-node) in src/lib.
  const here = __dirname;
  const parts = here.split(path.sep);
  const distIndex = parts.lastIndexOf("dist");
  if (distIndex > 0) return parts.slice(0, distIndex).join(path.sep) || path.sep;
  return path.resolve(here, "..", "..");
}

/** Directory for rebuildable data (the toolchain): $FERRY_CACHE_DIR or the user cache dir. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_CACHE_DIR) return path.resolve(env.FERRY_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : path.join(os.homedir(), ".cache");
  return path.join(base, "ferry");
}

/** Directory for ferry's own state (checkouts, workspaces, the default backend): $FERRY_STATE_DIR or the user state dir. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_STATE_DIR) return path.resolve(env.FERRY_STATE_DIR);
  const base = env.XDG_STATE_HOME ? env.XDG_STATE_HOME : path.join(os.homedir(), ".local", "state");
  return path.join(base, "ferry");
}
