// End to end: the runner's live view stays on during runs, survives watches the API server ends,
// and the full run at start heals what changed while the runner was down. The drift interval is
// 10 minutes, so only the live view (or the start's full run) can heal within the test.
import assert from "node:assert/strict";
import * as path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { RunRecord, StackStatus } from "../../src/agent/stack-worker";
import { ConfigRepo } from "../helpers/config-repo";
import { eventually, useE2E } from "../helpers/e2e";
import { RunnerProcess, startRunner, writeRunnerConfig } from "../helpers/runner-process";

const API_TOKEN = "api-token-for-the-live-view-tests";
/** Watches end after 5-10 s: the test sees them resumed. */
const MIN_REQUEST_TIMEOUT_S = 5;

const NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: live}\n";
const settings = (v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: live}\ndata: {value: "${v}"}\n`;
const WEB =
  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: live}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n";
const many = (n: number) =>
  Array.from(
    { length: n },
    (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bulk-${i}, namespace: live}\ndata: {i: "${i}"}\n`,
  ).join("---\n");

describe("the live view", () => {
  const env = useE2E({ apiServerFlags: [`--min-request-timeout=${MIN_REQUEST_TIMEOUT_S}`] });
  let repo: ConfigRepo;
  let runner: RunnerProcess | undefined;
  let config: string;
  let first: string;

  const status = async (): Promise<StackStatus> => (await (await fetch(`${runner!.url}/api/stacks/live`)).json()) as StackStatus;
  const value = async (): Promise<string> =>
    (await env().getJson<{ data: { value: string } }>("configmap", "settings", "-n", "live")).data.value;
  const start = async (): Promise<void> => {
    runner = await startRunner(config, { ...env().env, FERRY_API_TOKEN: API_TOKEN });
  };
  /** What the runner did, for a failing assertion: its history and what it logged of the live view. */
  const story = async (): Promise<string> => {
    const lines = runner!
      .output()
      .split("\n")
      .filter((l) => /"phase":"(watch|start|done)"/.test(l));
    return `${JSON.stringify((await status()).history, null, 1)}\n${lines.slice(-40).join("\n")}`;
  };
  /** The runs recorded after `run` (history is newest first). */
  const after_ = (history: readonly RunRecord[], run: RunRecord): RunRecord[] => history.filter((r) => r.startedAt > run.startedAt);

  before(async () => {
    const e = env();
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "foundation");
    repo.edit({ "clusters/live/ns.yaml": NS, "clusters/live/app.yaml": `${WEB}---\n${settings("v1")}` });
    first = await repo.commitAll("A Deployment and its settings");
    config = path.join(e.dir, "ferry.yaml");
    writeRunnerConfig(config, {
      listen: "127.0.0.1:0",
      retryDelay: "1s",
      maxRetryDelay: "2s",
      stacks: [
        {
          name: "live",
          repo: repo.dir,
          ref: "main",
          path: "clusters/live",
          kubeconfig: e.cluster.kubeconfig,
          pollInterval: "1s",
          driftInterval: "10m",
        },
      ],
    });
    await start();
    await eventually(
      "the stack is Ready at the first commit",
      async () => {
        const s = await status();
        return s.condition === "Ready" && s.lastAppliedRevision === first;
      },
      120_000,
    );
  });
  after(async () => {
    await runner?.stop();
  });

  it("heals a Deployment deleted and a ConfigMap edited while a run is in progress, right after that run", async () => {
    const e = env();
    repo.edit({ "clusters/live/bulk.yaml": many(60) });
    const sha = await repo.commitAll("Sixty ConfigMaps");
    // Out-of-band changes once the run is applying (its refresh, if any, is behind it).
    await eventually(
      "the run is applying",
      async () => (await status()).condition === "Reconciling" && (await e.exists("configmap", "bulk-0", "-n", "live")),
      60_000,
    );
    await e.kubectl("delete", "deployment", "web", "-n", "live", "--wait=false");
    await e.kubectl("patch", "configmap", "settings", "-n", "live", "--type=merge", "-p", '{"data":{"value":"edited"}}');
    await eventually("the commit's run ended", async () => (await status()).lastAppliedRevision === sha, 120_000);
    const commitRun = (await status()).history.find((r) => r.revision === sha && r.triggers.includes("commit"))!;
    assert.ok(commitRun, "the commit's run is recorded");
    await eventually(
      "the Deployment is back and the ConfigMap restored",
      async () => (await e.exists("deployment", "web", "-n", "live")) && (await value()) === "v1",
      60_000,
    );
    await eventually("a heal run after the commit's run is recorded", async () =>
      after_((await status()).history, commitRun).some((r) => r.triggers.includes("live") && r.result === "Succeeded"),
    ).catch(async (err: Error) => assert.fail(`${err.message}\n${await story()}`));
    const heals = after_((await status()).history, commitRun).filter((r) => r.triggers.includes("live"));
    assert.equal(
      heals.reduce((n, r) => n + (r.changes?.created ?? 0), 0),
      1,
      JSON.stringify(heals),
    );
    assert.equal(
      heals.reduce((n, r) => n + (r.changes?.updated ?? 0), 0),
      1,
      JSON.stringify(heals),
    );
    assert.ok(!(await status()).history.some((r) => r.trigger === "drift"), "the drift interval did not run");
  });

  it("resumes watches the API server ends, and heals a deletion after them within seconds", async () => {
    const e = env();
    // Let the server end every watch at least twice (each lasts 5-10 s), while the view stays synced.
    await delay(4 * MIN_REQUEST_TIMEOUT_S * 1000);
    const s = await status();
    assert.equal(s.liveView?.synced, true, JSON.stringify(s.liveView));
    assert.equal(s.liveView?.drifted, 0);
    assert.match(await (await fetch(`${runner!.url}/metrics`)).text(), /ferry_live_view_synced\{stack="live"\} 1/);
    const last = s.history[0]!;
    await e.kubectl("delete", "deployment", "web", "-n", "live", "--wait=false");
    const deleted = Date.now();
    await eventually("a heal run starts", async () => (await status()).condition === "Reconciling", 30_000);
    process.stderr.write(`# deleted -> heal run started in ${Date.now() - deleted} ms\n`);
    await eventually("the Deployment is back", () => e.exists("deployment", "web", "-n", "live"), 30_000);
    process.stderr.write(`# deleted -> restored in ${Date.now() - deleted} ms\n`);
    await eventually("the heal is recorded", async () => after_((await status()).history, last).some((r) => r.triggers.includes("live")));
  });

  it("heals drift made while the runner is stopped with the full run at restart", async () => {
    const e = env();
    assert.equal(await runner!.stop("SIGTERM"), 0);
    runner = undefined;
    await e.kubectl("delete", "deployment", "web", "-n", "live", "--wait=true");
    await e.kubectl("patch", "configmap", "settings", "-n", "live", "--type=merge", "-p", '{"data":{"value":"while-down"}}');
    await start();
    await eventually(
      "the start's run healed both",
      async () => (await e.exists("deployment", "web", "-n", "live")) && (await value()) === "v1",
      120_000,
    );
    await eventually(
      "the start's run is recorded",
      async () => (await status()).history.some((r) => r.trigger === "start" && r.result === "Succeeded"),
      60_000,
    );
    // A full run can also be asked for: `ferry reconcile --full` (the control API with {"full": true}).
    const runs = (await status()).history.length;
    const asked = await e.ferry(["reconcile", "live", "--full", "--server", runner!.url], { FERRY_API_TOKEN: API_TOKEN });
    assert.equal(asked.code, 0, asked.stderr);
    await eventually(
      "the requested full run is recorded",
      async () => {
        const h = await status();
        return h.history.length > runs && h.history[0]!.trigger === "manual" && h.history[0]!.scope?.kind === "full";
      },
      60_000,
    );
  });
});
