// Helm hooks: split off a rendered chart, ordered as Helm runs them, run with their delete policy.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HelmHook, hooksFor, splitHooks } from "../../src/desired-state/helm-hooks";
import { ManifestError } from "../../src/desired-state/manifest-error";
import { KubeObject } from "../../src/desired-state/object-id";
import { HookApi, HookStatus, runHelmHooks } from "../../src/reconcile/helm-hook-runner";

const at = { file: "clusters/dev/web.yaml", line: 3 };
const obj = (kind: string, name: string, annotations?: Record<string, string>): { object: KubeObject } => ({
  object: { apiVersion: kind === "Job" ? "batch/v1" : "v1", kind, metadata: { name, ...(annotations ? { annotations } : {}) } },
});
const split = (...objects: { object: KubeObject }[]) => splitHooks(objects, "apps", at, "HelmRelease/apps/web");

describe("splitHooks", () => {
  it("keeps hooks and test Pods out of the release's objects; tests, delete and rollback hooks are never run", () => {
    const r = split(
      obj("ConfigMap", "config"),
      obj("Job", "migrate", { "helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-5" }),
      obj("Pod", "web-test-x7k2p", { "helm.sh/hook": "test" }),
      obj("Pod", "legacy-test", { "helm.sh/hook": "test-success" }),
      obj("Job", "cleanup", { "helm.sh/hook": "pre-delete" }),
      obj("CustomResourceDefinition", "old", { "helm.sh/hook": "crd-install" }),
    );
    assert.deepEqual(
      r.objects.map((o) => o.object.metadata.name),
      ["config"],
    );
    assert.deepEqual(r.hooks, [
      {
        object: obj("Job", "migrate", { "helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-5" }).object,
        namespace: "apps",
        events: ["pre-install", "pre-upgrade"],
        weight: -5,
        deletePolicies: ["before-hook-creation"],
      },
    ]);
    assert.deepEqual(r.notRun, [
      "Pod/web-test-x7k2p (test)",
      "Pod/legacy-test (test-success)",
      "Job/cleanup (pre-delete)",
      "CustomResourceDefinition/old (crd-install)",
    ]);
  });

  it("reads the delete policies as written", () => {
    const r = split(obj("Job", "j", { "helm.sh/hook": "post-install", "helm.sh/hook-delete-policy": "hook-succeeded, hook-failed" }));
    assert.deepEqual(r.hooks[0]?.deletePolicies, ["hook-succeeded", "hook-failed"]);
  });

  it("refuses an unknown event, delete policy or weight, naming the hook", () => {
    assert.throws(
      () => split(obj("Job", "j", { "helm.sh/hook": "pre-instal" })),
      (e: unknown) => e instanceof ManifestError && /HelmRelease\/apps\/web: hook Job\/j .*pre-instal/.test(e.message),
    );
    assert.throws(() => split(obj("Job", "j", { "helm.sh/hook": "post-install", "helm.sh/hook-delete-policy": "always" })), /always/);
    assert.throws(() => split(obj("Job", "j", { "helm.sh/hook": "post-install", "helm.sh/hook-weight": "high" })), /hook-weight "high"/);
    assert.throws(() => split(obj("Job", "", { "helm.sh/hook": "pre-install" })), /no metadata.name/);
  });
});

describe("hooksFor", () => {
  const hook = (kind: string, name: string, weight: number, events: HelmHook["events"] = ["pre-install"]): HelmHook => ({
    object: obj(kind, name).object,
    namespace: "apps",
    events,
    weight,
    deletePolicies: ["before-hook-creation"],
  });
  it("orders one event's hooks by weight, then name, then kind", () => {
    const hooks = [
      hook("Job", "b", 0),
      hook("Job", "a", 0),
      hook("Job", "z", -1),
      hook("ConfigMap", "a", 0),
      hook("Job", "post", -9, ["post-install"]),
    ];
    assert.deepEqual(
      hooksFor(hooks, "pre-install").map((h) => `${h.object.kind}/${h.object.metadata.name}`),
      ["Job/z", "ConfigMap/a", "Job/a", "Job/b"],
    );
  });
});

