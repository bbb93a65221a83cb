// Memory and CPU of a process tree, read from /proc (Linux), by role: the runner, the pulumi CLI,
// the language host with the program, the provider, anything else.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { descendantsOf, processTable } from "../src/lib/process-tree";
import { processTree, procStatFields } from "../test/helpers/process-tree";
import { MemoryProfile } from "./report";

/** Who a process is in ferry's tree. */
export type Role = "runner" | "pulumi CLI" | "language host + program" | "provider" | "other";

/** Every role, in the order the bench prints them. */
export const ROLES: readonly Role[] = ["runner", "pulumi CLI", "language host + program", "provider", "other"];

/** A process as the classifier needs it: its parent and the name it was started as. */
export interface NamedProcess {
  readonly pid: number;
  readonly ppid: number;
  /** Base name of argv[0] (or the kernel's comm). */
  readonly name: string;
}

/**
 * The role of each process under `root` (root included): root is the runner; `pulumi` the CLI;
 * `pulumi-language-*` and everything it starts (the node program) the language host;
 * `pulumi-resource-*` and its children the provider; the rest (git, helm, kubectl...) other. Pure.
 */
export function classifyTree(table: readonly NamedProcess[], root: number): Map<number, Role> {
  const roles = new Map<number, Role>([[root, "runner"]]);
  const byPid = new Map(table.map((p) => [p.pid, p]));
  // Parents come before children, so a child can inherit its parent's role.
  for (const d of descendantsOf(
    table.map((p) => ({ pid: p.pid, ppid: p.ppid, sid: 0, startTime: "", state: "" })),
    root,
  )) {
    const name = byPid.get(d.pid)?.name ?? "";
    const parent = roles.get(d.ppid);
    let role: Role;
    if (name.startsWith("pulumi-language-")) role = "language host + program";
    else if (name.startsWith("pulumi-resource-")) role = "provider";
    else if (name === "pulumi") role = "pulumi CLI";
    else if (parent === "language host + program" || parent === "provider") role = parent;
    else role = "other";
    roles.set(d.pid, role);
  }
  return roles;
}

function processName(pid: number): string {
  try {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
    if (argv0) return argv0.slice(argv0.lastIndexOf("/") + 1);
  } catch {
    // gone
  }
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

function statusKiB(pid: number, field: "VmRSS"): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return Number(m?.[1] ?? 0);
  } catch {
    return 0; // gone
  }
}

/** One process of the tree, sampled. */
export interface ProcessSample {
  readonly pid: number;
  /** argv[0]'s base name and, for node, its script, e.g. "node ferry". */
  readonly name: string;
  readonly role: Role;
  readonly mib: number;
}

/** Resident memory of each process of a tree now. */
export function sampleTree(root: number): ProcessSample[] {
  const table = processTable();
  const tree = new Set([root, ...descendantsOf(table, root).map((p) => p.pid)]);
  const named = table.filter((p) => tree.has(p.pid)).map((p) => ({ pid: p.pid, ppid: p.ppid, name: processName(p.pid) }));
  const names = new Map(named.map((p) => [p.pid, p.name]));
  return [...classifyTree(named, root)].map(([pid, role]) => ({
    pid,
    name: describeProcess(pid, names.get(pid) ?? ""),
    role,
    mib: statusKiB(pid, "VmRSS") / 1024,
  }));
}

function describeProcess(pid: number, name: string): string {
  if (name !== "node") return name;
  try {
    const script = fs
      .readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\0")
      .slice(1)
      .find((a) => !a.startsWith("-"));
    return script ? `node ${script.slice(script.lastIndexOf("/") + 1)}` : name;
  } catch {
    return name;
  }
}

/** Samples a process tree's RSS by role every `everyMs` until stopped; the peak and its breakdown. */
export class TreeSampler {
  private peak = 0;
  private atPeak: ProcessSample[] = [];
  private readonly rolePeaks: Record<string, number> = {};
  private samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly root: number,
    everyMs = 200,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.sample();
  }

  private sample(): void {
    const now = sampleTree(this.root);
    const byRole = sumByRole(now);
    const total = now.reduce((a, p) => a + p.mib, 0);
    this.samples++;
    for (const [role, mib] of Object.entries(byRole)) this.rolePeaks[role] = Math.max(this.rolePeaks[role] ?? 0, mib);
    if (total > this.peak) {
      this.peak = total;
      this.atPeak = now;
    }
  }

  /** Stops sampling and returns what was seen. */
  stop(): MemoryProfile {
    clearInterval(this.timer);
    return {
      peakMiB: this.peak,
      atPeak: sumByRole(this.atPeak),
      rolePeaks: { ...this.rolePeaks },
      samples: this.samples,
      processesAtPeak: [...this.atPeak].sort((a, b) => b.mib - a.mib).map((p) => ({ ...p, mib: Math.round(p.mib) })),
    };
  }
}

/** MiB per role of one sample. Pure. */
export function sumByRole(sample: readonly ProcessSample[]): Record<Role, number> {
  const out = Object.fromEntries(ROLES.map((r) => [r, 0])) as Record<Role, number>;
  for (const p of sample) out[p.role] += p.mib;
  return out;
}

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

/** What one timed command did: its wall time and, where /usr/bin/time is there, its peak RSS. */
export interface TimedCommand {
  readonly seconds: number;
  readonly peakRssMiB?: number;
  readonly stdout: string;
}

const GNU_TIME = "/usr/bin/time";

/**
 * Runs a command (argument array, no shell), timing it; its peak RSS comes from the kernel's rusage
 * through GNU time, exact for a short command that sampling could miss. Throws when it fails.
 */
export async function timedCommand(file: string, args: readonly string[]): Promise<TimedCommand> {
  const measured = fs.existsSync(GNU_TIME);
  const [cmd, argv] = measured ? [GNU_TIME, ["-f", "FERRY_BENCH_MAXRSS_KB=%M", file, ...args]] : [file, [...args]];
  const started = Date.now();
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  const seconds = (Date.now() - started) / 1000;
  if (code !== 0) throw new Error(`${file} ${args.join(" ")}: exit ${code}: ${stderr.slice(-2000)}`);
  const kb = /FERRY_BENCH_MAXRSS_KB=(\d+)/.exec(stderr)?.[1];
  return { seconds, peakRssMiB: kb ? Number(kb) / 1024 : undefined, stdout };
}
