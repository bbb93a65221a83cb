import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import { Revision } from "../../src/source/git-source";
import { Notification } from "../../src/agent/notifier";
import { Pin } from "../../src/reconcile/pin";
import { ReconcileResult } from "../../src/reconcile/reconcile-result";
import { RunnerStack } from "../../src/agent/runner-config";
import { RunnerMetrics } from "../../src/agent/runner-metrics";
import { StackWorker, Trigger, WorkerDeps } from "../../src/agent/stack-worker";

const PINNED = "a".repeat(40);
const HEAD1 = "b".repeat(40);
const HEAD2 = "c".repeat(40);
const HEAD3 = "d".repeat(40);
const HOUR = 3_600_000;

const PIN: Pin = { revision: PINNED, from: HEAD1, by: "alice", at: "2025-01-02T03:04:05.000Z", policy: "resume", head: HEAD1 };

/** What one reconcile was asked to do. */
interface Call {
  readonly trigger: Trigger;
  readonly unpin: boolean;
  /** The remote head when the run started. */
  readonly head: string;
}

/** The outcome of a reconcile: a result (revision as a SHA), or an error the reconcile throws. */
type Outcome = { succeeded: boolean; sha?: string; pin?: Pin; unpinned?: ReconcileResult["unpinned"] } | Error;

const revision = (sha: string): Revision => ({
  sha,
  ref: "main",
  author: "Alice",
  authorEmail: "alice@example.com",
  committer: "Alice",
  committerEmail: "alice@example.com",
  date: "2025-01-02T03:04:05.000Z",
  subject: "a change",
});

/** A worker with fake I/O: `outcome` decides each reconcile; `head` is what the remote says. */
function harness(outcome: (call: Call, index: number) => Outcome, options: { pollInterval?: number } = {}) {
  const stack: RunnerStack = {
    name: "dev",
    repo: "https://git.example.invalid/config.git",
    path: "clusters/dev",
    mode: "enforce",
    pollInterval: options.pollInterval ?? HOUR,
    driftInterval: HOUR,
    fullRefreshInterval: HOUR,
    watch: false,
    policy: {},
  };
  const state = { head: HEAD1, acquired: 0, remoteHeadCalls: 0 };
  const calls: Call[] = [];
  /** The worker's status as each reconcile started (after the runs before it were recorded). */
  const before: { pinned?: Pin; reason?: string }[] = [];
  const notifications: Notification[] = [];
  const deps: WorkerDeps = {
    reconcile: async (s, o) => {
      const call = { trigger: o.trigger, unpin: o.unpin, head: state.head };
      calls.push(call);
      before.push({ pinned: worker.status.pinned, reason: worker.status.reason });
      const out = outcome(call, calls.length - 1);
      if (out instanceof Error) throw out;
      return {
        stack: s.name,
        succeeded: out.succeeded,
        reason: out.succeeded ? undefined : "ApplyFailed",
        message: out.succeeded ? undefined : "the apply failed",
        revision: out.sha ? revision(out.sha) : undefined,
        objects: [],
        durationMs: 1,
        pin: out.pin,
        unpinned: out.unpinned,
      };
    },
    remoteHead: async () => {
      state.remoteHeadCalls++;
      return state.head;
    },
    // Called synchronously when a run starts: `acquired` counts the runs started.
    acquire: async () => {
      state.acquired++;
      return () => {};
    },
    liveView: () => {
      throw new Error("no live view with watch: false");
    },
    notify: (n) => notifications.push(n),
    metrics: new RunnerMetrics(),
    log: pino({ level: "silent" }),
    retryDelayMs: 5,
    maxRetryDelayMs: 20,
  };
  const worker: StackWorker = new StackWorker(stack, deps);
  /** Waits until every run started has been recorded (and the worker has left its run). */
  const idle = (what: string, runs: number) =>
    waitUntil(what, () => state.acquired === runs && calls.length === runs && worker.status.history.length === runs);
  return { worker, state, calls, before, notifications, idle };
}

/** Polls `check` on later turns of the event loop until it holds, or fails after the deadline. */
async function waitUntil(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
  }
}

const pinned: Outcome = { succeeded: true, sha: PINNED, pin: PIN };