describe("runHelmHooks", () => {
  const fake = (statuses: HookStatus[]) => {
    const calls: string[] = [];
    const api: HookApi = {
      place: (o, ns) => Promise.resolve({ ...o, metadata: { ...o.metadata, namespace: ns } }),
      remove: (o) => {
        calls.push(`remove ${o.metadata.namespace}/${o.metadata.name}`);
        return Promise.resolve();
      },
      create: (o) => {
        calls.push(`create ${o.metadata.namespace}/${o.metadata.name}`);
        return Promise.resolve();
      },
      status: (o) => Promise.resolve(o.kind === "Job" || o.kind === "Pod" ? (statuses.shift() ?? "running") : "succeeded"),
      ensureNamespace: (ns) => {
        calls.push(`namespace ${ns.metadata.name}`);
        return Promise.resolve();
      },
    };
    return { api, calls };
  };
  const job = (deletePolicies: HelmHook["deletePolicies"], name = "migrate", kind = "Job"): HelmHook => ({
    object: obj(kind, name).object,
    namespace: "apps",
    events: ["pre-install"],
    weight: 0,
    deletePolicies,
  });

  it("replaces the previous hook, waits for the Job to finish and keeps it (before-hook-creation)", async () => {
    const f = fake(["running", "running", "succeeded"]);
    assert.deepEqual(await runHelmHooks([job(["before-hook-creation"])], f.api, { timeoutMs: 5000, pollMs: 1 }), { ok: true });
    assert.deepEqual(f.calls, ["remove apps/migrate", "create apps/migrate"]);
  });

  it("creates the Namespace Git declares for the hook first (pre-install runs before the update creates it)", async () => {
    const f = fake(["succeeded"]);
    const namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } };
    await runHelmHooks([job(["hook-succeeded"])], f.api, { timeoutMs: 5000, pollMs: 1, namespaces: new Map([["apps", namespace]]) });
    assert.deepEqual(f.calls, ["namespace apps", "create apps/migrate", "remove apps/migrate"]);
  });

  it("deletes a succeeded hook (hook-succeeded) and keeps a failed one unless hook-failed", async () => {
    const ok = fake(["succeeded"]);
    await runHelmHooks([job(["hook-succeeded"])], ok.api, { timeoutMs: 5000, pollMs: 1 });
    assert.deepEqual(ok.calls, ["create apps/migrate", "remove apps/migrate"]);
    const failed = fake([{ failed: "the Job failed" }]);
    assert.deepEqual(await runHelmHooks([job(["hook-succeeded"])], failed.api, { timeoutMs: 5000, pollMs: 1 }), {
      ok: false,
      message: "Job/apps/migrate: the Job failed",
    });
    assert.deepEqual(failed.calls, ["create apps/migrate"]);
    const cleaned = fake([{ failed: "the Job failed" }]);
    await runHelmHooks([job(["hook-failed"])], cleaned.api, { timeoutMs: 5000, pollMs: 1 });
    assert.deepEqual(cleaned.calls, ["create apps/migrate", "remove apps/migrate"]);
  });

  it("fails a hook that does not finish within the timeout", async () => {
    const f = fake([]);
    const r = await runHelmHooks([job(["before-hook-creation"])], f.api, { timeoutMs: 20, pollMs: 5 });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : "", /did not finish within/);
  });
  it("deletes hook-succeeded hooks only once every hook of the event succeeded, last first (a Job needs its ServiceAccount)", async () => {
    const f = fake(["running", "succeeded"]);
    const hooks = [job(["hook-succeeded"], "checker", "ServiceAccount"), job(["hook-succeeded", "before-hook-creation"], "check")];
    assert.deepEqual(await runHelmHooks(hooks, f.api, { timeoutMs: 5000, pollMs: 1 }), { ok: true });
    assert.deepEqual(f.calls, ["create apps/checker", "remove apps/check", "create apps/check", "remove apps/check", "remove apps/checker"]);
  });

  it("stops at a failed hook: the hooks after it do not run, and those before it stay", async () => {
    const f = fake([{ failed: "the Job failed" }]);
    const hooks = [job(["hook-succeeded"], "first"), job(["hook-succeeded"], "second")];
    const r = await runHelmHooks(hooks, f.api, { timeoutMs: 5000, pollMs: 1 });
    assert.deepEqual(r, { ok: false, message: "Job/apps/first: the Job failed" });
    assert.deepEqual(f.calls, ["create apps/first"]);
  });
});
