// End to end: what a run leaves behind. ferry killed alone with SIGKILL in the middle of a sync takes
// its Pulumi processes with it and the next sync succeeds at once; no Secret value lands on disk in
// clear; a preview of a stack the backend does not have creates no stack.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { runChecked } from "../../src/lib/exec";
import { ferryRoot } from "../../src/lib/paths";
import { isProcessAlive } from "../../src/lib/process-alive";
import { processEntry, processTree } from "../../src/lib/process-tree";
import { PreviewReport } from "../../src/reconcile/preview-report";
import { ChartRepo, startChartRepo } from "../helpers/chart-repo";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";

/** A value that exists only in the cluster (a Secret read by valuesFrom), never in Git. */
const SECRET = "s3cr3t-only-in-the-cluster-7f2c";

const release = (chartRepo: string) => `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: db, namespace: vault}
spec:
  chart:
    spec:
      chart: secrets
      version: 0.1.0
      sourceRef: {kind: HelmRepository, name: charts}
  valuesFrom:
    - kind: Secret
      name: db-values
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: vault}
spec:
  url: ${chartRepo}
`;

const configMaps = Array.from(
  { length: 15 },
  (_, i) => `---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-${i}, namespace: vault}\ndata: {index: "${i}"}\n`,
).join("");

/** The command line of a process, or "" when it is gone. */
function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** Files under `dir` whose bytes contain any of `needles`. */
function filesContaining(dir: string, needles: readonly string[]): string[] {
  if (!fs.existsSync(dir)) return [];
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && needles.some((n) => fs.readFileSync(p).includes(n))) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

describe("process hygiene", { skip: process.platform !== "linux" }, () => {
  const env = useE2E();
  let charts: ChartRepo;
  let repo: ConfigRepo;
  const args = (stack: string) => [
    "--stack",
    stack,
    "--repo",
    repo.dir,
    "--path",
    "clusters/dev",
    "--kubeconfig",
    env().cluster.kubeconfig,
  ];

  before(async () => {
    const e = env();
    charts = await startChartRepo(e.toolchain.bin("helm"), [{ name: "secrets" }]);
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "guards");
    repo.edit({ "clusters/dev/db.yaml": release(charts.url), "clusters/dev/config.yaml": configMaps });
    await repo.commitAll("A release whose values come from a cluster-only Secret");
    await e.kubectl("create", "namespace", "vault");
    await e.kubectl(
      "create",
      "secret",
      "generic",
      "db-values",
      "-n",
      "vault",
      `--from-literal=values.yaml=secrets:\n- name: db\n  data: {password: ${SECRET}}\n`,
    );
  });
  after(async () => charts?.close());

  it("kill -9 of ferry alone during a sync: none of its processes remain within 10 s, the next sync succeeds at once", async () => {
    const e = env();
    const eventLogs = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("automation-logs-"));
    const logsBefore = new Set(eventLogs());
    const ferry = spawn(process.execPath, [path.join(ferryRoot(), "bin", "ferry"), "sync", ...args("dev"), "-o", "json"], {
      env: e.env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    ferry.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise((resolve) => ferry.on("exit", resolve));
    // The run's processes once the engine runs the program: the language host and the provider plugin.
    let run: { pid: number; startTime: string; cmd: string }[] = [];
    const deadline = Date.now() + 90_000;
    for (;;) {
      run = processTree(ferry.pid!)
        .slice(1)
        .map((pid) => ({ pid, startTime: processEntry(pid)?.startTime ?? "", cmd: cmdline(pid) }));
      const cmds = run.map((p) => p.cmd).join("\n");
      if (cmds.includes("pulumi-language-nodejs") && cmds.includes("pulumi-resource-kubernetes")) break;
      if (ferry.exitCode !== null || Date.now() > deadline)
        assert.fail(`the sync never ran the program (exit ${ferry.exitCode}):\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    ferry.kill("SIGKILL");
    await exited;
    const killedAt = Date.now();
    const running = () => run.filter((p) => isProcessAlive(p.pid) && processEntry(p.pid)?.startTime === p.startTime);
    while (running().length > 0) {
      if (Date.now() - killedAt > 10_000)
        assert.fail(
          `still running 10 s after ferry was killed:\n${running()
            .map((p) => `${p.pid} ${p.cmd}`)
            .join("\n")}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
    const goneAfterMs = Date.now() - killedAt;

    // At once, and without waiting for a lock: the crashed run's locks are stale because their pids are dead.
    const next = await e.sync({ repo: repo.dir, path: "clusters/dev", extra: ["--lock-timeout", "0"] });
    assert.equal(next.code, 0, `${next.result.reason}: ${next.result.message}\n${next.stderr}`);
    assert.equal(next.result.succeeded, true);
    const secret = await e.getJson<{ data: Record<string, string> }>("secret", "db", "-n", "vault");
    assert.equal(Buffer.from(secret.data.password!, "base64").toString(), SECRET, "the Secret was applied");
    const recovered = next.stderr.split("\n").filter((l) => /stale lock|repaired|pending/.test(l));
    process.stderr.write(`# ${run.length} processes of the killed run were gone ${goneAfterMs} ms after the kill\n`);
    for (const l of recovered) process.stderr.write(`# next sync: ${l}\n`);

    // Neither the value nor its base64 anywhere in the state dir (checkouts, workspaces, backend,
    // previews), Pulumi's home, or the engine event log the killed run left in the temp folder.
    const needles = [SECRET, Buffer.from(SECRET).toString("base64")];
    const leftLogs = eventLogs().filter((n) => !logsBefore.has(n));
    for (const dir of [path.join(e.dir, "state"), path.join(e.dir, "pulumi-home"), ...leftLogs.map((n) => path.join(os.tmpdir(), n))])
      assert.deepEqual(filesContaining(dir, needles), []);
  });

  it("preview of a stack the backend does not have shows what it would create, and creates no stack", async () => {
    const e = env();
    const r = await e.ferry(["preview", ...args("typo"), "--ref", "main", "-o", "json"]);
    assert.equal(r.code, 1, `exit 1: changes\n${r.stdout}\n${r.stderr}`);
    const report = JSON.parse(r.stdout) as PreviewReport;
    assert.ok(
      report.objects.some((o) => o.op === "create" && o.object === "Secret/vault/db"),
      r.stdout,
    );
    assert.equal(report.objects.filter((o) => o.op !== "create").length, 0, r.stdout);

    // history and detect-like reads refuse a stack that does not exist rather than creating it.
    const history = await e.ferry(["history", ...args("typo")]);
    assert.notEqual(history.code, 0);
    assert.match(history.stderr, /stack typo does not exist in the backend .*`ferry sync --stack typo` creates it/);

    const pulumiBin = path.join(e.toolchain.pulumiRoot, "bin");
    const stacks = await runChecked(path.join(pulumiBin, "pulumi"), ["stack", "ls", "--all", "--json"], {
      cwd: e.dir,
      env: { ...e.env, PULUMI_BACKEND_URL: `file://${path.join(e.dir, "state", "backend")}`, PATH: `${pulumiBin}:${e.env.PATH}` },
    });
    const names = (JSON.parse(stacks.stdout) as { name: string }[]).map((s) => s.name);
    // The stack the test before synced: the listing is of the right backend.
    assert.ok(
      names.some((n) => n.endsWith("dev")),
      stacks.stdout,
    );
    assert.ok(!names.some((n) => n.endsWith("typo")), `the preview created a stack: ${stacks.stdout}`);
    assert.deepEqual(fs.readdirSync(path.join(e.dir, "state", "previews")), [], "the preview's scratch folder is removed");
  });
});
