import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DesiredObject } from "../../src/desired-state/desired-state";
import { identify, KubeObject } from "../../src/desired-state/object-id";
import { StackSnapshot } from "../../src/reconcile/ports";
import { objectUrn, targetList } from "../../src/reconcile/pulumi-stack";
import { changedLive, changedScope, ChangedScopeInput } from "../../src/reconcile/run-scope";
import { resourceName } from "../../src/desired-state/object-id";

const cm = (name: string, data: Record<string, string> = {}): DesiredObject => {
  const o: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "default" }, data };
  return { object: o, id: identify(o, "Namespaced"), location: { file: "c/cm.yaml", line: 1 }, prune: true };
};
const urnOf = (d: DesiredObject) => objectUrn("dev", d.id);
const recorded = (...objects: DesiredObject[]): StackSnapshot => ({
  objects: objects.map((o) => ({ urn: urnOf(o), id: o.id, inputs: o.object })),
  pendingCreates: 0,
});
const input = (over: Partial<ChangedScopeInput>): ChangedScopeInput => ({
  snapshot: recorded(),
  desired: [],
  adopt: {},
  drifted: [],
  keptUndeclared: false,
  clusterChanged: false,
  outputsChanged: false,
  urnOf: (id) => objectUrn("dev", id),
  ...over,
});

describe("changedScope", () => {
  const a = cm("a");
  const b = cm("b");

  it("is none when every object is as recorded and nothing drifted", () => {
    assert.deepEqual(changedScope(input({ snapshot: recorded(a, b), desired: [a, b] })).scope, { kind: "none" });
  });

  it("splits state entries (changed, drifted, removed) from creates", () => {
    const gone = cm("gone");
    const fresh = cm("fresh");
    const { scope, why } = changedScope(
      input({ snapshot: recorded(a, b, gone), desired: [a, cm("b", { k: "2" }), fresh], drifted: [a.id] }),
    );
    assert.equal(scope.kind, "targets");
    if (scope.kind !== "targets") return;
    assert.deepEqual([...scope.urns].sort(), [urnOf(a), urnOf(b), urnOf(gone)].sort());
    assert.deepEqual(scope.creates, [urnOf(fresh)]);
    assert.match(why, /2 changed, 1 drifted, 1 removed from Git of 3 objects/);
  });

  it("ignores drift reported for an object Git no longer declares (its deletion is already a target)", () => {
    const { scope } = changedScope(input({ snapshot: recorded(a, b), desired: [a, b], drifted: [cm("elsewhere").id] }));
    assert.deepEqual(scope, { kind: "none" });
  });

  it("is full on an empty state, with adoptions, on another cluster, and while units are held back", () => {
    assert.equal(changedScope(input({ desired: [a] })).scope.kind, "full");
    const full = (over: Partial<ChangedScopeInput>) => changedScope(input({ snapshot: recorded(a), desired: [a], ...over }));
    assert.equal(full({ adopt: { x: "urn:old" } }).scope.kind, "full");
    assert.match(full({ clusterChanged: true }).why, /kube-system/);
    assert.equal(full({ keptUndeclared: true }).scope.kind, "full");
  });

  it("updates the frame alone when only the outputs changed", () => {
    assert.deepEqual(changedScope(input({ snapshot: recorded(a), desired: [a], outputsChanged: true })).scope, {
      kind: "targets",
      urns: [],
      creates: [],
      dependents: false,
    });
  });

  it("targets the stack, its component and providers, the entries, and each create as a glob", () => {
    const list = targetList("dev", { urns: [urnOf(a)], creates: [urnOf(b)] });
    assert.deepEqual(list, [
      "urn:pulumi:dev::ferry::pulumi:pulumi:Stack::ferry-dev",
      "urn:pulumi:dev::ferry::ferry:index:ClusterStack::cluster",
      "urn:pulumi:dev::ferry::ferry:index:ClusterStack$pulumi:providers:kubernetes::*",
      urnOf(a),
      `${urnOf(b)}*`,
    ]);
  });
});

describe("changedLive", () => {
  const deploy: DesiredObject = (() => {
    const o: KubeObject = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "default" } };
    return { object: o, id: identify(o, "Namespaced"), location: { file: "c/d.yaml", line: 1 }, prune: true };
  })();
  const a = cm("a");
  const snapshot: StackSnapshot = {
    objects: [
      { urn: urnOf(deploy), id: deploy.id, observed: { resourceVersion: "10", generation: 2 } },
      { urn: urnOf(a), id: a.id, observed: { resourceVersion: "11" } },
    ],
    pendingCreates: 0,
  };

  it("judges by generation when there is one (a controller's status write is no change), else by resourceVersion", () => {
    const seen = new Map([
      [resourceName(deploy.id), { resourceVersion: "99", generation: 2 }],
      [resourceName(a.id), { resourceVersion: "11" }],
    ]);
    assert.deepEqual(changedLive([deploy, a], snapshot, { seen, unlisted: [] }), []);
    seen.set(resourceName(deploy.id), { resourceVersion: "100", generation: 3 });
    seen.set(resourceName(a.id), { resourceVersion: "12" });
    assert.deepEqual(changedLive([deploy, a], snapshot, { seen, unlisted: [] }), [deploy.id, a.id]);
  });

  it("counts an object gone, or of a kind that could not be listed, as changed; a create is not its business", () => {
    const fresh = cm("fresh");
    const seen = new Map([[resourceName(deploy.id), { resourceVersion: "10", generation: 2 }]]);
    assert.deepEqual(changedLive([deploy, a, fresh], snapshot, { seen, unlisted: [] }), [a.id]);
    assert.deepEqual(changedLive([deploy], snapshot, { seen: new Map(), unlisted: ["apps/v1/Deployment in default"] }), [deploy.id]);
  });
});
