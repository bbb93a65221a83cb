// Argo CD resource hooks and sync waves: which objects are hooks, in which phase and order; how waves order a unit's objects.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { unitWave, waveDependencies } from "../../src/desired-state/apply-order";
import { argoHooksFor, hookLabel, splitArgoHooks } from "../../src/desired-state/argo-hooks";
import { DesiredObject, DesiredUnit, RenderedUnit, UnitKind } from "../../src/desired-state/desired-state";
import { parseManifests } from "../../src/desired-state/parse-manifests";
import { builtinScope, identify, KubeObject, resourceName, splitApiVersion } from "../../src/desired-state/object-id";
import { releaseHookRuns } from "../../src/reconcile/helm-hook-runner";

const object = (kind: string, name: string, annotations?: Record<string, string>, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: kind === "Job" ? "batch/v1" : kind === "ReplicaSet" ? "apps/v1" : "v1",
  kind,
  metadata: { ...(name ? { name } : {}), ...(annotations ? { annotations } : {}), ...extra } as KubeObject["metadata"],
});
const unit = (kind: UnitKind, objects: KubeObject[], override = false): RenderedUnit => ({
  kind,
  name: kind === "HelmRelease" ? "apps/web" : "clusters/dev/app.yaml",
  location: { file: "clusters/dev/app.yaml", line: 1 },
  objects: objects.map((o, i) => ({ object: o, location: { file: "clusters/dev/app.yaml", line: 1 + 10 * i }, prune: true })),
  dependsOn: [],
  namespace: { namespace: "apps", override },
});
const names = (u: { objects: readonly { object: KubeObject }[] }) => u.objects.map((o) => `${o.object.kind}/${o.object.metadata.name}`);
const hookNames = (u: RenderedUnit) =>
  (u.hooks ?? []).map((h) => `${h.object.kind}/${h.object.metadata.name || String(h.object.metadata.generateName)}`);

const desired = (o: KubeObject): DesiredObject => {
  const id = identify(o, builtinScope(splitApiVersion(o.apiVersion).group, o.kind) ?? "Namespaced", "apps");
  return { object: { ...o, metadata: { ...o.metadata, namespace: id.namespace } }, id, location: { file: "f.yaml", line: 1 }, prune: true };
};

