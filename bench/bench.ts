// `npm run bench`: ferry's runner against `kubectl apply --server-side` on a local control plane,
// with generated config repos of N objects (a Namespace, a Deployment per ten objects, ConfigMaps).
// Every figure is measured beside kubectl's, in the same run, on the same objects (kubectl gets a
// namespace of its own). Not part of the tests.
//   BENCH_SIZES=1000  BENCH_IDLE_SECONDS=300  BENCH_DRIFT_INTERVAL=20s  npm run bench
//
// Phase 1 (runner with a short drift interval): 1. initial apply, 2. no-op drift tick.
// Phase 2 (the runner restarted, drift interval out of the way): 3. full refresh (the first run
// after a start), 5. heal of a deleted Deployment, 4. commit -> applied via the signed webhook,
// 7. idle CPU. 6. memory is sampled during phases 1's initial apply and 2's full refresh.
import { createHmac, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { devClusterDown, devClusterUp } from "../src/devcluster/dev-cluster";
import { parseDuration } from "../src/lib/duration";
import { RunRecord, StackStatus } from "../src/agent/stack-worker";
import { defaultToolchainOptions, ensureToolchain } from "../src/toolchain/install";
import { ConfigRepo } from "../test/helpers/config-repo";
import { RunnerProcess, startRunner, writeRunnerConfig } from "../test/helpers/runner-process";
import { manifests } from "./manifests";
import { BenchTimeout, DeploymentProbe, until } from "./probe";
import { cpuSeconds, ROLES, timedCommand, TreeSampler } from "./proc";
import { Figure, Measured, MemoryProfile, renderMemory, renderPeakProcesses, renderTable } from "./report";

/** What `npm run bench` measures, from the environment; the defaults live here. */
interface BenchOptions {
  readonly sizes: readonly number[];
  readonly idleSeconds: number;
  /** The drift interval of phase 1, whose first drift-only run is the no-op figure. */
  readonly driftInterval: string;
}

function benchOptions(env: NodeJS.ProcessEnv): BenchOptions {
  const sizes = (env.BENCH_SIZES ?? "1000").split(",").map((s) => Number(s.trim()));
  const bad = sizes.find((n) => !Number.isInteger(n) || n < 20);
  if (bad !== undefined) throw new Error(`BENCH_SIZES: ${env.BENCH_SIZES} must be whole numbers of at least 20, e.g. 1000 or 50,1000`);
  const idleSeconds = Number(env.BENCH_IDLE_SECONDS ?? "300");
  if (!(idleSeconds >= 0)) throw new Error(`BENCH_IDLE_SECONDS: ${env.BENCH_IDLE_SECONDS} must be a number of seconds`);
  const driftInterval = env.BENCH_DRIFT_INTERVAL ?? "20s";
  parseDuration(driftInterval);
  return { sizes, idleSeconds, driftInterval };
}

const WEBHOOK_SECRET = randomBytes(16).toString("hex");
const API_TOKEN = randomBytes(32).toString("hex");
/** The issue's idle target: 0.5 s of CPU over 5 minutes. */
const IDLE_CPU_TARGET = { seconds: 0.5, over: 300 };
/** After a run, give the watch a moment to list before changing anything behind the runner's back. */
const SETTLE_MS = 3000;
/** The Deployment the heal figure deletes (obj-10.yaml), and the ConfigMap the commit changes (obj-1.yaml). */
const HEALED = { name: "d-10", file: "obj-10.yaml" };
const CHANGED_FILE = "obj-1.yaml";

/** How long a run of `size` objects may take before its figure is a timeout. */
function runTimeoutMs(size: number): number {
  return 180_000 + size * 600;
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** Runs one measurement; a timeout or failure becomes the figure's value, never the bench's end. */
async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T | "timeout" | "failed"> {
  try {
    return await fn();
  } catch (err) {
    log(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof BenchTimeout ? "timeout" : "failed";
  }
}

function seconds(v: number | "timeout" | "failed" | undefined): Measured {
  return v === undefined ? "n/a" : v;
}

/** The runner's HTTP API as the bench uses it. */
class RunnerClient {
  constructor(
    readonly process: RunnerProcess,
    private readonly stack: string,
  ) {}

  async status(): Promise<StackStatus> {
    const res = await fetch(`${this.process.url}/api/stacks/${this.stack}`, { headers: { Authorization: `Bearer ${API_TOKEN}` } });
    if (!res.ok) throw new Error(`GET /api/stacks/${this.stack}: ${res.status} ${await res.text()}`);
    return (await res.json()) as StackStatus;
  }

  /** Waits for a history entry matching `match`, newest first. */
  async entry(what: string, match: (r: RunRecord) => boolean, timeoutMs: number): Promise<RunRecord> {
    let found: RunRecord | undefined;
    await until(what, async () => (found = (await this.status()).history.find(match)) !== undefined, timeoutMs);
    return found!;
  }

  /** Waits until no run is in progress and the stack is Ready. */
  async idle(timeoutMs: number): Promise<void> {
    await until("the stack is Ready", async () => (await this.status()).condition === "Ready", timeoutMs);
  }

  /** A signed GitHub push webhook for main. */
  async push(): Promise<void> {
    const body = JSON.stringify({ ref: "refs/heads/main" });
    const sig = `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`;
    const res = await fetch(`${this.process.url}/hooks/github`, {
      method: "POST",
      body,
      headers: { "Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": sig },
    });
    if (res.status !== 202) throw new Error(`POST /hooks/github: ${res.status} ${await res.text()}`);
  }

  /** SIGTERM, and kill -9 of the tree when it does not end in time. */
  async stop(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), 120_000)));
    // The deadline's timer is cleared, or it would hold the bench's exit for two minutes.
    const stopped = await Promise.race([this.process.stop().then(() => true), late]).finally(() => clearTimeout(timer));
    if (!stopped) {
      log("the runner did not stop within 120 s of SIGTERM; killing its tree");
      await this.process.crash();
    }
  }
}

