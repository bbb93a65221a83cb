import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { liveDrift, managedFingerprint, parseQuantity } from "../../src/desired-state/live-drift";
import { KubeObject } from "../../src/desired-state/object-id";

const deployment: KubeObject = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "apps", labels: { app: "web" }, annotations: { team: "a" } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: {
        containers: [
          { name: "web", image: "nginx:1.27", ports: [{ containerPort: 80 }], resources: { limits: { cpu: "0.5", memory: "1Gi" } } },
        ],
      },
    },
  },
};

/** Sets a field of a test object by its dotted path. */
function set(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let at = obj as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[keys[keys.length - 1]!] = value;
}

/** The Deployment as the API server returns it: defaults, server metadata, status. */
function served(): Record<string, unknown> {
  return {
    metadata: {
      name: "web",
      namespace: "apps",
      uid: "1",
      resourceVersion: "42",
      generation: 3,
      labels: { app: "web" },
      annotations: { team: "a", "deployment.kubernetes.io/revision": "1", "pulumi.com/skipAwait": "true" },
      managedFields: [{ manager: "pulumi" }],
    },
    spec: {
      replicas: 2,
      progressDeadlineSeconds: 600,
      selector: { matchLabels: { app: "web" } },
      strategy: { type: "RollingUpdate" },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          containers: [
            {
              name: "web",
              image: "nginx:1.27",
              imagePullPolicy: "IfNotPresent",
              ports: [{ containerPort: 80, protocol: "TCP" }],
              resources: { limits: { cpu: "500m", memory: "1073741824" } },
            },
          ],
          restartPolicy: "Always",
        },
      },
    },
    status: { replicas: 2, availableReplicas: 2 },
  };
}

describe("live drift", () => {
  it("judges a live object with server defaults, metadata and status as not drifted", () => {
    assert.equal(liveDrift(deployment, served()), undefined);
  });

  it("judges a missing object as drifted", () => {
    assert.deepEqual(liveDrift(deployment, undefined), { kind: "missing" });
  });

  it("names the field ferry declares that someone changed", () => {
    const live = served();
    set(live, "spec.replicas", 5);
    assert.deepEqual(liveDrift(deployment, live), { kind: "differs", path: "spec.replicas" });
    const image = served();
    set(image, "spec.template.spec.containers.0.image", "nginx:1.28");
    assert.deepEqual(liveDrift(deployment, image), { kind: "differs", path: "spec.template.spec.containers.0.image" });
  });

  it("counts a label or annotation ferry sets, not those others add", () => {
    const relabelled = served();
    set(relabelled, "metadata.labels", { app: "other" });
    assert.deepEqual(liveDrift(deployment, relabelled), { kind: "differs", path: "metadata.labels.app" });
    const extra = served();
    set(extra, "metadata.labels", { app: "web", added: "by-someone" });
    assert.equal(liveDrift(deployment, extra), undefined);
  });

  it("tolerates numbers written as strings and empty maps or lists the server drops", () => {
    const svc: KubeObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "s", namespace: "a", labels: {} },
      spec: { ports: [{ port: "80", targetPort: 8080 }], selector: {}, externalIPs: [] },
    };
    const live = {
      metadata: { name: "s", namespace: "a" },
      spec: { ports: [{ port: 80, targetPort: "8080", protocol: "TCP" }], clusterIP: "10.0.0.1" },
    };
    assert.equal(liveDrift(svc, live), undefined);
  });

  it("compares a ConfigMap's data exactly, never as quantities", () => {
    const cm: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "a" }, data: { size: "1k" } };
    assert.equal(liveDrift(cm, { metadata: { name: "c" }, data: { size: "1k" } }), undefined);
    assert.deepEqual(liveDrift(cm, { metadata: { name: "c" }, data: { size: "1000" } }), { kind: "differs", path: "data.size" });
  });

  it("compares a Secret's stringData and data with its live data, decoded", () => {
    const secret: KubeObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s", namespace: "a" },
      stringData: { password: "hunter2" },
      data: { token: Buffer.from("abc").toString("base64") },
    };
    const live = (password: string) => ({
      metadata: { name: "s", namespace: "a" },
      type: "Opaque",
      data: { password: Buffer.from(password).toString("base64"), token: "YWJj" },
    });
    assert.equal(liveDrift(secret, live("hunter2")), undefined);
    const drift = liveDrift(secret, live("changed"));
    assert.deepEqual(drift, { kind: "differs", path: "data.password" });
  });

  it("fingerprints only the fields ferry declares", () => {
    const a = served();
    const b = served();
    set(b, "metadata.annotations", { team: "a", "deployment.kubernetes.io/revision": "2", "pulumi.com/skipAwait": "true" });
    set(b, "metadata.resourceVersion", "43");
    set(b, "status.availableReplicas", 1);
    assert.equal(managedFingerprint(deployment, a), managedFingerprint(deployment, b));
    set(b, "spec.replicas", 3);
    assert.notEqual(managedFingerprint(deployment, a), managedFingerprint(deployment, b));
    assert.equal(managedFingerprint(deployment, undefined), "missing");
  });

  it("reads Kubernetes quantities", () => {
    assert.equal(parseQuantity("500m"), 0.5);
    assert.equal(parseQuantity("1Gi"), 2 ** 30);
    assert.equal(parseQuantity("1e3"), 1000);
    assert.equal(parseQuantity("2"), 2);
    assert.equal(parseQuantity("web"), undefined);
  });
});
