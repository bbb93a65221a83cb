import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import { objectId, ObjectId } from "../../src/desired-state/object-id";
import { planInformers, RunEnd, WatchedObject } from "../../src/agent/live-view";
import { planRun, RunPlanInput } from "../../src/agent/run-plan";
import { workerMode } from "../../src/agent/runner";
import { RunnerStack } from "../../src/agent/runner-config";
import { RunnerMetrics } from "../../src/agent/runner-metrics";
import { LiveViewPort, StackWorker, Trigger, WorkerDeps } from "../../src/agent/stack-worker";

const HOUR = 3_600_000;
const web = objectId({ group: "apps", kind: "Deployment", namespace: "apps", name: "web" }, "Namespaced");
const cm = objectId({ group: "", kind: "ConfigMap", namespace: "apps", name: "settings" }, "Namespaced");

/** A live view the test drives: synced or not, and what it judges drifted. */
class FakeView implements LiveViewPort {
  isSynced = true;
  driftedNow: ObjectId[] = [];
  readonly ends: RunEnd[] = [];
  started = 0;
  stopped = false;
  runStarted(): void {
    this.started++;
  }
  prepare(): void {}
  runEnded(end: RunEnd): void {
    this.ends.push(end);
  }
  drifted(): ObjectId[] {
    return this.driftedNow;
  }
  synced(): boolean {
    return this.isSynced;
  }
  stop(): void {
    this.stopped = true;
  }
}

interface Call {
  readonly trigger: Trigger;
  readonly full: boolean;
  readonly targets?: readonly ObjectId[];
  readonly drifted?: readonly ObjectId[];
}

const HEAD = "a".repeat(40);

function harness(gate: () => Promise<void> = async () => {}) {
  const stack: RunnerStack = {
    name: "dev",
    repo: "https://git.example.invalid/config.git",
    path: "clusters/dev",
    mode: "enforce",
    pollInterval: HOUR,
    driftInterval: HOUR,
    fullRefreshInterval: HOUR,
    watch: true,
    policy: {},
  };
  const view = new FakeView();
  const calls: Call[] = [];
  const desired: WatchedObject[] = [
    { id: web, object: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "apps" } } },
  ];
  let acquired = 0;
  const deps: WorkerDeps = {
    reconcile: async (s, o) => {
      calls.push({ trigger: o.trigger, full: o.full, targets: o.targets, drifted: o.drifted });
      o.onDesired(desired);
      await gate();
      const revision = {
        sha: HEAD,
        ref: "main",
        author: "A",
        authorEmail: "a@x",
        committer: "A",
        committerEmail: "a@x",
        date: "",
        subject: "s",
      };
      return {
        stack: s.name,
        succeeded: true,
        revision,
        objects: [],
        durationMs: 1,
        changes: { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 1 },
      };
    },
    remoteHead: async () => HEAD,
    acquire: async () => {
      acquired++;
      return () => {};
    },
    liveView: () => view,
    notify: () => {},
    metrics: new RunnerMetrics(),
    log: pino({ level: "silent" }),
    retryDelayMs: 5,
    maxRetryDelayMs: 20,
  };
  const worker = new StackWorker(stack, deps);
  const idle = (runs: number) => waitUntil(`${runs} runs are recorded`, () => worker.status.history.length === runs && acquired === runs);
  return { worker, view, calls, idle };
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
  }
}

