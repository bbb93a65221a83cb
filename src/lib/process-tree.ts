import * as fs from "node:fs";

/** One process as /proc shows it. */
export interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  /** Session id: a process started detached (setsid) has one of its own. */
  readonly sid: number;
  /** Start time in clock ticks since boot: with the pid, it names one process (pids are reused). */
  readonly startTime: string;
  /** `R`, `S`, `D`, `Z` (zombie)... */
  readonly state: string;
}

/** The fields of `/proc/<pid>/stat` after the command name (state, ppid, ...), or undefined when the process is gone. */
export function procStatFields(pid: number | string): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: the fields start after its last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** One process from /proc, or undefined when it is gone (or there is no /proc). */
export function processEntry(pid: number | string): ProcessEntry | undefined {
  const f = procStatFields(pid);
  if (!f) return undefined;
  return { pid: Number(pid), state: f[0] ?? "", ppid: Number(f[1]), sid: Number(f[3]), startTime: f[19] ?? "" };
}

/** Every process of this machine (Linux /proc; empty elsewhere). */
export function processTable(): ProcessEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return [];
  }
  return names.filter((n) => /^\d+$/.test(n)).flatMap((n) => processEntry(n) ?? []);
}

/**
 * `root` and its descendants, found through `/proc/<pid>/task/<tid>/children` instead of a scan of
 * every process (a watchdog looking twice a second costs next to nothing while ferry idles);
 * undefined when the kernel has no such files (then use {@link processTable}).
 */
export function subtreeTable(root: number): ProcessEntry[] | undefined {
  if (!fs.existsSync(`/proc/${process.pid}/task/${process.pid}/children`)) return undefined;
  const out: ProcessEntry[] = [];
  const seen = new Set<number>();
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const entry = processEntry(pid);
    if (!entry) continue;
    out.push(entry);
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      try {
        for (const c of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(/\s+/)) if (c !== "") queue.push(Number(c));
      } catch {
        // the thread ended
      }
    }
  }
  return out;
}

/** The descendants of `root` in a process table, parents before children (pure). */
export function descendantsOf(table: readonly ProcessEntry[], root: number): ProcessEntry[] {
  const children = new Map<number, ProcessEntry[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: ProcessEntry[] = [];
  const seen = new Set<number>([root]);
  const walk = (pid: number): void => {
    for (const c of children.get(pid) ?? []) {
      if (seen.has(c.pid)) continue;
      seen.add(c.pid);
      out.push(c);
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}

/** pid and its descendants (Linux /proc). */
export function processTree(root: number): number[] {
  return [root, ...descendantsOf(processTable(), root).map((p) => p.pid)];
}
