// End to end: `ferry history`, `ferry rollback` and the pin a runner honours until `ferry resume`.
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { HistoryEntry } from "../../src/reconcile/history";
import { StackStatus } from "../../src/agent/stack-worker";
import { ChartRepo, startChartRepo } from "../helpers/chart-repo";
import { ConfigRepo } from "../helpers/config-repo";
import { eventually, useE2E } from "../helpers/e2e";
import { RunnerProcess, startRunner, writeRunnerConfig } from "../helpers/runner-process";

const ALICE = { name: "Alice Example", email: "alice@example.com" };
const BOB = { name: "Bob Builder", email: "bob@example.com" };
const CAROL = { name: "Carol Ops", email: "carol@example.com" };
const API_TOKEN = "api-token-for-the-rollback-tests";

describe("ferry history and ferry rollback", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  let charts: ChartRepo | undefined;
  let runner: RunnerProcess | undefined;
  const shas: string[] = [];

  const stackArgs = () => ["--stack", "dev", "--repo", repo.dir, "--path", "clusters/dev", "--kubeconfig", env().cluster.kubeconfig];
  const history = async (): Promise<HistoryEntry[]> => {
    const r = await env().ferry(["history", ...stackArgs(), "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as HistoryEntry[];
  };
  const greeting = async () =>
    (await env().getJson<{ data: { GREETING: string } }>("configmap", "web-settings", "-n", "demo")).data.GREETING;
  const status = async (): Promise<StackStatus> => (await (await fetch(`${runner!.url}/api/stacks/dev`)).json()) as StackStatus;

  before(async () => {
    repo = await ConfigRepo.create(path.join(env().dir, "config-repo"), "foundation");
  });
  after(async () => {
    await runner?.stop();
    await charts?.close();
  });

  it("lists three commits with their SHAs, authors and subjects", async () => {
    const e = env();
    const steps: [string, string, typeof ALICE][] = [
      ["step1", "Add the web app", ALICE],
      ["step2", "Change the greeting", BOB],
      ["step3", "Remove the web service", CAROL],
    ];
    for (const [step, subject, author] of steps) {
      shas.push(await repo.commitStep(step, subject, author));
      const { code, result } = await e.sync({ repo: repo.dir, path: "clusters/dev" });
      assert.equal(code, 0, result.message);
    }
    const entries = (await history()).slice(0, 3);
    assert.deepEqual(
      entries.map((h) => [h.sha, h.author, h.authorEmail, h.subject, h.run, h.result]),
      [
        [shas[2], CAROL.name, CAROL.email, "Remove the web service", "sync", "succeeded"],
        [shas[1], BOB.name, BOB.email, "Change the greeting", "sync", "succeeded"],
        [shas[0], ALICE.name, ALICE.email, "Add the web app", "sync", "succeeded"],
      ],
    );
    assert.ok(entries[2]!.changes.create >= 4, JSON.stringify(entries[2]!.changes));
    // Update numbers (what `ferry rollback --to <version>` takes) are distinct, newest highest.
    assert.ok(entries[2]!.version > 0 && entries[1]!.version > entries[2]!.version && entries[0]!.version > entries[1]!.version);
    // The update's counts are objects only (no component per file): the Service.
    assert.equal(entries[0]!.changes.delete, 1, JSON.stringify(entries[0]!.changes));
    const text = await e.ferry(["history", ...stackArgs()]);
    assert.equal(text.code, 0, text.stderr);
    for (const sha of shas) assert.ok(text.stdout.includes(sha.slice(0, 7)), text.stdout);
    assert.match(text.stdout, /Carol Ops .*Remove the web service/);
  });

  it("refuses a rollback target that is not in the stack's history, and applies nothing", async () => {
    const versions = (await history()).length;
    const r = await env().ferry(["rollback", ...stackArgs(), "--to", "0123abcd"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not in the stack's history/);
    assert.equal((await history()).length, versions);
    assert.equal(await env().exists("service", "web", "-n", "demo"), false);
  });

  it("rolls back to the first commit: its objects come back, and the history records who rolled back from what", async () => {
    const e = env();
    assert.equal(await e.exists("service", "web", "-n", "demo"), false);
    const target = (await history()).find((h) => h.sha === shas[0])!;
    const r = await e.ferry(["rollback", ...stackArgs(), "--to", String(target.version), "--by", "dana"]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /pinned dev to/);
    assert.ok(await e.exists("service", "web", "-n", "demo"));
    assert.equal(await greeting(), "hello from git");
    const [latest] = await history();
    assert.equal(latest?.run, "rollback");
    assert.equal(latest?.sha, shas[0]);
    assert.equal(latest?.from?.slice(0, 7), shas[2]!.slice(0, 7));
    assert.equal(latest?.by, "dana");
    assert.equal(latest?.author, ALICE.name);
  });

  it("a runner keeps the pinned commit on its next cycles, shows the pin, and ferry resume brings back the branch head", async () => {
    const e = env();
    const config = path.join(e.dir, "ferry.yaml");
    writeRunnerConfig(config, {
      listen: "127.0.0.1:0",
      retryDelay: "1s",
      stacks: [
        {
          name: "dev",
          repo: repo.dir,
          ref: "main",
          path: "clusters/dev",
          kubeconfig: e.cluster.kubeconfig,
          pollInterval: "1s",
          driftInterval: "10m",
        },
      ],
    });
    runner = await startRunner(config, { ...e.env, FERRY_API_TOKEN: API_TOKEN });
    // Its first runs (start, then the first poll of a pinned stack) apply the pinned commit.
    await eventually(
      "the runner is Ready after its first runs",
      async () => {
        const st = await status();
        return st.condition === "Ready" && st.history.length >= 1;
      },
      120_000,
    );
    let s = await status();
    assert.equal(s.condition, "Ready", s.message);
    assert.equal(s.pinned?.revision, shas[0]);
    assert.equal(s.lastAppliedRevision, shas[0]);
    assert.ok(await e.exists("service", "web", "-n", "demo"), "the runner rolled the stack forward");

    // A new commit on the branch: the runner runs, and stays on the pinned commit.
    const committed = new Date().toISOString();
    const head = await repo
      .edit({ "clusters/dev/web/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: demo}\ndata: {a: b}\n" })
      .commitAll("Add an extra ConfigMap", BOB);
    await eventually(
      "the runner ran for the new commit",
      async () => {
        const st = await status();
        return st.condition === "Ready" && st.history.some((h) => h.trigger === "commit" && h.startedAt > committed);
      },
      60_000,
    );
    s = await status();
    assert.equal(s.condition, "Ready", s.message);
    assert.equal(s.pinned?.revision, shas[0]);
    assert.ok(await e.exists("service", "web", "-n", "demo"));
    assert.equal(await e.exists("configmap", "extra", "-n", "demo"), false);
    assert.equal(await greeting(), "hello from git");
    const table = await e.ferry(["status", "--server", runner.url]);
    assert.match(table.stdout, new RegExp(`dev .*${shas[0]!.slice(0, 7)}.*rolled back by dana`));
    const runs = s.history.length;

    // Manual reconciles while pinned do not roll forward either.
    assert.equal((await e.ferry(["reconcile", "dev", "--server", runner.url], { FERRY_API_TOKEN: API_TOKEN })).code, 0);
    await eventually("the manual run is done", async () => (await status()).history.length > runs, 60_000);
    assert.equal(await e.exists("configmap", "extra", "-n", "demo"), false);

    const resumed = await e.ferry(["resume", "dev", "--server", runner.url], { FERRY_API_TOKEN: API_TOKEN });
    assert.equal(resumed.code, 0, resumed.stderr);
    await eventually("the branch head is applied", async () => (await status()).lastAppliedRevision === head, 60_000);
    s = await status();
    assert.equal(s.pinned, undefined);
    assert.ok(await e.exists("configmap", "extra", "-n", "demo"));
    assert.equal(await e.exists("service", "web", "-n", "demo"), false);
    assert.equal((await history())[0]?.run, "resume");
    await runner.stop();
    runner = undefined;
  });

  it("refuses a target whose files no longer load (its chart is gone), applies nothing and sets no pin", async () => {
    const e = env();
    charts = await startChartRepo(e.toolchain.bin("helm"), [{ name: "webapp" }]);
    const release = [
      "apiVersion: source.toolkit.fluxcd.io/v1",
      "kind: HelmRepository",
      "metadata: {name: charts, namespace: demo}",
      `spec: {interval: 10m, url: "${charts.url}"}`,
      "---",
      "apiVersion: helm.toolkit.fluxcd.io/v2",
      "kind: HelmRelease",
      "metadata: {name: shop, namespace: demo}",
      "spec:",
      "  interval: 5m",
      '  chart: {spec: {chart: webapp, version: ">=1.0.0", sourceRef: {kind: HelmRepository, name: charts}}}',
      "",
    ].join("\n");
    const withChart = await repo.edit({ "clusters/dev/shop.yaml": release }).commitAll("Add the shop release");
    assert.equal((await e.sync({ repo: repo.dir, path: "clusters/dev" })).code, 0);
    await repo.edit({ "clusters/dev/shop.yaml": undefined }).commitAll("Remove the shop release");
    assert.equal((await e.sync({ repo: repo.dir, path: "clusters/dev" })).code, 0);
    await charts.close();
    charts = undefined;
    const versions = (await history()).length;
    const r = await e.ferry(["rollback", ...stackArgs(), "--to", withChart]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /BuildFailed.*nothing was applied/s, r.stderr);
    assert.equal((await history()).length, versions);
    // No pin: the next sync follows the branch.
    const next = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(next.code, 0, next.result.message);
    assert.equal(next.result.pin, undefined);
  });
});
