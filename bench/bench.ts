// `npm run bench`: ferry's runner against `kubectl apply --server-side` on the local control plane,
// with generated config repos of 50, 200 and 1000 objects. Not part of the tests.
//   BENCH_SIZES=50,200,1000  BENCH_IDLE_SECONDS=300  npm run bench
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { devClusterDown, devClusterUp } from "../src/devcluster/dev-cluster";
import { runChecked } from "../src/lib/exec";
import { StackStatus } from "../src/agent/stack-worker";
import { defaultToolchainOptions, ensureToolchain } from "../src/toolchain/install";
import { ConfigRepo } from "../test/helpers/config-repo";
import { eventually } from "../test/helpers/e2e";
import { startRunner, writeRunnerConfig } from "../test/helpers/runner-process";
import { manifests } from "./manifests";
import { cpuSeconds, rssMiB } from "./proc";

const sizes = (process.env.BENCH_SIZES ?? "50,200,1000").split(",").map(Number);
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? "300");
const SECRET = "bench";

async function time<T>(fn: () => Promise<T>): Promise<number> {
  const t = Date.now();
  await fn();
  return (Date.now() - t) / 1000;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-"));
  const toolchain = await ensureToolchain(defaultToolchainOptions());
  const cluster = await devClusterUp({ dir: path.join(work, "cluster"), toolchain, ownerPid: process.pid });
  const kubectl = (...args: string[]) => runChecked(toolchain.bin("kubectl"), ["--kubeconfig", cluster.kubeconfig, ...args]);
  const env = {
    ...process.env,
    FERRY_STATE_DIR: path.join(work, "state"),
    PULUMI_CONFIG_PASSPHRASE: "bench",
    FERRY_WEBHOOK_SECRET: SECRET,
    FERRY_LOG_LEVEL: "warn",
  };
  const rows: Record<string, number | string>[] = [];
  try {
    for (const size of sizes) {
      const repo = await ConfigRepo.create(path.join(work, `repo-${size}`), "bench");
      const stack = `bench${size}`;
      const folder = (v: string) =>
        Object.fromEntries(Object.entries(manifests(stack, size, v)).map(([f, t]) => [`clusters/${stack}/${f}`, t]));
      await repo.edit(folder("1")).commitAll("Generated objects");
      // The same objects for kubectl, in a namespace of their own.
      const kdir = path.join(work, `kubectl-${size}`);
      const writeK = (v: string) => {
        fs.rmSync(kdir, { recursive: true, force: true });
        fs.mkdirSync(kdir, { recursive: true });
        for (const [f, t] of Object.entries(manifests(`k${size}`, size, v))) fs.writeFileSync(path.join(kdir, f), t);
      };
      const kapply = () => kubectl("apply", "--server-side", "--force-conflicts", "-f", kdir);
      writeK("1");
      await kapply();

      const config = path.join(work, `runner-${size}.yaml`);
      writeRunnerConfig(config, {
        listen: "127.0.0.1:0",
        stacks: [
          {
            name: stack,
            repo: repo.dir,
            ref: "main",
            path: `clusters/${stack}`,
            kubeconfig: cluster.kubeconfig,
            pollInterval: "10m",
            driftInterval: "10m",
          },
        ],
      });
      const runner = await startRunner(config, env);
      const status = async () => (await (await fetch(`${runner.url}/api/stacks/${stack}`)).json()) as StackStatus;
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(runner.child.pid!))), 200);
      const initial = await time(() => eventually("first apply", async () => (await status()).condition === "Ready", 3_600_000));
      clearInterval(sampler);

      // Commit to applied, through a webhook.
      const sha = await repo.edit(folder("2")).commitAll("Change one ConfigMap");
      const body = JSON.stringify({ ref: "refs/heads/main" });
      const sig = `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`;
      const webhook = await time(async () => {
        await fetch(`${runner.url}/hooks/github`, { method: "POST", body, headers: { "X-Hub-Signature-256": sig } });
        await eventually("commit applied", async () => (await status()).lastAppliedRevision === sha, 3_600_000);
      });
      writeK("2");
      const kWebhook = await time(kapply);

      // Heal a deleted Deployment (the watch notices; ferry heals only that object).
      await kubectl("delete", "deployment", "d-10", "-n", stack, "--wait=true");
      const heal = await time(() =>
        eventually(
          "healed",
          async () => (await status()).history[0]?.triggers.includes("live") === true && (await status()).condition === "Ready",
          3_600_000,
        ),
      );
      await kubectl("delete", "deployment", "d-10", "-n", `k${size}`, "--wait=true");
      const kHeal = await time(kapply);

      // A reconcile with nothing to change.
      const before = (await status()).history.length;
      const noop = await time(async () => {
        await fetch(`${runner.url}/api/stacks/${stack}/reconcile`, { method: "POST" });
        await eventually(
          "no-op done",
          async () => (await status()).history.length > before && (await status()).condition === "Ready",
          3_600_000,
        );
      });
      const kNoop = await time(kapply);

      // Idle CPU of the runner's process tree.
      const cpu0 = cpuSeconds(runner.child.pid!);
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      const idleCpu = cpuSeconds(runner.child.pid!) - cpu0;

      // Peak memory during a full reconcile.
      const before2 = (await status()).history.length;
      let peak2 = 0;
      const sampler2 = setInterval(() => (peak2 = Math.max(peak2, rssMiB(runner.child.pid!))), 200);
      await fetch(`${runner.url}/api/stacks/${stack}/reconcile`, { method: "POST" });
      await eventually("reconcile done", async () => (await status()).history.length > before2, 3_600_000);
      clearInterval(sampler2);
      await runner.stop();

      const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(1) : "n/a");
      rows.push(
        { objects: size, measure: "initial apply (s)", ferry: initial, kubectl: "-", ratio: "-" },
        { objects: size, measure: "commit-to-applied, webhook (s)", ferry: webhook, kubectl: kWebhook, ratio: ratio(webhook, kWebhook) },
        { objects: size, measure: "heal a deleted Deployment (s)", ferry: heal, kubectl: kHeal, ratio: ratio(heal, kHeal) },
        { objects: size, measure: "no-op reconcile (s)", ferry: noop, kubectl: kNoop, ratio: ratio(noop, kNoop) },
        { objects: size, measure: `runner CPU over ${idleSeconds}s idle (s)`, ferry: Number(idleCpu.toFixed(2)), kubectl: 0, ratio: "n/a" },
        {
          objects: size,
          measure: "peak RSS of the process tree during a reconcile (MiB)",
          ferry: Math.round(Math.max(peak, peak2)),
          kubectl: "-",
          ratio: "-",
        },
      );
    }
  } finally {
    await devClusterDown(cluster.dir);
    fs.rmSync(work, { recursive: true, force: true });
  }
  const out = path.join(__dirname, "..", "..", "bench-results.json");
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), idleSeconds, rows }, null, 2));
  console.log(`\n| objects | measure | ferry | kubectl --server-side | ferry/kubectl |\n|---|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.objects} | ${r.measure} | ${r.ferry} | ${r.kubectl} | ${r.ratio} |`);
  console.log(`\nresults: ${out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