describe("stack worker pins", () => {
  it("shows the pin of a successful run in the status, and drops it once a run reports none", async () => {
    const h = harness((_c, i) => (i === 0 ? pinned : i === 1 ? { succeeded: false, sha: PINNED } : { succeeded: true, sha: HEAD1 }));
    try {
      h.worker.start();
      await h.idle("the first run is recorded", 1);
      assert.deepEqual(h.worker.status.pinned, PIN);
      assert.equal(h.worker.status.condition, "Ready");
      assert.equal(h.worker.status.lastAppliedRevision, PINNED);

      // The second run fails and is retried; the retry succeeds without a pin.
      h.worker.trigger("manual");
      await h.idle("the failed run and its retry are recorded", 3);
      assert.deepEqual(
        h.calls.map((c) => c.trigger),
        ["start", "manual", "retry"],
      );
      // A failed run changes nothing in the state: the stack was still shown held at the pin.
      assert.deepEqual(h.before[2], { pinned: PIN, reason: "ApplyFailed" });
      assert.equal(h.worker.status.pinned, undefined);
      assert.equal(h.worker.status.lastAppliedRevision, HEAD1);
    } finally {
      await h.worker.stop();
    }
  });

  it("asks the next run to unpin after a resume, and stops asking once that run succeeded", async () => {
    const h = harness((c, i) =>
      i === 0 ? pinned : c.unpin ? { succeeded: true, sha: HEAD1, unpinned: "resume" } : { succeeded: true, sha: HEAD1 },
    );
    try {
      h.worker.start();
      await h.idle("the first run is recorded", 1);
      assert.deepEqual(h.calls[0], { trigger: "start", unpin: false, head: HEAD1 });

      h.worker.setSuspended(true);
      h.worker.trigger("drift");
      assert.equal(h.state.acquired, 1, "a suspended stack does not run on the drift interval");
      h.worker.setSuspended(false);
      await h.idle("the resume run is recorded", 2);
      assert.deepEqual(h.calls[1], { trigger: "manual", unpin: true, head: HEAD1 });
      assert.equal(h.worker.status.pinned, undefined);
      assert.equal(h.worker.status.mode, "enforce");
      assert.equal(h.worker.status.condition, "Ready");

      h.worker.trigger("manual");
      await h.idle("the run after the resume is recorded", 3);
      assert.deepEqual(h.calls[2], { trigger: "manual", unpin: false, head: HEAD1 });
    } finally {
      await h.worker.stop();
    }
  });

  it("keeps asking to unpin on the retries of a resume run that failed", async () => {
    const h = harness((_c, i) => {
      switch (i) {
        case 0:
          return pinned;
        case 1:
          return { succeeded: false, sha: PINNED };
        case 2:
          return new Error("the cluster is unreachable");
        default:
          return { succeeded: true, sha: HEAD1 };
      }
    });
    try {
      h.worker.start();
      await h.idle("the first run is recorded", 1);

      // The resume run fails, its first retry throws, its second retry succeeds.
      h.worker.setSuspended(false);
      await h.idle("the resume run and its retries are recorded", 4);
      assert.deepEqual(h.calls.slice(1), [
        { trigger: "manual", unpin: true, head: HEAD1 },
        { trigger: "retry", unpin: true, head: HEAD1 },
        { trigger: "retry", unpin: true, head: HEAD1 },
      ]);
      assert.deepEqual(h.before[2], { pinned: PIN, reason: "ApplyFailed" });
      assert.deepEqual(
        h.worker.status.history.map((r) => r.result),
        ["Succeeded", "Failed", "Failed", "Succeeded"],
      );
      assert.equal(h.worker.status.history[1]?.message, "Error: the cluster is unreachable");
      assert.equal(h.worker.status.condition, "Ready");
      assert.deepEqual(
        h.notifications.map((n) => n.event),
        ["failure", "recovery"],
      );

      h.worker.trigger("manual");
      await h.idle("the run after the recovery is recorded", 5);
      assert.deepEqual(h.calls[4], { trigger: "manual", unpin: false, head: HEAD1 });
    } finally {
      await h.worker.stop();
    }
  });

  it("runs a pinned stack once per new remote head, not once per poll", async () => {
    // The pin lifts itself (new-commit policy) when the branch reaches HEAD2.
    const h = harness((c) =>
      c.head === HEAD2 || c.head === HEAD3
        ? { succeeded: true, sha: c.head, unpinned: c.head === HEAD2 ? "new-commit" : undefined }
        : pinned,
    );
    try {
      h.worker.start();
      await h.idle("the first run is recorded", 1);
      assert.equal(h.worker.status.lastAttemptedRevision, PINNED);
      assert.deepEqual(h.worker.status.pinned, PIN);

      // The head differs from the pinned revision: the first poll that sees it runs once.
      await h.worker.poll();
      assert.equal(h.state.acquired, 2);
      await h.idle("the run for HEAD1 is recorded", 2);
      assert.equal(h.calls[1]?.trigger, "commit");
      assert.deepEqual(h.worker.status.pinned, PIN);

      // Polls that see the same head again do not run, although it still differs from the pinned revision.
      for (let i = 0; i < 3; i++) {
        await h.worker.poll();
        assert.equal(h.state.acquired, 2, `poll ${i + 1} with an unchanged head started a run`);
      }

      h.state.head = HEAD2;
      await h.worker.poll();
      assert.equal(h.state.acquired, 3);
      await h.idle("the run for HEAD2 is recorded", 3);
      assert.deepEqual(h.calls[2], { trigger: "commit", unpin: false, head: HEAD2 });
      assert.equal(h.worker.status.pinned, undefined);
      assert.equal(h.worker.status.lastAppliedRevision, HEAD2);

      // Unpinned and up to date: no run until the branch moves again.
      await h.worker.poll();
      assert.equal(h.state.acquired, 3);
      h.state.head = HEAD3;
      await h.worker.poll();
      await h.idle("the run for HEAD3 is recorded", 4);
      assert.equal(h.calls[3]?.head, HEAD3);
      assert.equal(h.state.remoteHeadCalls, 7);
    } finally {
      await h.worker.stop();
    }
  });

  it("on a short poll interval, starts one run per new head of a pinned stack", async () => {
    const h = harness(() => pinned, { pollInterval: 5 });
    try {
      h.worker.start();
      await waitUntil("many polls saw HEAD1", () => h.state.remoteHeadCalls >= 15);
      await h.idle("the runs are recorded", 2);
      assert.deepEqual(
        h.calls.map((c) => c.trigger),
        ["start", "commit"],
      );

      h.state.head = HEAD2;
      const polls = h.state.remoteHeadCalls;
      await waitUntil("many polls saw HEAD2", () => h.state.remoteHeadCalls >= polls + 15);
      await h.idle("the run for HEAD2 is recorded", 3);
      assert.deepEqual(h.calls[2], { trigger: "commit", unpin: false, head: HEAD2 });
      assert.deepEqual(h.worker.status.pinned, PIN);
    } finally {
      await h.worker.stop();
    }
  });
});
