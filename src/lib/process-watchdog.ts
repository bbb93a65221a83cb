// The process watchdog: a tiny detached process that outlives ferry by at most one poll and ends
// what ferry started. Node cannot ask the kernel to kill its children with it (PR_SET_PDEATHSIG), so
// a ferry killed with SIGKILL would leave the Pulumi CLI, its language host and provider plugins
// (and helm, git) running, holding the stack's lock. The watchdog keeps a snapshot of ferry's
// descendants (orphans are reparented when ferry dies, so the tree must be known beforehand) and,
// once ferry is gone, kills them and what they started since. A process started after the last
// snapshot whose parent died with ferry (the Pulumi CLI exits on its closed pipes) is found by the
// mark ferry puts in its environment, which every process it starts inherits.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { isProcessAlive } from "./process-alive";
import { descendantsOf, processEntry, ProcessEntry, processTable, subtreeTable } from "./process-tree";

/** How often the watchdog looks at the owner and its descendants. */
const POLL_MS = 500;
/** The environment variable that marks the processes a ferry process started: `<pid>:<start time>`. */
export const OWNER_ENV = "FERRY_PROCESS_OWNER";

let started: number | undefined;

/**
 * Starts (once per process) the watchdog of this process: when this process dies, however it dies,
 * the processes it started are killed within about half a second. Processes started detached (a
 * session of their own, like a local control plane's supervisor) are left alone. Linux only; a
 * no-op elsewhere and when run from TypeScript sources. Returns the watchdog's pid, if any.
 */
export function watchOwnProcesses(): number | undefined {
  if (started !== undefined) return started;
  if (process.platform !== "linux" || !__filename.endsWith(".js")) return undefined;
  const mark = `${process.pid}:${processEntry(process.pid)?.startTime ?? ""}`;
  process.env[OWNER_ENV] = mark;
  const child = spawn(process.execPath, [__filename, String(process.pid), mark], { detached: true, stdio: "ignore" });
  child.unref();
  started = child.pid;
  return started;
}

/** The descendants of `owner` the watchdog is responsible for: those in the owner's session (pure). */
export function ownedProcesses(table: readonly ProcessEntry[], owner: number, self: number): ProcessEntry[] {
  const ownerEntry = table.find((p) => p.pid === owner);
  if (!ownerEntry) return [];
  return descendantsOf(table, owner).filter((p) => p.sid === ownerEntry.sid && p.pid !== self && p.state !== "Z");
}

/** The processes of a snapshot that still run as themselves (same pid and start time), with what they started since. */
export function survivors(snapshot: readonly ProcessEntry[], table: readonly ProcessEntry[]): ProcessEntry[] {
  const now = new Map(table.map((p) => [p.pid, p]));
  const alive = snapshot.filter((p) => {
    const q = now.get(p.pid);
    return q !== undefined && q.startTime === p.startTime && q.state !== "Z";
  });
  const out = new Map(alive.map((p) => [p.pid, p]));
  for (const p of alive) for (const d of descendantsOf(table, p.pid)) if (d.state !== "Z" && d.sid === p.sid) out.set(d.pid, d);
  return [...out.values()];
}

/** Whether an environment (`/proc/<pid>/environ`: NUL-separated) carries this owner's mark (pure). */
export function carriesMark(environ: string, mark: string): boolean {
  return environ.split("\0").includes(`${OWNER_ENV}=${mark}`);
}

function environOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, "utf8");
  } catch {
    return ""; // gone, or not ours to read
  }
}

/** The watchdog's loop: snapshot the owner's processes until the owner is gone, then kill them all. */
function watch(owner: number, mark: string): void {
  const sid = processEntry(owner)?.sid;
  let snapshot: ProcessEntry[] = [];
  const tick = (): void => {
    if (isProcessAlive(owner)) {
      snapshot = ownedProcesses(subtreeTable(owner) ?? processTable(), owner, process.pid);
      setTimeout(tick, POLL_MS);
      return;
    }
    const table = processTable();
    const marked = table.filter(
      (p) => p.sid === sid && p.pid !== process.pid && p.state !== "Z" && !!mark && carriesMark(environOf(p.pid), mark),
    );
    const doomed = new Map([...survivors(snapshot, table), ...marked].map((p) => [p.pid, p]));
    // SIGKILL at once: nobody reads their output any more, and a graceful cancel of an update could
    // outlast the next run, which would then find the stack locked by a live process.
    for (const p of doomed.values()) {
      const q = processEntry(p.pid);
      if (q?.startTime !== p.startTime) continue;
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    process.exit(0);
  };
  tick();
}

if (require.main === module) {
  const owner = Number(process.argv[2]);
  if (Number.isInteger(owner) && owner > 0) watch(owner, process.argv[3] ?? "");
}
