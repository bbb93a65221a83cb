import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fieldDiffs, parsePropertyPath, summarizePreview } from "../../src/reconcile/field-diffs";
import type { EngineStep as PreviewStep } from "../../src/reconcile/ports";

/** How Pulumi serializes a secret value. */
const secret = (value: unknown) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value });

const urn = (type: string, name: string) => `urn:pulumi:dev::ferry::ferry:index:ClusterStack$ferry:index:ManifestFile$${type}::${name}`;

const CONFIG_MAP = "kubernetes:core/v1:ConfigMap";
const SECRET = "kubernetes:core/v1:Secret";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";

function step(fields: Partial<PreviewStep> & Pick<PreviewStep, "op">): PreviewStep {
  return { type: CONFIG_MAP, urn: urn(CONFIG_MAP, "core/ConfigMap/demo/web-settings"), ...fields };
}

describe("parsePropertyPath", () => {
  it("splits dotted names, array indexes and quoted keys", () => {
    assert.deepEqual(parsePropertyPath('a.b[0]["x.y/z"]'), ["a", "b", 0, "x.y/z"]);
  });

  it("splits the paths Pulumi reports for Kubernetes objects", () => {
    assert.deepEqual(parsePropertyPath("spec.template.spec.containers[12].image"), ["spec", "template", "spec", "containers", 12, "image"]);
    assert.deepEqual(parsePropertyPath('metadata.labels["app.kubernetes.io/name"]'), ["metadata", "labels", "app.kubernetes.io/name"]);
    assert.deepEqual(parsePropertyPath("data"), ["data"]);
  });

  it("unescapes quotes inside a quoted key", () => {
    assert.deepEqual(parsePropertyPath('metadata.annotations["say \\"hi\\""]'), ["metadata", "annotations", 'say "hi"']);
  });
});

