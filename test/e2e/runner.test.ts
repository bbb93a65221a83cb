// End to end: `ferry run` as a child process keeps stacks equal to Git.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { StackStatus } from "../../src/agent/stack-worker";
import { ConfigRepo } from "../helpers/config-repo";
import { eventually, useE2E } from "../helpers/e2e";
import { RunnerProcess, startReceiver, startRunner, writeRunnerConfig } from "../helpers/runner-process";

const SECRET = "webhook-secret-for-tests";
const API_TOKEN = "api-token-for-the-runner-tests";
const ns = (n: string) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}}\n`;
const cm = (n: string, v: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: ${n}}\ndata: {value: "${v}"}\n`;
const deploy = (n: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: ${n}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n`;

describe("ferry run", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  let runner: RunnerProcess;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let first: string;

  const statuses = async (): Promise<StackStatus[]> => (await (await fetch(`${runner.url}/api/stacks`)).json()) as StackStatus[];
  const status = async (name: string): Promise<StackStatus> => (await statuses()).find((s) => s.name === name)!;
  const hook = (kind: string, body: string, headers: Record<string, string>) =>
    fetch(`${runner.url}/hooks/${kind}`, { method: "POST", body, headers: { "Content-Type": "application/json", ...headers } });
  const sign = (body: string, secret = SECRET) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

  before(async () => {
    const e = env();
    receiver = await startReceiver();
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "foundation");
    repo.edit({
      "clusters/one/ns.yaml": ns("one"),
      "clusters/one/app.yaml": `${deploy("one")}---\n${cm("one", "v1")}`,
      "clusters/two/ns.yaml": ns("two"),
      "clusters/two/cm.yaml": cm("two", "v1"),
      "clusters/three/ns.yaml": ns("three"),
      "clusters/three/cm.yaml": cm("three", "v1"),
    });
    first = await repo.commitAll("Three clusters");
    // Stack two runs in detect mode: its objects are applied once by hand, then only watched.
    const once = await e.sync({ repo: repo.dir, path: "clusters/two", stack: "two" });
    assert.equal(once.code, 0, once.result.message);
    const config = path.join(e.dir, "ferry.yaml");
    const stack = (name: string, extra: Record<string, unknown>) => ({
      name,
      repo: repo.dir,
      ref: "main",
      path: `clusters/${name}`,
      kubeconfig: e.cluster.kubeconfig,
      driftInterval: "10m",
      ...extra,
    });
    writeRunnerConfig(config, {
      listen: "127.0.0.1:0",
      maxParallel: 2,
      retryDelay: "1s",
      maxRetryDelay: "2s",
      notifications: [{ type: "generic", url: receiver.url }],
      stacks: [
        stack("one", { pollInterval: "10m" }), // only a webhook brings new commits quickly
        stack("two", { pollInterval: "10m", mode: "detect" }),
        stack("three", { pollInterval: "2s" }),
      ],
    });
    runner = await startRunner(config, { ...e.env, FERRY_WEBHOOK_SECRET: SECRET, FERRY_API_TOKEN: API_TOKEN });
  });
  after(async () => {
    await runner?.stop();
    await receiver?.close();
  });

  it("runs stacks from several cluster folders side by side", async () => {
    const e = env();
    await eventually(
      "stacks one and three are Ready at the first commit",
      async () => {
        const s = await statuses();
        return ["one", "three"].every(
          (n) => s.find((x) => x.name === n)?.condition === "Ready" && s.find((x) => x.name === n)?.lastAppliedRevision === first,
        );
      },
      120_000,
    );
    assert.equal((await e.getJson<{ data: { value: string } }>("configmap", "settings", "-n", "one")).data.value, "v1");
    assert.equal((await e.getJson<{ data: { value: string } }>("configmap", "settings", "-n", "three")).data.value, "v1");
    await eventually(
      "stack two (detect) is Ready without drift",
      async () => {
        const two = await status("two");
        return two.condition === "Ready" && !two.drift.detected;
      },
      60_000,
    );
  });

  it("refuses webhooks with a missing, wrong or other-secret signature and triggers no run", async () => {
    const before = (await status("one")).history.length;
    const body = JSON.stringify({ ref: "refs/heads/main" });
    assert.equal((await hook("github", body, {})).status, 401);
    assert.equal((await hook("github", body, { "X-Hub-Signature-256": sign(body, "another-secret") })).status, 401);
    assert.equal((await hook("generic", body, { "X-Signature": "sha256=00" })).status, 401);
    assert.equal((await hook("gitlab", body, { "X-Gitlab-Token": "nope" })).status, 401);
    assert.equal((await hook("github", "x".repeat(2 * 1024 * 1024), { "X-Hub-Signature-256": "sha256=00" })).status, 413);
    // A signed push to a branch no stack follows triggers nothing either.
    const other = JSON.stringify({ ref: "refs/heads/feature-x" });
    const res = await hook("github", other, { "X-Hub-Signature-256": sign(other) });
    assert.equal(res.status, 202);
    assert.deepEqual(((await res.json()) as { stacks: string[] }).stacks, []);
    assert.equal((await status("one")).history.length, before);
  });

  it("applies a commit within seconds of a signed push webhook", async () => {
    const e = env();
    repo.edit({ "clusters/one/app.yaml": `${deploy("one")}---\n${cm("one", "v2")}` });
    const sha = await repo.commitAll("Bump one to v2");
    const body = JSON.stringify({ ref: "refs/heads/main", after: sha });
    const started = Date.now();
    assert.equal((await hook("github", body, { "X-Hub-Signature-256": sign(body) })).status, 202);
    await eventually("the new commit is applied", async () => (await status("one")).lastAppliedRevision === sha, 60_000);
    assert.equal((await e.getJson<{ data: { value: string } }>("configmap", "settings", "-n", "one")).data.value, "v2");
    process.stderr.write(`# webhook -> applied in ${Date.now() - started} ms\n`);
  });

  it("applies a commit found by polling within the interval", async () => {
    const e = env();
    repo.edit({ "clusters/three/cm.yaml": cm("three", "v2") });
    const sha = await repo.commitAll("Bump three to v2");
    await eventually("stack three applies the commit", async () => (await status("three")).lastAppliedRevision === sha, 60_000);
    assert.equal((await e.getJson<{ data: { value: string } }>("configmap", "settings", "-n", "three")).data.value, "v2");
  });

  it("restores a Deployment deleted by hand through the watch, long before the drift interval", async () => {
    const e = env();
    await e.kubectl("delete", "deployment", "web", "-n", "one", "--wait=true");
    const started = Date.now();
    await eventually("the Deployment is back", () => e.exists("deployment", "web", "-n", "one"), 60_000);
    process.stderr.write(`# deleted -> restored in ${Date.now() - started} ms\n`);
    // The run that restored it was started by the watch (the object exists before the run records itself).
    await eventually("the heal run is recorded", async () => (await status("one")).history[0]?.triggers.includes("live") ?? false, 60_000);
    const heal = (await status("one")).history[0]!;
    assert.equal(heal.result, "Succeeded");
    assert.equal(heal.changes?.created, 1);
  });

  it("in detect mode reports a deletion (status, metric, notification) and changes nothing", async () => {
    const e = env();
    await e.kubectl("delete", "configmap", "settings", "-n", "two", "--wait=true");
    await eventually("stack two reports drift", async () => (await status("two")).drift.detected, 60_000);
    const s = await status("two");
    assert.equal(s.mode, "detect");
    assert.deepEqual(s.drift.objects, ["created ConfigMap/two/settings"]);
    const metrics = await (await fetch(`${runner.url}/metrics`)).text();
    assert.match(metrics, /ferry_drift\{stack="two"\} 1/);
    await eventually("a drift notification arrived", async () =>
      receiver.bodies.some((b) => (b as { event?: string; stack?: string }).event === "drift" && (b as { stack: string }).stack === "two"),
    );
    assert.equal(await e.exists("configmap", "settings", "-n", "two"), false);
  });

  it("marks a stack Stalled when its repo is unreachable, leaves the cluster as it is, and recovers by itself", async () => {
    const e = env();
    const moved = `${repo.dir}-moved`;
    fs.renameSync(repo.dir, moved);
    try {
      await eventually("stack three is Stalled", async () => (await status("three")).condition === "Stalled", 30_000);
      const st = await status("three");
      assert.equal(st.reason, "SourceFailed");
      assert.equal((await e.getJson<{ data: { value: string } }>("configmap", "settings", "-n", "three")).data.value, "v2");
    } finally {
      fs.renameSync(moved, repo.dir);
    }
    await eventually("stack three is Ready again", async () => (await status("three")).condition === "Ready", 60_000);
    // The notification is posted after the status turns Ready: wait for it rather than race it.
    await eventually(
      "a recovery notification arrives",
      async () => receiver.bodies.some((b) => (b as { event?: string }).event === "recovery"),
      15_000,
    );
  });

  it("answers ferry status, as text and JSON", async () => {
    const e = env();
    const json = await e.ferry(["status", "--server", runner.url, "-o", "json"]);
    assert.equal(json.code, 0, json.stderr);
    const all = JSON.parse(json.stdout) as StackStatus[];
    assert.deepEqual(all.map((s) => s.name).sort(), ["one", "three", "two"]);
    const text = await e.ferry(["status", "--server", runner.url]);
    assert.match(text.stdout, /^STACK\s+MODE\s+STATUS/m);
    assert.match(text.stdout, /^two\s+detect\s+Ready/m);
    const missing = await e.ferry(["reconcile", "nope", "--server", runner.url], { FERRY_API_TOKEN: API_TOKEN });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no stack "nope"/);
  });

  it("serves health, readiness and metrics", async () => {
    assert.equal((await fetch(`${runner.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${runner.url}/readyz`)).status, 200);
    const metrics = await (await fetch(`${runner.url}/metrics`)).text();
    assert.match(metrics, /ferry_reconcile_duration_seconds_bucket\{.*stack="one".*result="Succeeded"/);
    assert.match(metrics, /ferry_objects_managed\{stack="one"\} 3/);
    assert.match(metrics, /ferry_last_success_timestamp_seconds\{stack="three"\}/);
  });

  it("ends cleanly on SIGTERM", async () => {
    assert.equal(await runner.stop("SIGTERM"), 0);
  });
});