describe("splitArgoHooks", () => {
  it("takes Argo CD hooks out of a unit's objects, with their phases, waves and delete policies (BeforeHookCreation by default)", () => {
    const r = splitArgoHooks([
      unit("ManifestFile", [
        object(
          "Job",
          "",
          { "argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded" },
          { generateName: "upgrade-sql-" },
        ),
        object("ReplicaSet", "backend"),
        object("Job", "maint-page-up", { "argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "1" }),
        object("ReplicaSet", "frontend", { "argocd.argoproj.io/sync-wave": "2" }),
        object("Job", "smoke", {
          "argocd.argoproj.io/hook": "PostSync",
          "argocd.argoproj.io/hook-delete-policy": "HookSucceeded,HookFailed",
        }),
        object("ConfigMap", "skipped", { "argocd.argoproj.io/hook": "Skip" }),
      ]),
    ]);
    assert.deepEqual(r.errors, []);
    const [u] = r.units;
    assert.deepEqual(names(u!), ["ReplicaSet/backend", "ReplicaSet/frontend"]);
    assert.deepEqual(hookNames(u!), ["Job/upgrade-sql-", "Job/maint-page-up", "Job/smoke"]);
    assert.deepEqual(
      u!.hooks!.map((h) => [h.events, h.weight, h.deletePolicies, h.namespace]),
      [
        [["PreSync"], 0, ["hook-succeeded"], "apps"],
        [["Sync"], 1, ["before-hook-creation"], "apps"],
        [["PostSync"], 0, ["hook-succeeded", "hook-failed"], "apps"],
      ],
    );
    // Each hook carries the label that finds its earlier instances, and says whose it is.
    const pre = u!.hooks![0]!;
    assert.equal(
      pre.label,
      hookLabel("ManifestFile/clusters/dev/app.yaml", object("Job", "", undefined, { generateName: "upgrade-sql-" })),
    );
    assert.equal(pre.object.metadata.labels?.["ferry.dev/hook"], pre.label);
    assert.match(pre.label!, /^h-[0-9a-f]{40}$/);
    assert.equal(
      pre.object.metadata.annotations?.["ferry.dev/hook-of"],
      "ManifestFile/clusters/dev/app.yaml: Job/upgrade-sql-* (generateName)",
    );
  });

  it("maps a chart folder's Helm hooks as Argo CD does: install/upgrade to PreSync/PostSync, tests and delete hooks dropped; an Argo annotation wins", () => {
    const r = splitArgoHooks([
      unit("HelmChart", [
        object("ConfigMap", "config"),
        object("Job", "migrate", {
          "helm.sh/hook": "pre-install,pre-upgrade",
          "helm.sh/hook-weight": "-2",
          "helm.sh/hook-delete-policy": "hook-succeeded",
        }),
        object("Job", "notify", { "helm.sh/hook": "post-upgrade" }),
        object("Pod", "web-test", { "helm.sh/hook": "test" }),
        object("Job", "cleanup", { "helm.sh/hook": "pre-delete" }),
        object("Job", "argo-wins", { "helm.sh/hook": "pre-install", "argocd.argoproj.io/hook": "PostSync" }),
      ]),
    ]);
    assert.deepEqual(r.errors, []);
    const [u] = r.units;
    assert.deepEqual(names(u!), ["ConfigMap/config"]);
    assert.deepEqual(
      u!.hooks!.map((h) => `${h.object.metadata.name} ${h.events.join(",")} ${h.weight} ${h.deletePolicies.join(",")}`),
      ["migrate PreSync -2 hook-succeeded", "notify PostSync 0 before-hook-creation", "argo-wins PostSync 0 before-hook-creation"],
    );
  });

  it("leaves Helm hook annotations to plain manifests and Argo CD annotations to HelmReleases (neither tool reads them there)", () => {
    const r = splitArgoHooks([
      unit("ManifestFile", [object("Job", "helm-style", { "helm.sh/hook": "pre-install" })]),
      unit("HelmRelease", [object("Job", "argo-style", { "argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "x" })]),
    ]);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.units.map(names), [["Job/helm-style"], ["Job/argo-style"]]);
    assert.deepEqual(
      r.units.map((u) => u.hooks),
      [undefined, undefined],
    );
  });

  it("keeps a unit's existing Helm hooks and puts hooks of a targetNamespace unit in that namespace", () => {
    const r = splitArgoHooks([
      unit("Kustomization", [object("Job", "pre", { "argocd.argoproj.io/hook": "PreSync" }, { namespace: "elsewhere" })], true),
    ]);
    assert.equal(r.units[0]!.hooks![0]!.object.metadata.namespace, undefined);
    assert.equal(r.units[0]!.hooks![0]!.namespace, "apps");
  });

  it("refuses SyncFail, PreDelete and PostDelete hooks, unknown types and policies, and non-integer waves, naming the object, file:line and fix", () => {
    const r = splitArgoHooks([
      unit("Kustomize", [
        object("Job", "on-fail", { "argocd.argoproj.io/hook": "SyncFail" }),
        object("Job", "after-delete", { "argocd.argoproj.io/hook": "PostDelete" }),
        object("Job", "typo", { "argocd.argoproj.io/hook": "Presync" }),
        object("Job", "policy", { "argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "Always" }),
        object("ConfigMap", "wave", { "argocd.argoproj.io/sync-wave": "1.5" }),
        object("Job", "hook-wave", { "argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "two" }),
      ]),
    ]);
    const messages = r.errors.map((e) => e.message);
    assert.equal(messages.length, 6, messages.join("\n"));
    assert.match(
      messages[0]!,
      /^clusters\/dev\/app\.yaml:1: Kustomize\/clusters\/dev\/app\.yaml: Job\/on-fail is an Argo CD SyncFail hook, which ferry does not run[^]*fix: remove SyncFail/,
    );
    assert.match(messages[1]!, /:11: .*Job\/after-delete is an Argo CD PostDelete hook/);
    assert.match(
      messages[2]!,
      /:21: .*Job\/typo has argocd.argoproj.io\/hook "Presync", which names no Argo CD hook type[^]*fix: use PreSync, Sync, PostSync, Skip/,
    );
    assert.match(
      messages[3]!,
      /Job\/policy has argocd.argoproj.io\/hook-delete-policy "Always"[^]*fix: use BeforeHookCreation, HookSucceeded, HookFailed/,
    );
    assert.match(messages[4]!, /:41: .*ConfigMap\/wave has argocd.argoproj.io\/sync-wave "1.5", which is not a whole number/);
    assert.match(messages[5]!, /Job\/hook-wave has argocd.argoproj.io\/sync-wave "two"/);
    assert.deepEqual(names(r.units[0]!), []);
  });

  it("refuses generateName on anything but a hook, as before", () => {
    // The parser lets a hook with only generateName through; the unit decides whether it is one.
    const parsed = parseManifests(
      [
        "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: a-, annotations: {argocd.argoproj.io/hook: PreSync}}",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: b-}",
      ].join("\n---\n"),
      "f.yaml",
    );
    assert.equal(parsed.objects.length, 1);
    assert.match(parsed.errors[0]!.message, /generateName` is not supported/);
    const r = splitArgoHooks([
      unit("HelmRelease", [object("Job", "", { "argocd.argoproj.io/hook": "PreSync" }, { generateName: "a-" })]),
      unit("ManifestFile", [object("Job", "", { "argocd.argoproj.io/hook": "Skip,Skip" }, { generateName: "c-" })]),
    ]);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!.message, /HelmRelease\/apps\/web: Job\/a-\* \(generateName\) has no metadata.name \(only generateName\)/);
  });

  it("adds a hook Secret's data to the sensitive strings", () => {
    const r = splitArgoHooks(
      [unit("ManifestFile", [object("Secret", "s", { "argocd.argoproj.io/hook": "PreSync" }, {})])].map((u) => ({
        ...u,
        objects: u.objects.map((o) => ({ ...o, object: { ...o.object, stringData: { password: "hunter2-secret" } } })),
      })),
    );
    assert.ok(r.sensitive.includes("hunter2-secret"));
  });
});

describe("argoHooksFor", () => {
  it("orders a phase's hooks by wave, then Argo CD's kind order (custom kinds last), then name", () => {
    const r = splitArgoHooks([
      unit("ManifestFile", [
        object("Job", "b", { "argocd.argoproj.io/hook": "Sync" }),
        object("Job", "a", { "argocd.argoproj.io/hook": "Sync" }),
        object("ConfigMap", "z", { "argocd.argoproj.io/hook": "Sync" }),
        { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "0", annotations: { "argocd.argoproj.io/hook": "Sync" } } },
        object("Job", "late", { "argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "3" }),
        object("Job", "early", { "argocd.argoproj.io/hook": "Sync,PostSync", "argocd.argoproj.io/sync-wave": "-1" }),
        object("Job", "pre", { "argocd.argoproj.io/hook": "PreSync" }),
      ]),
    ]);
    const order = (phase: "PreSync" | "Sync" | "PostSync") =>
      argoHooksFor(r.units[0]!.hooks!, phase).map((h) => `${h.object.kind}/${h.object.metadata.name}`);
    assert.deepEqual(order("Sync"), ["Job/early", "ConfigMap/z", "Job/a", "Job/b", "Widget/0", "Job/late"]);
    assert.deepEqual(order("PostSync"), ["Job/early"]);
    assert.deepEqual(order("PreSync"), ["Job/pre"]);
  });
});

describe("releaseHookRuns for Argo CD hooks", () => {
  const state = (objects: KubeObject[]) => {
    const rendered = splitArgoHooks([unit("ManifestFile", objects)]).units[0]!;
    const units: DesiredUnit[] = [{ ...rendered, objects: rendered.objects.map((o) => desired(o.object)) }];
    return { path: "clusters/dev", units };
  };
  const s = state([
    object("ConfigMap", "app"),
    object("Job", "migrate", { "argocd.argoproj.io/hook": "PreSync" }),
    object("Job", "up", { "argocd.argoproj.io/hook": "Sync" }),
    object("Job", "check", { "argocd.argoproj.io/hook": "PostSync" }),
  ]);
  const runs = (when: "pre" | "post", installed: boolean, changed: boolean) =>
    releaseHookRuns(s, when, () => ({ installed, changed })).map(
      (r) => `${r.release} ${r.event} ${r.hooks.map((h) => h.object.metadata.name).join(",")}`,
    );

  it("runs PreSync before the update, and Sync then PostSync after it, when the unit is installed or changed", () => {
    assert.deepEqual(runs("pre", false, false), ["ManifestFile/clusters/dev/app.yaml PreSync migrate"]);
    assert.deepEqual(runs("post", false, false), [
      "ManifestFile/clusters/dev/app.yaml Sync up",
      "ManifestFile/clusters/dev/app.yaml PostSync check",
    ]);
    assert.deepEqual(runs("pre", true, true), ["ManifestFile/clusters/dev/app.yaml PreSync migrate"]);
  });

  it("runs no hook for a unit that is installed and unchanged", () => {
    assert.deepEqual(runs("pre", true, false), []);
    assert.deepEqual(runs("post", true, false), []);
  });
});

describe("waveDependencies", () => {
  const wave = (kind: string, name: string, w?: number) =>
    desired(object(kind, name, w === undefined ? undefined : { "argocd.argoproj.io/sync-wave": String(w) }));
  const rn = (o: DesiredObject) => resourceName(o.id);

  it("makes each wave of a unit wait for the wave below it, and nothing when a unit has one wave", () => {
    const backend = wave("ReplicaSet", "backend");
    const svc = wave("Service", "backend");
    const frontend = wave("ReplicaSet", "frontend", 2);
    const frontSvc = wave("Service", "frontend", 2);
    const last = wave("ConfigMap", "last", 5);
    const deps = waveDependencies([
      { kind: "ManifestFile", objects: [backend, svc, frontend, frontSvc, last] },
      { kind: "ManifestFile", objects: [wave("ConfigMap", "alone", 7)] },
    ]);
    assert.deepEqual(Object.fromEntries(deps), {
      [rn(frontend)]: [rn(backend), rn(svc)],
      [rn(frontSvc)]: [rn(backend), rn(svc)],
      [rn(last)]: [rn(frontend), rn(frontSvc)],
    });
  });

  it("ignores waves in a HelmRelease (helm-controller applies a release at once)", () => {
    const deps = waveDependencies([{ kind: "HelmRelease", objects: [wave("ConfigMap", "a", 1), wave("ConfigMap", "b", 2)] }]);
    assert.equal(deps.size, 0);
    assert.equal(unitWave({ kind: "HelmRelease" }, wave("ConfigMap", "a", 1)), 0);
    assert.equal(unitWave({ kind: "Kustomize" }, wave("ConfigMap", "a", -3)), -3);
  });

  it("never makes a Namespace wait for what goes in it (its apply phase wins, as Argo CD moves it first), and keeps the rest ordered", () => {
    const app = wave("ConfigMap", "app", 0);
    const ns = desired({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "apps", annotations: { "argocd.argoproj.io/sync-wave": "1" } },
    });
    const later = wave("ConfigMap", "later", 2);
    const deps = waveDependencies([{ kind: "Kustomize", objects: [app, ns, later] }]);
    // The Namespace waits for nothing; `later` waits for both (for `app` directly, as the Namespace does not cover it).
    assert.deepEqual(Object.fromEntries(deps), { [rn(later)]: [rn(ns), rn(app)] });
  });
});