describe("fieldDiffs", () => {
  it("reports updates, additions and deletions with the values before and after, sorted by path", () => {
    const diffs = fieldDiffs(
      step({
        op: "update",
        type: DEPLOYMENT,
        detailedDiff: {
          "spec.replicas": { kind: "update", inputDiff: true },
          "spec.template.spec.containers[0].image": { kind: "update" },
          'metadata.labels["app.kubernetes.io/version"]': { kind: "add" },
          "metadata.annotations.owner": { kind: "delete" },
        },
        oldInputs: {
          metadata: { labels: {}, annotations: { owner: "team-a" } },
          spec: { replicas: 2, template: { spec: { containers: [{ image: "web:1" }] } } },
        },
        newInputs: {
          metadata: { labels: { "app.kubernetes.io/version": "2" }, annotations: {} },
          spec: { replicas: 3, template: { spec: { containers: [{ image: "web:2" }] } } },
        },
      }),
    );
    assert.deepEqual(diffs, [
      { path: "metadata.annotations.owner", kind: "delete", old: "team-a" },
      { path: 'metadata.labels["app.kubernetes.io/version"]', kind: "add", new: "2" },
      { path: "spec.replicas", kind: "update", old: 2, new: 3 },
      { path: "spec.template.spec.containers[0].image", kind: "update", old: "web:1", new: "web:2" },
    ]);
  });

  it("reports the replacing kinds as their plain kind", () => {
    const diffs = fieldDiffs(
      step({
        op: "replace",
        type: DEPLOYMENT,
        detailedDiff: {
          "spec.selector.matchLabels.app": { kind: "update-replace" },
          "spec.selector.matchLabels.tier": { kind: "add-replace" },
          "spec.selector.matchLabels.zone": { kind: "delete-replace" },
        },
        oldInputs: { spec: { selector: { matchLabels: { app: "web", zone: "a" } } } },
        newInputs: { spec: { selector: { matchLabels: { app: "web2", tier: "front" } } } },
      }),
    );
    assert.deepEqual(diffs, [
      { path: "spec.selector.matchLabels.app", kind: "update", old: "web", new: "web2" },
      { path: "spec.selector.matchLabels.tier", kind: "add", new: "front" },
      { path: "spec.selector.matchLabels.zone", kind: "delete", old: "a" },
    ]);
  });

  it("treats a detailed diff without a kind as an update", () => {
    assert.deepEqual(
      fieldDiffs(step({ op: "update", detailedDiff: { "data.A": {} }, oldInputs: { data: { A: "1" } }, newInputs: { data: { A: "2" } } })),
      [{ path: "data.A", kind: "update", old: "1", new: "2" }],
    );
  });

  it("reads a field missing on one side as undefined", () => {
    assert.deepEqual(fieldDiffs(step({ op: "update", detailedDiff: { "data.A": { kind: "update" } }, newInputs: { data: { A: "2" } } })), [
      { path: "data.A", kind: "update", old: undefined, new: "2" },
    ]);
  });

  it("always masks the data and stringData of a Secret, and only those", () => {
    const diffs = fieldDiffs(
      step({
        op: "update",
        type: SECRET,
        urn: urn(SECRET, "core/Secret/demo/db"),
        detailedDiff: {
          "data.PASSWORD": { kind: "update" },
          "stringData.TOKEN": { kind: "add" },
          "data.OLD": { kind: "delete" },
          "metadata.labels.app": { kind: "update" },
        },
        oldInputs: { data: { PASSWORD: "b2xk", OLD: "eA==" }, metadata: { labels: { app: "db" } } },
        newInputs: { data: { PASSWORD: "bmV3" }, stringData: { TOKEN: "plain-token" }, metadata: { labels: { app: "db2" } } },
      }),
    );
    assert.deepEqual(diffs, [
      { path: "data.OLD", kind: "delete", old: "[secret]" },
      { path: "data.PASSWORD", kind: "update", old: "[secret]", new: "[secret]" },
      { path: "metadata.labels.app", kind: "update", old: "db", new: "db2" },
      { path: "stringData.TOKEN", kind: "add", new: "[secret]" },
    ]);
    assert.doesNotMatch(JSON.stringify(diffs), /b2xk|bmV3|eA==|plain-token/);
  });

  it("masks a Secret's whole data map", () => {
    const diffs = fieldDiffs(
      step({
        op: "update",
        type: SECRET,
        detailedDiff: { data: { kind: "update" } },
        oldInputs: { data: { A: "eA==" } },
        newInputs: { data: { A: "eQ==" } },
      }),
    );
    assert.deepEqual(diffs, [{ path: "data", kind: "update", old: "[secret]", new: "[secret]" }]);
  });

  it("does not mask a ConfigMap's data", () => {
    const diffs = fieldDiffs(
      step({
        op: "update",
        detailedDiff: { "data.A": { kind: "update" } },
        oldInputs: { data: { A: "x" } },
        newInputs: { data: { A: "y" } },
      }),
    );
    assert.deepEqual(diffs, [{ path: "data.A", kind: "update", old: "x", new: "y" }]);
  });

  it("masks Pulumi secret values and the [secret] placeholder of any object", () => {
    const diffs = fieldDiffs(
      step({
        op: "update",
        detailedDiff: { "data.API_KEY": { kind: "update" } },
        oldInputs: { data: { API_KEY: "[secret]" } },
        newInputs: { data: { API_KEY: secret("sk-live-123") } },
      }),
    );
    assert.deepEqual(diffs, [{ path: "data.API_KEY", kind: "update", old: "[secret]", new: "[secret]" }]);
    assert.doesNotMatch(JSON.stringify(diffs), /sk-live-123/);
  });

  it("masks a field whose parent is secret", () => {
    const diffs = fieldDiffs(
      step({
        op: "update",
        type: DEPLOYMENT,
        detailedDiff: { "spec.template.spec.containers[0].env[0].value": { kind: "update" } },
        oldInputs: { spec: secret({ template: { spec: { containers: [{ env: [{ value: "old-pass" }] }] } } }) },
        newInputs: { spec: { template: "[secret]" } },
      }),
    );
    assert.deepEqual(diffs, [{ path: "spec.template.spec.containers[0].env[0].value", kind: "update", old: "[secret]", new: "[secret]" }]);
    assert.doesNotMatch(JSON.stringify(diffs), /old-pass/);
  });

  it("masks secrets nested inside an object or array value", () => {
    const diffs = fieldDiffs(
      step({
        op: "update",
        type: DEPLOYMENT,
        detailedDiff: { "spec.template.spec.containers[0].env": { kind: "update" } },
        oldInputs: { spec: { template: { spec: { containers: [{ env: [{ name: "PASS", value: secret("hunter2") }] }] } } } },
        newInputs: {
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    env: [
                      { name: "PASS", value: "[secret]" },
                      { name: "MODE", value: "x" },
                    ],
                  },
                ],
              },
            },
          },
        },
      }),
    );
    assert.deepEqual(diffs, [
      {
        path: "spec.template.spec.containers[0].env",
        kind: "update",
        old: [{ name: "PASS", value: "[secret]" }],
        new: [
          { name: "PASS", value: "[secret]" },
          { name: "MODE", value: "x" },
        ],
      },
    ]);
    assert.doesNotMatch(JSON.stringify(diffs), /hunter2/);
  });

  it("falls back to the changed paths when there is no detailed diff", () => {
    const oldInputs = { data: { A: "1" }, metadata: { name: "web-settings" } };
    const newInputs = { data: { A: "2" }, metadata: { name: "web-settings", labels: { x: "y" } } };
    const expected = [
      { path: "data", kind: "update", old: { A: "1" }, new: { A: "2" } },
      { path: "metadata", kind: "update", old: { name: "web-settings" }, new: { name: "web-settings", labels: { x: "y" } } },
    ];
    assert.deepEqual(fieldDiffs(step({ op: "update", diffs: ["metadata", "data"], oldInputs, newInputs })), expected);
    assert.deepEqual(fieldDiffs(step({ op: "update", detailedDiff: {}, diffs: ["metadata", "data"], oldInputs, newInputs })), expected);
  });

  it("reports nothing when neither a detailed diff nor changed paths are known", () => {
    assert.deepEqual(fieldDiffs(step({ op: "update", oldInputs: { data: { A: "1" } }, newInputs: { data: { A: "2" } } })), []);
  });
});

