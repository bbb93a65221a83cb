import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { countChanges, formatCounts, objectDisplayName } from "../../src/runner/change-summary";

describe("change summary", () => {
  it("counts only Kubernetes objects, by what happened to them", () => {
    const urn = (t: string, n: string) => `urn:pulumi:dev::ferry::ferry:index:ClusterStack$ferry:index:ManifestFile$${t}::${n}`;
    const counts = countChanges([
      { op: "create", type: "kubernetes:apps/v1:Deployment", urn: urn("kubernetes:apps/v1:Deployment", "apps/Deployment/demo/web") },
      { op: "update", type: "kubernetes:core/v1:ConfigMap", urn: "x" },
      { op: "delete", type: "kubernetes:core/v1:Service", urn: "x" },
      { op: "same", type: "kubernetes:core/v1:Namespace", urn: "x" },
      { op: "refresh", type: "kubernetes:core/v1:Namespace", urn: "x" },
      { op: "same", type: "pulumi:providers:kubernetes", urn: "x" },
      { op: "create", type: "ferry:index:ManifestFile", urn: "x" },
    ]);
    assert.deepEqual(counts, { created: 1, updated: 1, replaced: 0, deleted: 1, unchanged: 1 });
    assert.equal(formatCounts(counts), "1 created, 1 updated, 1 deleted, 1 unchanged");
    assert.equal(objectDisplayName(urn("kubernetes:apps/v1:Deployment", "apps/Deployment/demo/web")), "Deployment/demo/web");
  });
});
