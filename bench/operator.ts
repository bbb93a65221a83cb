// `npm run bench:operator`: how many Stacks one `ferry operator` replica carries on this machine.
// One replica keeps N Stack objects (each a cluster folder of a Namespace and a ConfigMap) on a local
// control plane; measured: the time until all N are Ready (beside `kubectl apply` of the same N
// folders), the replica's memory once they settled, its idle CPU (polls every `interval`, live views,
// Lease renewals), and commit -> applied for one Stack while all N are kept. Not part of the tests.
//   OPERATOR_STACKS=40  OPERATOR_IDLE_SECONDS=60  OPERATOR_INTERVAL=1m  npm run bench:operator
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { devClusterDown, devClusterUp } from "../src/devcluster/dev-cluster";
import { runChecked } from "../src/lib/exec";
import { procStatFields } from "../src/lib/process-tree";
import { defaultToolchainOptions, ensureToolchain } from "../src/toolchain/install";
import { ConfigRepo } from "../test/helpers/config-repo";
import { startAgent } from "../test/helpers/runner-process";
import { sampleTree, sumByRole, TreeSampler } from "./proc";

const NS = "ferry-bench";

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** CPU seconds of a process and of the children it waited for (git, pulumi), plus its live descendants. */
function treeCpu(root: number): number {
  const f = procStatFields(root);
  return f ? [11, 12, 13, 14].reduce((a, i) => a + Number(f[i]), 0) / 100 : 0;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function main(): Promise<void> {
  const n = Number(process.env.OPERATOR_STACKS ?? "40");
  const idleSeconds = Number(process.env.OPERATOR_IDLE_SECONDS ?? "60");
  const interval = process.env.OPERATOR_INTERVAL ?? "1m";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-operator-"));
  const toolchain = await ensureToolchain(defaultToolchainOptions({}));
  const cluster = await devClusterUp({ dir: path.join(dir, "cluster"), toolchain, ownerPid: process.pid });
  const kubectl = async (...args: string[]) =>
    (await runChecked(toolchain.bin("kubectl"), ["--kubeconfig", cluster.kubeconfig, ...args])).stdout;
  const names = Array.from({ length: n }, (_, i) => `s${i + 1}`);
  const cm = (s: string, v: string) =>
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${s}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: ${s}}\ndata: {value: "${v}"}\n`;
  try {
    const repo = await ConfigRepo.create(path.join(dir, "repo"), "foundation");
    repo.edit(Object.fromEntries(names.map((s) => [`clusters/${s}/app.yaml`, cm(`app-${s}`, "v1")])));
    await repo.commitAll(`${n} clusters`);
    // kubectl's figure: the same N folders, in namespaces of its own.
    const kc = path.join(dir, "kubectl");
    for (const s of names) {
      fs.mkdirSync(path.join(kc, s), { recursive: true });
      fs.writeFileSync(path.join(kc, s, "app.yaml"), cm(`kubectl-${s}`, "v1"));
    }
    let t = Date.now();
    for (const s of names) await kubectl("apply", "--server-side", "-f", path.join(kc, s));
    const kubectlSeconds = (Date.now() - t) / 1000;
    log(`kubectl apply of ${n} folders: ${kubectlSeconds.toFixed(1)} s`);

    await kubectl("apply", "-f", path.join(__dirname, "..", "..", "charts", "ferry", "crds", "stacks.ferry.dev.yaml"));
    await kubectl("wait", "--for=condition=Established", "crd/stacks.ferry.dev", "--timeout=30s");
    await kubectl("create", "namespace", NS);
    await kubectl("create", "serviceaccount", "ferry-manager", "-n", NS);
    await kubectl(
      "create",
      "clusterrolebinding",
      "ferry-bench-manager",
      "--clusterrole=cluster-admin",
      `--serviceaccount=${NS}:ferry-manager`,
    );
    await kubectl("create", "secret", "generic", "state", "-n", NS, "--from-literal=passphrase=bench");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FERRY_STATE_DIR: path.join(dir, "state"),
      PULUMI_HOME: path.join(dir, "pulumi-home"),
      NO_COLOR: "1",
    };
    delete env.PULUMI_CONFIG_PASSPHRASE;
    delete env.PULUMI_BACKEND_URL;
    const agent = await startAgent(
      [
        "operator",
        "--namespace",
        NS,
        "--identity",
        "bench-0",
        "--kubeconfig",
        cluster.kubeconfig,
        "--listen",
        "127.0.0.1:0",
        "--max-parallel",
        "2",
      ],
      env,
    );
    const pid = agent.child.pid!;
    try {
      const objects = names.map((s) => ({
        apiVersion: "ferry.dev/v1alpha1",
        kind: "Stack",
        metadata: { name: s, namespace: NS },
        spec: { repo: repo.dir, ref: "main", path: `clusters/${s}`, interval, passphraseSecretRef: { name: "state" } },
      }));
      fs.writeFileSync(path.join(dir, "stacks.json"), JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
      const sampler = new TreeSampler(pid, 500);
      const cpu0 = treeCpu(pid);
      t = Date.now();
      await kubectl("apply", "-f", path.join(dir, "stacks.json"));
      type List = {
        items: { metadata: { name: string }; status?: { lastAppliedRevision?: string; conditions?: { type: string; status: string }[] } }[];
      };
      const ready = async (): Promise<List["items"]> =>
        (JSON.parse(await kubectl("get", "stacks", "-n", NS, "-o", "json")) as List).items.filter((i) =>
          i.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
      await until(`all ${n} Stacks Ready`, async () => (await ready()).length === n, 60_000 + n * 30_000);
      const initialSeconds = (Date.now() - t) / 1000;
      const initialCpu = treeCpu(pid) - cpu0;
      const peak = sampler.stop();
      log(
        `${n} Stacks Ready in ${initialSeconds.toFixed(1)} s (${(initialSeconds / n).toFixed(2)} s each), ${initialCpu.toFixed(1)} CPU s`,
      );
      // Let the live views list and the last statuses land, then measure the replica at rest.
      await new Promise((r) => setTimeout(r, 10_000));
      const rest = sumByRole(sampleTree(pid));
      const idle0 = treeCpu(pid);
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      const idleCpu = treeCpu(pid) - idle0;
      log(`idle: ${idleCpu.toFixed(2)} CPU s over ${idleSeconds} s; agent RSS ${rest.runner.toFixed(0)} MiB`);
      // Commit -> applied for one Stack while all N are kept.
      repo.edit({ "clusters/s1/app.yaml": cm("app-s1", "v2") });
      const head = await repo.commitAll("s1: v2");
      t = Date.now();
      await kubectl("annotate", "stack", "s1", "-n", NS, `reconcile.ferry.dev/requestedAt=${t}`, "--overwrite");
      await until(
        "s1 applies the commit",
        async () => (await ready()).some((i) => i.metadata.name === "s1" && i.status?.lastAppliedRevision === head),
        300_000,
      );
      const commitSeconds = (Date.now() - t) / 1000;
      const report = {
        stacks: n,
        cores: os.cpus().length,
        interval,
        initial: {
          seconds: initialSeconds,
          perStack: initialSeconds / n,
          cpuSeconds: initialCpu,
          kubectlSeconds,
          ratio: initialSeconds / kubectlSeconds,
        },
        peakMiB: Math.round(peak.peakMiB),
        peakByRole: Object.fromEntries(Object.entries(peak.atPeak).map(([k, v]) => [k, Math.round(v)])),
        atRestAgentMiB: Math.round(rest.runner),
        idle: { seconds: idleSeconds, cpuSeconds: idleCpu, share: idleCpu / idleSeconds },
        commitToAppliedSeconds: commitSeconds,
      };
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } finally {
      await agent.stop();
    }
  } finally {
    await devClusterDown(path.join(dir, "cluster"));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
