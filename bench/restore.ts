// `npm run bench:restore`: disaster recovery time. A cluster gets N generated objects with
// `ferry sync`; then its etcd data is wiped (control plane stopped, data removed, restarted empty
// with the same identity) and one `ferry sync` rebuilds it; `kubectl apply --server-side` of the
// same files onto a wiped cluster is the baseline. Not part of the tests.
//   BENCH_RESTORE_SIZES=200  npm run bench:restore
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { devClusterDown, devClusterUp } from "../src/devcluster/dev-cluster";
import { run, runChecked } from "../src/lib/exec";
import { ferryRoot } from "../src/lib/paths";
import { ReconcileResult } from "../src/reconcile/reconcile-result";
import { defaultToolchainOptions, ensureToolchain } from "../src/toolchain/install";
import { ConfigRepo } from "../test/helpers/config-repo";
import { manifests } from "./manifests";

const sizes = (process.env.BENCH_RESTORE_SIZES ?? "200").split(",").map(Number);

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-restore-"));
  const toolchain = await ensureToolchain(defaultToolchainOptions());
  const clusterDir = path.join(work, "cluster");
  let cluster = await devClusterUp({ dir: clusterDir, toolchain, ownerPid: process.pid });
  const env = { ...process.env, FERRY_STATE_DIR: path.join(work, "state"), PULUMI_CONFIG_PASSPHRASE: "bench", NO_COLOR: "1" };
  const rows: string[] = [];
  const wipe = async (): Promise<number> => {
    const t = Date.now();
    await devClusterDown(clusterDir);
    fs.rmSync(path.join(clusterDir, "etcd"), { recursive: true, force: true });
    cluster = await devClusterUp({ dir: clusterDir, toolchain, ownerPid: process.pid });
    return (Date.now() - t) / 1000;
  };
  try {
    for (const size of sizes) {
      const stack = `restore${size}`;
      const repo = await ConfigRepo.create(path.join(work, `repo-${size}`), "bench");
      const files = manifests(stack, size, "1");
      await repo.edit(Object.fromEntries(Object.entries(files).map(([f, t]) => [`clusters/${stack}/${f}`, t]))).commitAll("Generated");
      const sync = async (): Promise<{ seconds: number; result: ReconcileResult }> => {
        const t = Date.now();
        const r = await run(
          process.execPath,
          [
            path.join(ferryRoot(), "bin", "ferry"),
            "sync",
            "--stack",
            stack,
            "--repo",
            repo.dir,
            "--path",
            `clusters/${stack}`,
            "--kubeconfig",
            cluster.kubeconfig,
            "-o",
            "json",
          ],
          { env, timeoutMs: 3_600_000 },
        );
        const result = JSON.parse(r.stdout) as ReconcileResult;
        if (!result.succeeded) throw new Error(`sync failed: ${result.reason}: ${result.message}`);
        return { seconds: (Date.now() - t) / 1000, result };
      };
      const initial = await sync();
      const restart = await wipe();
      const restore = await sync();
      const again = await sync();
      // Baseline: the same files applied by kubectl onto a wiped cluster.
      const kdir = path.join(work, `kubectl-${size}`);
      fs.mkdirSync(kdir, { recursive: true });
      for (const [f, t] of Object.entries(files)) fs.writeFileSync(path.join(kdir, f), t);
      await wipe();
      const k0 = Date.now();
      // The Namespace first, as kubectl needs it before the objects in it.
      await runChecked(toolchain.bin("kubectl"), [
        "--kubeconfig",
        cluster.kubeconfig,
        "apply",
        "--server-side",
        "-f",
        path.join(kdir, "ns.yaml"),
      ]);
      await runChecked(toolchain.bin("kubectl"), ["--kubeconfig", cluster.kubeconfig, "apply", "--server-side", "-f", kdir]);
      const kubectl = (Date.now() - k0) / 1000;
      rows.push(
        `| ${size} | initial sync (s) | ${initial.seconds.toFixed(1)} | created ${initial.result.changes?.created} |`,
        `| ${size} | control plane stop, etcd wipe, restart (s) | ${restart.toFixed(1)} | |`,
        `| ${size} | restore: one ferry sync after the wipe (s) | ${restore.seconds.toFixed(1)} | created ${restore.result.changes?.created} |`,
        `| ${size} | the sync after it (s) | ${again.seconds.toFixed(1)} | ${JSON.stringify(again.result.changes)} |`,
        `| ${size} | baseline: kubectl apply --server-side after a wipe (s) | ${kubectl.toFixed(1)} | |`,
      );
    }
  } finally {
    await devClusterDown(clusterDir);
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(`\n| objects | measure | seconds | result |\n|---|---|---|---|`);
  for (const r of rows) console.log(r);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