describe("summarizePreview", () => {
  const cm = urn(CONFIG_MAP, "core/ConfigMap/demo/web-settings");
  const deploy = urn(DEPLOYMENT, "apps/Deployment/demo/web");
  const svc = urn("kubernetes:core/v1:Service", "core/Service/demo/web");
  const ns = urn("kubernetes:core/v1:Namespace", "core/Namespace/demo");
  const old = urn(SECRET, "core/Secret/demo/old");
  const role = urn("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "rbac.authorization.k8s.io/ClusterRole/reader");
  const imported = urn(CONFIG_MAP, "core/ConfigMap/demo/adopted");
  const steps: PreviewStep[] = [
    { op: "same", type: "pulumi:providers:kubernetes", urn: "urn:pulumi:dev::ferry::pulumi:providers:kubernetes::cluster" },
    { op: "create", type: "ferry:index:ManifestFile", urn: "urn:pulumi:dev::ferry::ferry:index:ManifestFile::apps.yaml" },
    { op: "update", type: "ferry:index:ClusterStack", urn: "urn:pulumi:dev::ferry::ferry:index:ClusterStack::dev" },
    { op: "refresh", type: "kubernetes:core/v1:Namespace", urn: ns },
    { op: "same", type: "kubernetes:core/v1:Namespace", urn: ns },
    { op: "refresh", type: CONFIG_MAP, urn: cm },
    {
      op: "update",
      type: CONFIG_MAP,
      urn: cm,
      detailedDiff: { "data.GREETING": { kind: "update" } },
      oldInputs: { data: { GREETING: "hello" } },
      newInputs: { data: { GREETING: "hi" } },
    },
    { op: "create-replacement", type: DEPLOYMENT, urn: deploy },
    {
      op: "replace",
      type: DEPLOYMENT,
      urn: deploy,
      detailedDiff: { "spec.selector.matchLabels.app": { kind: "update-replace" } },
      oldInputs: { spec: { selector: { matchLabels: { app: "web" } } } },
      newInputs: { spec: { selector: { matchLabels: { app: "web2" } } } },
    },
    { op: "delete-replaced", type: DEPLOYMENT, urn: deploy },
    { op: "create", type: "kubernetes:core/v1:Service", urn: svc },
    { op: "delete", type: SECRET, urn: old },
    { op: "create", type: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", urn: role },
    { op: "import", type: CONFIG_MAP, urn: imported },
    { op: "read", type: CONFIG_MAP, urn: urn(CONFIG_MAP, "core/ConfigMap/kube-system/extension-apiserver-authentication") },
  ];

  it("lists each changed Kubernetes object once, named Kind/namespace/name, with field diffs for updates and replacements", () => {
    const { objects } = summarizePreview(steps);
    assert.deepEqual(objects, [
      { op: "update", object: "ConfigMap/demo/web-settings", fields: [{ path: "data.GREETING", kind: "update", old: "hello", new: "hi" }] },
      {
        op: "replace",
        object: "Deployment/demo/web",
        fields: [{ path: "spec.selector.matchLabels.app", kind: "update", old: "web", new: "web2" }],
      },
      { op: "create", object: "Service/demo/web", fields: [] },
      { op: "delete", object: "Secret/demo/old", fields: [] },
      { op: "create", object: "ClusterRole/reader", fields: [] },
      { op: "create", object: "ConfigMap/demo/adopted", fields: [] },
    ]);
  });

  it("counts objects per operation, a replacement once and unchanged objects as unchanged", () => {
    assert.deepEqual(summarizePreview(steps).changes, { created: 3, updated: 1, replaced: 1, deleted: 1, unchanged: 1 });
  });

  it("ignores providers, ferry's components, refreshes and reads", () => {
    const { objects, changes } = summarizePreview(
      steps.filter((s) => !s.type.startsWith("kubernetes:") || ["refresh", "read"].includes(s.op)),
    );
    assert.deepEqual(objects, []);
    assert.deepEqual(changes, { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 0 });
  });

  it("keeps the last reported change of an object", () => {
    const { objects, changes } = summarizePreview([
      { op: "same", type: CONFIG_MAP, urn: cm },
      { op: "update", type: CONFIG_MAP, urn: cm, diffs: ["data"], oldInputs: { data: { A: "1" } }, newInputs: { data: { A: "2" } } },
    ]);
    assert.deepEqual(objects, [
      { op: "update", object: "ConfigMap/demo/web-settings", fields: [{ path: "data", kind: "update", old: { A: "1" }, new: { A: "2" } }] },
    ]);
    assert.deepEqual(changes, { created: 0, updated: 1, replaced: 0, deleted: 0, unchanged: 0 });
  });

  it("reports an empty preview as no objects and zero counts", () => {
    assert.deepEqual(summarizePreview([]), { objects: [], changes: { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 0 } });
  });
});
