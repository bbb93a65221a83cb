import * as fs from "node:fs";
import { processTree, procStatFields } from "../test/helpers/process-tree";

/** CPU seconds (user + system) used so far by a process tree. */
export function cpuSeconds(root: number): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of processTree(root)) {
    const f = procStatFields(pid);
    if (f) total += (Number(f[11]) + Number(f[12])) / tick; // utime, stime
  }
  return total;
}

/** Resident memory of a process tree, in MiB. */
export function rssMiB(root: number): number {
  let kb = 0;
  for (const pid of processTree(root)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
      kb += Number(m?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}