describe("stack worker with a live view", () => {
  it("records a drift tick with nothing drifted as a run without calling the pipeline", async () => {
    const h = harness();
    try {
      h.worker.start();
      await h.idle(1);
      assert.deepEqual(h.calls, [{ trigger: "start", full: true, targets: undefined, drifted: undefined }]);
      // The first run started the view and handed it its baseline.
      assert.equal(h.view.ends.length, 1);
      assert.equal(h.view.ends[0]!.baseline?.length, 1);

      h.worker.trigger("drift");
      await h.idle(2);
      assert.equal(h.calls.length, 1, "no pipeline run");
      const last = h.worker.status.history[0]!;
      assert.equal(last.trigger, "drift");
      assert.equal(last.result, "Succeeded");
      assert.match(last.message ?? "", /nothing drifted \(live view\)/);
      assert.deepEqual(last.changes, { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 0 });
      assert.equal(h.worker.status.condition, "Ready");
    } finally {
      await h.worker.stop();
    }
    assert.equal(h.view.stopped, true);
  });

  it("runs no follow-up for a head a poll saw during the run that then applied it", async () => {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    let first = true;
    const h = harness(async () => {
      if (first) {
        first = false;
        await opened;
      }
    });
    try {
      h.worker.start();
      await waitUntil("the first run is in progress", () => h.calls.length === 1);
      await h.worker.poll();
      open();
      await h.idle(1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(h.calls.length, 1);
      assert.equal(h.worker.status.history.length, 1);
    } finally {
      await h.worker.stop();
    }
  });

  it("heals what drifted on a drift tick, and runs full when the view is not synced", async () => {
    const h = harness();
    try {
      h.worker.start();
      await h.idle(1);
      h.view.driftedNow = [cm];
      h.worker.trigger("drift");
      await h.idle(2);
      assert.deepEqual(h.calls[1], { trigger: "drift", full: false, targets: [cm], drifted: undefined });
      assert.deepEqual(h.view.ends[1]!.healed, [cm]);

      h.view.isSynced = false;
      h.worker.trigger("drift");
      await h.idle(3);
      assert.equal(h.calls[2]!.full, true);
    } finally {
      await h.worker.stop();
    }
  });

  it("applies what changed plus what drifted on a commit, and everything on request", async () => {
    const h = harness();
    try {
      h.worker.start();
      await h.idle(1);
      h.view.driftedNow = [web];
      h.worker.trigger("commit");
      await h.idle(2);
      assert.deepEqual(h.calls[1], { trigger: "commit", full: false, targets: undefined, drifted: [web] });
      h.worker.trigger("manual", undefined, { full: true });
      await h.idle(3);
      assert.equal(h.calls[2]!.full, true);
      h.worker.trigger("refresh");
      await h.idle(4);
      assert.equal(h.calls[3]!.full, true);
    } finally {
      await h.worker.stop();
    }
  });
});

describe("run plan", () => {
  const base: RunPlanInput = {
    triggers: new Set<Trigger>(["commit"]),
    targets: "all",
    fullRequested: false,
    fullDue: false,
    detect: false,
    stalled: false,
    view: { synced: true, drifted: [] },
  };

  it("refreshes everything on the first run, the safety net, a request, and without a synced view", () => {
    assert.deepEqual(planRun({ ...base, triggers: new Set(["start"]) }), { kind: "run", full: true });
    assert.deepEqual(planRun({ ...base, triggers: new Set(["refresh"]) }), { kind: "run", full: true });
    assert.deepEqual(planRun({ ...base, fullDue: true }), { kind: "run", full: true });
    assert.deepEqual(planRun({ ...base, fullRequested: true }), { kind: "run", full: true });
    assert.deepEqual(planRun({ ...base, view: { synced: false, drifted: [] } }), { kind: "run", full: true });
    assert.deepEqual(planRun({ ...base, view: undefined }), { kind: "run", full: true });
  });

  it("heals the objects a live change names, with what else drifted on a tick", () => {
    assert.deepEqual(planRun({ ...base, triggers: new Set(["live"]), targets: [web] }), { kind: "run", full: false, targets: [web] });
    assert.deepEqual(planRun({ ...base, triggers: new Set(["live", "drift"]), targets: "all", view: { synced: true, drifted: [cm] } }), {
      kind: "run",
      full: false,
      targets: [cm],
    });
  });

  it("skips a drift tick with nothing drifted, unless the stack is stalled", () => {
    assert.equal(planRun({ ...base, triggers: new Set(["drift"]) }).kind, "skip");
    assert.deepEqual(planRun({ ...base, triggers: new Set(["drift"]), stalled: true }), { kind: "run", full: true });
  });

  it("keeps detect mode on its full plan", () => {
    assert.deepEqual(planRun({ ...base, detect: true, triggers: new Set(["drift"]) }), { kind: "run", full: true });
  });

  it("builds the pipeline's mode from the plan", () => {
    const o = { trigger: "commit" as const, detectOnly: false, unpin: false, signal: new AbortController().signal, onDesired: () => {} };
    assert.deepEqual(workerMode({ ...o, full: true }), { kind: "apply", run: "sync", unpin: false, scope: "full" });
    assert.deepEqual(workerMode({ ...o, full: false, drifted: [web] }), {
      kind: "apply",
      run: "sync",
      unpin: false,
      scope: "changed",
      drifted: [web],
    });
    assert.deepEqual(workerMode({ ...o, full: false, targets: [web] }), { kind: "heal", targets: [web] });
    assert.deepEqual(workerMode({ ...o, trigger: "refresh", full: true }), { kind: "apply", run: "drift", unpin: false, scope: "full" });
  });
});

describe("live view informers", () => {
  const at = (kind: string, namespace: string | undefined, name: string): WatchedObject => ({
    id: objectId({ group: "", kind, namespace, name }, namespace ? "Namespaced" : "Cluster"),
    object: { apiVersion: "v1", kind, metadata: { name, namespace } },
  });

  it("watches a kind in its few namespaces, cluster-wide past them and for cluster-scoped kinds", () => {
    const few = planInformers([at("ConfigMap", "a", "x"), at("ConfigMap", "b", "y"), at("Namespace", undefined, "a")], 2);
    assert.deepEqual([...few.specs.keys()].sort(), ["v1|ConfigMap|a", "v1|ConfigMap|b", "v1|Namespace|*"]);
    assert.equal(few.of.get("core/ConfigMap/b/y"), "v1|ConfigMap|b");
    const many = planInformers([at("ConfigMap", "a", "x"), at("ConfigMap", "b", "y"), at("ConfigMap", "c", "z")], 2);
    assert.deepEqual([...many.specs.keys()], ["v1|ConfigMap|*"]);
  });
});
