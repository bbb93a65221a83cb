import * as fs from "node:fs";

/**
 * Whether a process with this pid is running: it exists (a process of another user, EPERM, counts) and,
 * on Linux, is not a zombie. A zombie has exited and only waits for its parent to reap it, so a lock or
 * a state file naming it is stale; a crash followed at once by another run used to see it as alive.
 * Elsewhere (no /proc) the answer is `kill(pid, 0)`'s.
 */
export function isProcessAlive(pid: number): boolean {
  // kill(0) and negative pids address process groups, not a process.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (process.platform !== "linux") return true;
  const state = processState(pid);
  // null: /proc is unreadable here (not mounted, hidepid), so kill(0) has the last word.
  return state === null ? true : state !== undefined && state !== "Z";
}

/**
 * The state letter of `/proc/<pid>/stat` (`R`, `S`, `D`, `Z` for a zombie, ...); undefined when the process
 * is gone, null when /proc cannot tell (not Linux, or not readable).
 */
export function processState(pid: number): string | undefined | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT" && fs.existsSync("/proc/self/stat") ? undefined : null;
  }
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so the state follows the last ")".
  const state = stat
    .slice(stat.lastIndexOf(")") + 1)
    .trim()
    .charAt(0);
  return state || null;
}