function succeededRun(trigger: RunRecord["trigger"], after = 0) {
  return (r: RunRecord): boolean =>
    r.triggers.length === 1 && r.trigger === trigger && r.result === "Succeeded" && Date.parse(r.startedAt) >= after;
}

function describeRun(r: RunRecord | undefined): string | undefined {
  if (!r) return undefined;
  const c = r.changes;
  const changes = c ? Object.entries(c).filter(([k, n]) => k !== "unchanged" && typeof n === "number" && n > 0) : [];
  return `${r.triggers.join("+")} run, ${changes.length === 0 ? "no changes" : changes.map(([k, n]) => `${k} ${String(n)}`).join(", ")}`;
}

/** Every figure of one size, and the memory profiles behind the RSS rows. */
interface SizeResult {
  readonly figures: Figure[];
  readonly memory: Record<string, MemoryProfile | undefined>;
  readonly details: Record<string, unknown>;
}

async function main(): Promise<void> {
  const options = benchOptions(process.env);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-"));
  const results: SizeResult[] = [];
  let cluster: Awaited<ReturnType<typeof devClusterUp>> | undefined;
  let runner: RunnerClient | undefined;
  try {
    const toolchain = await ensureToolchain(defaultToolchainOptions());
    // Each size runs a Deployment per ten objects twice (ferry's and kubectl's): room for all the pods.
    const pods = Math.max(...options.sizes) / 5;
    log(`starting the local control plane`);
    cluster = await devClusterUp({ dir: path.join(work, "cluster"), toolchain, ownerPid: process.pid, nodes: Math.ceil((pods + 1) / 800) });
    const kubeconfig = cluster.kubeconfig;
    const kubectlBin = toolchain.bin("kubectl");
    const kubectl = (...args: string[]) => timedCommand(kubectlBin, ["--kubeconfig", kubeconfig, ...args]);
    const probe = new DeploymentProbe(kubeconfig);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FERRY_STATE_DIR: path.join(work, "state"),
      PULUMI_CONFIG_PASSPHRASE: "bench",
      FERRY_WEBHOOK_SECRET: WEBHOOK_SECRET,
      FERRY_API_TOKEN: API_TOKEN,
      FERRY_LOG_LEVEL: "warn",
    };

    for (const size of options.sizes) {
      const stack = `bench${size}`;
      const kns = `k${size}`;
      const timeout = runTimeoutMs(size);
      const figures: Figure[] = [];
      // The machine is shared: the load at the start says how far the figures can be trusted.
      const details: Record<string, unknown> = { loadavgAtStart: os.loadavg() };
      const memory: Record<string, MemoryProfile | undefined> = {};
      const add = (measure: string, ferry: Measured, kubectl: Measured, target: Figure["target"], note?: string) =>
        figures.push({ objects: size, measure, ferry, kubectl, target, note });

      const repo = await ConfigRepo.create(path.join(work, `repo-${size}`), "bench");
      const folder = (v: string) =>
        Object.fromEntries(Object.entries(manifests(stack, size, v)).map(([f, t]) => [`clusters/${stack}/${f}`, t]));
      await repo.edit(folder("1")).commitAll("Generated objects");
      const kdir = path.join(work, `kubectl-${size}`);
      fs.mkdirSync(kdir, { recursive: true });
      for (const [f, t] of Object.entries(manifests(kns, size, "1"))) fs.writeFileSync(path.join(kdir, f), t);
      const kapplyAll = () => kubectl("apply", "--server-side", "-f", kdir);

      const runnerConfig = (driftInterval: string) => {
        const file = path.join(work, `runner-${size}-${driftInterval}.yaml`);
        writeRunnerConfig(file, {
          listen: "127.0.0.1:0",
          stacks: [
            {
              name: stack,
              repo: repo.dir,
              ref: "main",
              path: `clusters/${stack}`,
              kubeconfig,
              watch: true,
              pollInterval: "1h",
              driftInterval,
            },
          ],
        });
        return file;
      };

      // --- Phase 1: the initial apply, then the drift interval with nothing drifted.
      log(`${size} objects: kubectl apply --server-side of all, into ${kns}`);
      const kInitial = await attempt("kubectl initial apply", kapplyAll);
      log(`${size} objects: ferry run, first run (driftInterval ${options.driftInterval})`);
      const t0 = Date.now();
      runner = new RunnerClient(await startRunner(runnerConfig(options.driftInterval), env), stack);
      let sampler = new TreeSampler(runner.process.child.pid!);
      const first = await attempt("initial apply", () => runner!.entry("the first run ends", (r) => r.trigger === "start", timeout));
      memory["initial apply"] = sampler.stop();
      details.initialWallSeconds = (Date.now() - t0) / 1000;
      details.initialRun = first;
      const initial = typeof first === "object" ? (first.result === "Succeeded" ? first.durationMs / 1000 : "failed") : first;
      add("1. initial apply (s)", initial, typeof kInitial === "object" ? kInitial.seconds : kInitial, { kind: "ratio", max: 3 });

      const firstEnd = typeof first === "object" ? Date.parse(first.startedAt) + first.durationMs : Date.now();
      log(`${size} objects: waiting for a drift-only run`);
      const noop = await attempt("no-op drift run", () =>
        runner!.entry("a drift-only run ends", succeededRun("drift", firstEnd), parseDuration(options.driftInterval) + timeout),
      );
      details.noopRun = noop;
      const kNoop = await attempt("kubectl no-op apply", kapplyAll);
      add(
        "2. no-op reconcile, drift interval (s)",
        typeof noop === "object" ? noop.durationMs / 1000 : noop,
        typeof kNoop === "object" ? kNoop.seconds : kNoop,
        { kind: "ratio", max: 2 },
        typeof noop === "object" ? describeRun(noop) : undefined,
      );
      log(`${size} objects: stopping the runner`);
      await runner.stop();
      runner = undefined;

      // --- Phase 2: restarted; its first run is the full refresh. The drift interval stays out of the way.
      log(`${size} objects: ferry run restarted, full refresh`);
      runner = new RunnerClient(await startRunner(runnerConfig("12h"), env), stack);
      sampler = new TreeSampler(runner.process.child.pid!);
      const full = await attempt("full refresh", () =>
        runner!.entry("the first run after the restart ends", (r) => r.trigger === "start", timeout),
      );
      memory["full refresh"] = sampler.stop();
      details.fullRefreshRun = full;
      const kFull = await attempt("kubectl full apply", kapplyAll);
      add(
        "3. full refresh, restart (s)",
        typeof full === "object" ? (full.result === "Succeeded" ? full.durationMs / 1000 : "failed") : full,
        typeof kFull === "object" ? kFull.seconds : kFull,
        { kind: "none" },
        typeof full === "object" ? describeRun(full) : undefined,
      );

      // Heal: from `kubectl delete` returning to the Deployment Available again (polled every 100 ms).
      await attempt("settle", () => runner!.idle(timeout));
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      log(`${size} objects: deleting Deployment/${stack}/${HEALED.name}`);
      const runsBefore = (await runner.status()).history.length;
      const heal = await attempt("heal", async () => {
        await kubectl("delete", "deployment", HEALED.name, "-n", stack);
        const t = Date.now();
        await probe.untilAvailable(stack, HEALED.name, 120_000);
        return (Date.now() - t) / 1000;
      });
      const kHeal = await attempt("kubectl heal", async () => {
        await kubectl("delete", "deployment", HEALED.name, "-n", kns);
        const t = Date.now();
        await kubectl("apply", "--server-side", "-f", path.join(kdir, HEALED.file));
        await probe.untilAvailable(kns, HEALED.name, 120_000);
        return (Date.now() - t) / 1000;
      });
      // The run that healed it is recorded when it ends (after its health checks): wait for its entry.
      const healedBy = await attempt("the healing run's record", async () => {
        await until("the healing run is recorded", async () => (await runner!.status()).history.length > runsBefore, timeout);
        return (await runner!.status()).history[0];
      });
      details.healRun = healedBy;
      add(
        "5. heal of a deleted Deployment (s)",
        heal,
        kHeal,
        { kind: "absolute", max: 3, unit: "s" },
        typeof healedBy === "object" ? describeRun(healedBy) : undefined,
      );

      // Commit -> applied: from the webhook's POST to lastAppliedRevision = the new commit.
      await attempt("settle", () => runner!.idle(timeout));
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const sha = await repo.edit(folder("2")).commitAll("Change one ConfigMap");
      log(`${size} objects: webhook for ${sha.slice(0, 7)}`);
      const commit = await attempt("commit -> applied", async () => {
        const t = Date.now();
        await runner!.push();
        await until("the commit is applied", async () => (await runner!.status()).lastAppliedRevision === sha, timeout, 100);
        return (Date.now() - t) / 1000;
      });
      fs.writeFileSync(path.join(kdir, CHANGED_FILE), manifests(kns, size, "2")[CHANGED_FILE]!);
      const kCommit = await attempt("kubectl one file", () => kubectl("apply", "--server-side", "-f", path.join(kdir, CHANGED_FILE)));
      const commitRun = typeof commit === "number" ? (await runner.status()).history.find((r) => r.revision === sha) : undefined;
      details.commitRun = commitRun;
      add(
        "4. commit -> applied, one ConfigMap, webhook (s)",
        commit,
        typeof kCommit === "object" ? kCommit.seconds : kCommit,
        { kind: "ratio", max: 3 },
        describeRun(commitRun),
      );

      // Memory rows, beside kubectl's peak during the same step.
      const mem = (p: MemoryProfile | undefined): Measured => (p && p.samples > 0 ? Math.round(p.peakMiB) : "n/a");
      const kRss = (k: typeof kInitial): Measured => (typeof k === "object" ? (k.peakRssMiB ?? "n/a") : k);
      add("6a. peak RSS, initial apply (MiB)", mem(memory["initial apply"]), kRss(kInitial), { kind: "absolute", max: 512, unit: "MiB" });
      add("6b. peak RSS, full refresh (MiB)", mem(memory["full refresh"]), kRss(kFull), { kind: "absolute", max: 512, unit: "MiB" });

      // Idle CPU of the runner's tree, once nothing is left to do.
      const idle = await attempt("idle CPU", async () => {
        await runner!.idle(timeout);
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const runs = (await runner!.status()).history.length;
        log(`${size} objects: idle for ${options.idleSeconds}s`);
        const cpu0 = cpuSeconds(runner!.process.child.pid!);
        await new Promise((r) => setTimeout(r, options.idleSeconds * 1000));
        const cpu = cpuSeconds(runner!.process.child.pid!) - cpu0;
        details.runsWhileIdle = (await runner!.status()).history.length - runs;
        return cpu;
      });
      add(
        `7. idle CPU over ${options.idleSeconds} s (s)`,
        seconds(idle),
        "n/a",
        { kind: "absolute", max: Number(((IDLE_CPU_TARGET.seconds * options.idleSeconds) / IDLE_CPU_TARGET.over).toFixed(3)), unit: "s" },
        details.runsWhileIdle ? `${String(details.runsWhileIdle)} runs while idle` : undefined,
      );
      await runner.stop();
      runner = undefined;
      // In the order of the brief, not of measurement.
      figures.sort((a, b) => parseFloat(a.measure) - parseFloat(b.measure));
      results.push({ figures, memory, details });
      log(`${size} objects: done\n${renderTable(figures)}`);
    }
  } finally {
    if (runner) await runner.process.crash();
    if (cluster) await devClusterDown(cluster.dir);
    fs.rmSync(work, { recursive: true, force: true });
  }

  const out = path.join(__dirname, "..", "..", "bench-results.json");
  const figures = results.flatMap((r) => r.figures);
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        host: { cpus: os.cpus().length, loadavg: os.loadavg(), memoryMiB: Math.round(os.totalmem() / 2 ** 20) },
        options,
        figures,
        sizes: results.map((r, i) => ({ objects: options.sizes[i], memory: r.memory, details: r.details })),
      },
      null,
      2,
    ),
  );
  console.log(`\n${renderTable(figures)}\n`);
  results.forEach((r, i) =>
    console.log(`${renderMemory(options.sizes[i]!, r.memory, ROLES)}\n\nprocesses at the peak, MiB:\n${renderPeakProcesses(r.memory)}\n`),
  );
  console.log(`results: ${out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
