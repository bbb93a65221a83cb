import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { countChanges, formatCounts, objectDisplayName } from "../../src/reconcile/change-summary";

describe("change summary", () => {
  it("counts only Kubernetes objects, by what happened to them", () => {
    const urn = (t: string, n: string) => `urn:pulumi:dev::ferry::ferry:index:ClusterStack$ferry:index:ManifestFile$${t}::${n}`;
    const counts = countChanges([
      { op: "create", type: "kubernetes:apps/v1:Deployment", urn: urn("kubernetes:apps/v1:Deployment", "apps/Deployment/demo/web") },
      { op: "update", type: "kubernetes:core/v1:ConfigMap", urn: "cm" },
      { op: "delete", type: "kubernetes:core/v1:Service", urn: "svc" },
      { op: "same", type: "kubernetes:core/v1:Namespace", urn: "ns" },
      { op: "refresh", type: "kubernetes:core/v1:Namespace", urn: "ns" },
      { op: "same", type: "pulumi:providers:kubernetes", urn: "x" },
      { op: "create", type: "ferry:index:ManifestFile", urn: "x" },
      // The same object reported twice counts once.
      { op: "create", type: "kubernetes:apps/v1:Deployment", urn: urn("kubernetes:apps/v1:Deployment", "apps/Deployment/demo/web") },
    ]);
    assert.deepEqual(counts, { created: 1, updated: 1, replaced: 0, deleted: 1, unchanged: 1 });
    assert.equal(formatCounts(counts), "1 created, 1 updated, 1 deleted, 1 unchanged");
    assert.equal(objectDisplayName(urn("kubernetes:apps/v1:Deployment", "apps/Deployment/demo/web")), "Deployment/demo/web");
  });

  it("counts what an object went through over two updates of one run (a run that settles): created stays created", () => {
    const t = "kubernetes:core/v1:ConfigMap";
    const counts = countChanges([
      { op: "create", type: t, urn: "a" },
      { op: "create", type: t, urn: "b" },
      { op: "same", type: t, urn: "c" },
      { op: "same", type: t, urn: "a" },
      { op: "update", type: t, urn: "b" },
      { op: "update", type: t, urn: "c" },
    ]);
    assert.deepEqual(counts, { created: 2, updated: 1, replaced: 0, deleted: 0, unchanged: 0 });
  });
});
