import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { displayName, objectId, pulumiType, resourceName, splitApiVersion } from "../../src/desired-state/object-id";

describe("object identity", () => {
  it("splits apiVersion into group and version", () => {
    assert.deepEqual(splitApiVersion("apps/v1"), { group: "apps", version: "v1" });
    assert.deepEqual(splitApiVersion("v1"), { group: "", version: "v1" });
  });

  it("names resources without the API version, so a version bump is an update", () => {
    const a = objectId({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "demo" } });
    const b = objectId({ apiVersion: "apps/v1beta2", kind: "Deployment", metadata: { name: "web", namespace: "demo" } });
    assert.equal(resourceName(a), "apps/Deployment/demo/web");
    assert.equal(resourceName(a), resourceName(b));
    assert.equal(resourceName(objectId({ apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } })), "core/Namespace/demo");
    assert.equal(displayName(a), "Deployment/demo/web");
  });

  it("derives the provider's type token", () => {
    assert.equal(pulumiType("v1", "ConfigMap"), "kubernetes:core/v1:ConfigMap");
    assert.equal(pulumiType("apps/v1", "Deployment"), "kubernetes:apps/v1:Deployment");
    assert.equal(pulumiType("example.com/v1alpha1", "Widget"), "kubernetes:example.com/v1alpha1:Widget");
  });
});
