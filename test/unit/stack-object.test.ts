import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Condition,
  parseStackKey,
  parseStackSpec,
  runEvent,
  secretEnv,
  stackConditions,
  stackKey,
  stackStatus,
  StackObject,
  toRunnerStack,
} from "../../src/agent/stack-object";
import { StackStatus } from "../../src/agent/stack-worker";

const obj = (spec: unknown, extra: Partial<StackObject["metadata"]> = {}): StackObject => ({
  metadata: { name: "web", namespace: "apps", generation: 3, ...extra },
  spec,
});
const T0 = new Date("2026-11-30T10:00:00Z");
const T1 = new Date("2026-11-30T10:05:00Z");

describe("Stack objects", () => {
  it("name their worker <namespace>.<name>, and the key parses back", () => {
    assert.equal(stackKey(obj({})), "apps.web");
    assert.deepEqual(parseStackKey("apps.web.v2"), { namespace: "apps", name: "web.v2" });
    assert.equal(parseStackKey("nodot"), undefined);
    assert.equal(parseStackKey(".x"), undefined);
  });

  it("become a runner stack with the CRD's defaults, suspend as mode suspended", () => {
    const o = obj({ repo: "ssh://git@example.com/r.git", path: "clusters/dev", suspend: true, interval: "30s" });
    const spec = parseStackSpec(o);
    const stack = toRunnerStack(o, spec, { kubeconfig: "/x/kubeconfig" });
    assert.equal(stack.name, "apps.web");
    assert.equal(stack.mode, "suspended");
    assert.equal(stack.pollInterval, 30_000);
    assert.equal(stack.driftInterval, 300_000);
    assert.equal(stack.fullRefreshInterval, 3_600_000);
    assert.equal(stack.watch, true);
    assert.equal(stack.kubeconfig, "/x/kubeconfig");
    assert.equal(stack.clusterIdentifier, "apps.web");
    // A context is only meaningful in a kubeconfig from a Secret.
    assert.equal(toRunnerStack(o, { ...spec, cluster: { context: "c" } }, { kubeconfig: "/k" }).context, undefined);
  });

  it("refuse an invalid spec naming the object and the field", () => {
    assert.throws(
      () => parseStackSpec(obj({ repo: "r", path: "p", interval: "soon" })),
      /Stack apps\.web: invalid spec: spec\.interval: a duration/,
    );
    assert.throws(() => parseStackSpec(obj({ path: "p" })), /spec\.repo/);
  });

  it("put a git Secret in Flux's shape and the passphrase where a run reads them", () => {
    assert.deepEqual(secretEnv({ identityFile: "/s/identity", knownHostsFile: "/s/kh" }, "pp"), {
      FERRY_GIT_SSH_KEY_FILE: "/s/identity",
      FERRY_GIT_KNOWN_HOSTS_FILE: "/s/kh",
      PULUMI_CONFIG_PASSPHRASE: "pp",
    });
    assert.deepEqual(secretEnv({ password: "pw" }, undefined), { FERRY_GIT_TOKEN: "pw" });
    assert.deepEqual(secretEnv(undefined, undefined), {});
  });
});

describe("kstatus conditions of a Stack", () => {
  const base = { lastAttemptedRevision: "a".repeat(40), lastAppliedRevision: "a".repeat(40) };
  it("Reconciling with Ready Unknown while a run is under way or none ended yet", () => {
    for (const condition of ["Pending", "Reconciling"] as const) {
      const c = stackConditions({ ...base, condition }, [], 3, T0)!;
      assert.deepEqual(
        c.map((x) => [x.type, x.status, x.observedGeneration]),
        [
          ["Ready", "Unknown", 3],
          ["Reconciling", "True", 3],
        ],
      );
    }
  });

  it("Ready True alone after success; Stalled True and Ready False after a failure, with its reason", () => {
    const ready = stackConditions({ ...base, condition: "Ready", reason: "ReconciliationSucceeded" }, [], 3, T0)!;
    assert.deepEqual(
      ready.map((x) => [x.type, x.status]),
      [["Ready", "True"]],
    );
    assert.match(ready[0]!.message, /Applied revision a{40}/);
    const stalled = stackConditions({ ...base, condition: "Stalled", reason: "SourceFailed", message: "git: unreachable" }, ready, 3, T1)!;
    assert.deepEqual(
      stalled.map((x) => [x.type, x.status, x.reason, x.message]),
      [
        ["Ready", "False", "SourceFailed", "git: unreachable"],
        ["Stalled", "True", "SourceFailed", "git: unreachable"],
      ],
    );
  });

  it("keep a condition's lastTransitionTime while its status holds, and move it when it changes", () => {
    const first = stackConditions({ ...base, condition: "Ready" }, [], 3, T0)!;
    const again = stackConditions({ ...base, condition: "Ready" }, first, 4, T1)!;
    assert.equal(again[0]!.lastTransitionTime, T0.toISOString());
    assert.equal(again[0]!.observedGeneration, 4);
    const moved = stackConditions({ ...base, condition: "Reconciling" }, again, 4, T1)!;
    assert.equal(moved[0]!.lastTransitionTime, T1.toISOString());
  });

  it("leave the conditions as they were while suspended", () => {
    assert.equal(stackConditions({ ...base, condition: "Suspended" }, [], 3, T0), undefined);
    const previous: Condition[] = [
      {
        type: "Ready",
        status: "True",
        observedGeneration: 2,
        lastTransitionTime: T0.toISOString(),
        reason: "ReconciliationSucceeded",
        message: "m",
      },
    ];
    const worker: StackStatus = {
      name: "apps.web",
      mode: "suspended",
      condition: "Suspended",
      drift: { detected: false, objects: [] },
      history: [],
    };
    const status = stackStatus({ ...obj({}), status: { conditions: previous } }, worker, "r1", 3, T1);
    assert.deepEqual(status.conditions, previous);
    assert.equal(status.owner, "r1");
    assert.equal(status.observedGeneration, 3);
  });

  it("keep the five newest runs on the object", () => {
    const run = {
      trigger: "drift" as const,
      triggers: ["drift" as const],
      startedAt: T0.toISOString(),
      durationMs: 1,
      result: "Succeeded" as const,
    };
    const worker: StackStatus = {
      name: "apps.web",
      mode: "enforce",
      condition: "Ready",
      drift: { detected: false, objects: [] },
      history: Array(8).fill(run),
    };
    assert.equal((stackStatus(obj({}), worker, "r1", 3, T0).history as unknown[]).length, 5);
  });
});

describe("Events of runs", () => {
  const run = {
    trigger: "commit" as const,
    triggers: ["commit" as const],
    startedAt: T0.toISOString(),
    durationMs: 1,
    revision: "b".repeat(40),
  };
  it("Warning for a failure, Normal for a run that changed objects, none for one that changed nothing", () => {
    assert.deepEqual(runEvent({ ...run, result: "Failed", reason: "ApplyFailed", message: "boom" }), {
      type: "Warning",
      reason: "ApplyFailed",
      message: "boom revision bbbbbbbbbbbb",
    });
    const applied = runEvent({ ...run, result: "Succeeded", changes: { created: 2, updated: 1, replaced: 0, deleted: 0, unchanged: 4 } });
    assert.equal(applied?.type, "Normal");
    assert.match(applied!.message, /2 created, 1 updated/);
    assert.equal(
      runEvent({ ...run, result: "Succeeded", changes: { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 4 } }),
      undefined,
    );
  });
});
