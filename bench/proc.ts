import * as fs from "node:fs";
import { processTree } from "../test/helpers/process-tree";

export { processTree };

/** CPU seconds (user + system) used so far by a process tree. */
export function cpuSeconds(root: number): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      const f = fs
        .readFileSync(`/proc/${pid}/stat`, "utf8")
        .slice(fs.readFileSync(`/proc/${pid}/stat`, "utf8").lastIndexOf(")") + 2)
        .split(" ");
      total += (Number(f[11]) + Number(f[12])) / tick;
    } catch {
      // gone
    }
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
