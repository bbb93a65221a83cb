import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  builtinScope,
  displayName,
  identify,
  liveObjectId,
  objectId,
  pulumiType,
  resourceName,
  splitApiVersion,
} from "../../src/desired-state/object-id";

describe("object identity", () => {
  it("splits apiVersion into group and version", () => {
    assert.deepEqual(splitApiVersion("apps/v1"), { group: "apps", version: "v1" });
    assert.deepEqual(splitApiVersion("v1"), { group: "", version: "v1" });
  });

  it("writes out the default namespace of namespaced kinds and drops any namespace of cluster-scoped ones", () => {
    const implied = identify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "app" } }, "Namespaced");
    const explicit = identify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "app", namespace: "default" } }, "Namespaced");
    assert.deepEqual(implied, { group: "", kind: "ConfigMap", namespace: "default", name: "app" });
    assert.deepEqual(explicit, implied);
    assert.equal(resourceName(implied), resourceName(explicit));
    const role = identify(
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "r", namespace: "x" } },
      "Cluster",
    );
    assert.deepEqual(role, { group: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "r" });
    assert.equal(identify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" } }, "Namespaced", "apps").namespace, "apps");
  });

  it("names resources without the API version, so a version bump is the same resource", () => {
    const a = identify(
      { apiVersion: "autoscaling/v1", kind: "HorizontalPodAutoscaler", metadata: { name: "web", namespace: "demo" } },
      "Namespaced",
    );
    const b = identify(
      { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", metadata: { name: "web", namespace: "demo" } },
      "Namespaced",
    );
    assert.equal(resourceName(a), "autoscaling/HorizontalPodAutoscaler/demo/web");
    assert.equal(resourceName(a), resourceName(b));
    assert.equal(pulumiType(a), pulumiType(b));
    assert.equal(resourceName(objectId({ group: "", kind: "Namespace", name: "demo" }, "Cluster")), "core/Namespace/demo");
    assert.equal(displayName(a), "HorizontalPodAutoscaler/demo/web");
    assert.equal(displayName(objectId({ group: "", kind: "Namespace", name: "demo" }, "Cluster")), "Namespace/demo");
  });

  it("derives a type token of the Kubernetes provider from group and kind only", () => {
    assert.equal(pulumiType({ group: "", kind: "ConfigMap" }), "kubernetes:core/v1:ConfigMap");
    assert.equal(pulumiType({ group: "apps", kind: "Deployment" }), "kubernetes:apps/v1:Deployment");
    assert.equal(pulumiType({ group: "example.com", kind: "Widget" }), "kubernetes:example.com/v1:Widget");
  });

  it("identifies live objects by the namespace the API server set", () => {
    assert.deepEqual(liveObjectId({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "default" } }), {
      group: "",
      kind: "ConfigMap",
      namespace: "default",
      name: "a",
    });
    assert.deepEqual(liveObjectId({ apiVersion: "cert-manager.io/v1", kind: "ClusterIssuer", metadata: { name: "le" } }), {
      group: "cert-manager.io",
      kind: "ClusterIssuer",
      name: "le",
    });
    assert.equal(liveObjectId({ kind: "ConfigMap", metadata: { name: "a" } }), undefined);
  });

  it("knows the scope of Kubernetes' own kinds and leaves other groups to CRDs and discovery", () => {
    assert.equal(builtinScope("", "ConfigMap"), "Namespaced");
    assert.equal(builtinScope("", "PersistentVolume"), "Cluster");
    assert.equal(builtinScope("storage.k8s.io", "StorageClass"), "Cluster");
    assert.equal(builtinScope("apps", "Deployment"), "Namespaced");
    // A CRD group that ends in .k8s.io is not Kubernetes' own.
    assert.equal(builtinScope("gateway.networking.k8s.io", "GatewayClass"), undefined);
    assert.equal(builtinScope("example.com", "Widget"), undefined);
  });
});
