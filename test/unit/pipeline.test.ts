// The reconcile pipeline over fake ports: every failure reason and every mode, without git, engine or cluster.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DesiredObject, DesiredState } from "../../src/desired-state/desired-state";
import { HelmHook, RunHookEvent } from "../../src/desired-state/helm-hooks";
import { DesiredStateError, GuardError, ManifestError } from "../../src/desired-state/manifest-error";
import { identify, KubeObject, ObjectId, resourceName } from "../../src/desired-state/object-id";
import { ProgramInput } from "../../src/desired-state/program-input";
import { Mode } from "../../src/reconcile/mode";
import { defaultPipelineOptions, reconcile } from "../../src/reconcile/pipeline";
import { EngineError, EngineStep, LockedError, ObjectRef, Observed, Ports, StackSnapshot } from "../../src/reconcile/ports";
import { objectUrn } from "../../src/reconcile/pulumi-stack";
import { Revision, SourceError } from "../../src/source/git-source";

const STACK = "dev";
const revision = (sha: string): Revision => ({
  sha,
  ref: "main",
  author: "Alice",
  authorEmail: "alice@example.com",
  committer: "Alice",
  committerEmail: "alice@example.com",
  date: "2026-11-30T00:00:00Z",
  subject: `commit ${sha.slice(0, 7)}`,
});
const HEAD = "a".repeat(40);
const OLD = "b".repeat(40);

const object = (o: KubeObject, file = "clusters/dev/app.yaml", line = 1): DesiredObject => {
  const id = identify(o, o.kind === "Namespace" ? "Cluster" : "Namespaced");
  return {
    object: { ...o, metadata: { ...o.metadata, ...(id.namespace ? { namespace: id.namespace } : {}) } },
    id,
    location: { file, line },
    prune: true,
  };
};
const cm = (name: string, file?: string, line?: number) => object({ apiVersion: "v1", kind: "ConfigMap", metadata: { name } }, file, line);
const stateOf = (...objects: DesiredObject[]): DesiredState => ({
  path: "clusters/dev",
  units: [
    { kind: "ManifestFile", name: "clusters/dev/app.yaml", location: { file: "clusters/dev/app.yaml", line: 1 }, objects, dependsOn: [] },
  ],
});
const urn = (id: ObjectId) => objectUrn(STACK, id);
const step = (op: EngineStep["op"], o: DesiredObject | string): EngineStep => ({
  op,
  urn: typeof o === "string" ? o : urn(o.id),
  type: "kubernetes:core/v1:ConfigMap",
});

/** Fake ports recording every call; each behaviour can be overridden. */
function fakePorts(over: {
  state?: DesiredState;
  snapshot?: StackSnapshot;
  planned?: EngineStep[];
  applied?: EngineStep[];
  checkout?: () => Promise<Revision>;
  build?: () => Promise<DesiredState>;
  plan?: () => Promise<EngineStep[]>;
  apply?: () => Promise<void>;
  open?: () => Promise<StackSnapshot>;
  lock?: () => Promise<() => Promise<void>>;
  serves?: (apiVersion: string, kind: string) => boolean;
  namespaces?: string[];
  head?: string;
  changed?: string[];
  dryRun?: (o: KubeObject) => string | undefined;
  live?: (ref: ObjectRef) => Record<string, unknown> | undefined;
  hookFails?: (name: string) => string | undefined;
  readsCluster?: boolean;
  clusterUid?: string;
  observed?: Map<string, Observed>;
}) {
  const calls: string[] = [];
  const inputs: ProgramInput[] = [];
  const applies: { message: string; targets?: readonly string[]; dependents?: boolean; kept?: string[] }[] = [];
  const refs: (string | undefined)[] = [];
  const ports: Ports = {
    source: {
      head: () => Promise.resolve(over.head ?? HEAD),
      checkout: (ref) => {
        calls.push("checkout");
        refs.push(ref);
        return over.checkout ? over.checkout() : Promise.resolve(revision(ref && /^[0-9a-f]{40}$/.test(ref) ? ref : HEAD));
      },
      changedPaths: () => Promise.resolve(over.changed ?? []),
    },
    renderer: {
      readsCluster: over.readsCluster,
      build: () => {
        calls.push("build");
        return over.build ? over.build() : Promise.resolve(over.state ?? stateOf(cm("app")));
      },
    },
    cluster: {
      serves: (apiVersion, kind) => Promise.resolve(over.serves ? over.serves(apiVersion, kind) : true),
      uid: () => Promise.resolve(over.clusterUid ?? "cluster-uid"),
      observe: () => Promise.resolve({ seen: over.observed ?? new Map(), unlisted: [] }),
      hasNamespace: (name) => Promise.resolve((over.namespaces ?? ["default"]).includes(name)),
      read: (ref) => Promise.resolve(over.live ? over.live(ref) : { apiVersion: ref.apiVersion, kind: ref.kind }),
      dryRun: (o) => {
        calls.push(`dry-run ${o.kind}/${o.metadata.name}`);
        return Promise.resolve(over.dryRun?.(o));
      },
      runHooks: async (hooks) => {
        for (const h of hooks) {
          calls.push(`hook ${h.object.metadata.name}`);
          const failed = over.hookFails?.(h.object.metadata.name ?? "");
          if (failed !== undefined) return failed;
        }
        return undefined;
      },
    },
    engine: {
      open: () => {
        calls.push("open");
        return over.open ? over.open() : Promise.resolve(over.snapshot ?? { objects: [], pendingCreates: 0 });
      },
      resolvePendingCreates: () => Promise.resolve({ objects: [], pendingCreates: 0 }),
      plan: (input) => {
        calls.push("plan");
        inputs.push(input);
        return over.plan ? over.plan() : Promise.resolve(over.planned ?? [step("create", cm("app"))]);
      },
      apply: async (input, options) => {
        calls.push("apply");
        inputs.push(input);
        applies.push({
          message: options.message,
          targets: options.targets?.urns,
          dependents: options.targets?.dependents,
          kept: input.keep?.map((k) => k.id.name),
        });
        if (over.apply) return over.apply();
        for (const s of over.applied ?? over.planned ?? [step("create", cm("app"))]) {
          const vetoed = options.veto?.(s);
          if (vetoed) throw new EngineError(vetoed, [], false, { vetoed });
          options.onStep(s);
        }
      },
      history: () => Promise.resolve([]),
      urnOf: urn,
    },
    lock: {
      acquire: () => {
        calls.push("lock");
        return over.lock
          ? over.lock()
          : Promise.resolve(async () => {
              calls.push("unlock");
            });
      },
    },
  };
  return { ports, calls, inputs, applies, refs };
}

const options = defaultPipelineOptions({ stack: STACK, path: "clusters/dev" });
const apply: Mode = { kind: "apply", run: "sync", scope: "full" };

describe("reconcile pipeline", () => {
  it("applies a commit: lock, open, fetch, build, dry run, apply, unlock, with the update's message", async () => {
    const f = fakePorts({});
    const r = await reconcile(apply, f.ports, options);
    assert.equal(r.succeeded, true, r.message);
    assert.deepEqual(f.calls, ["lock", "open", "checkout", "build", "dry-run ConfigMap/app", "apply", "unlock"]);
    assert.equal(f.applies[0]?.message, `sync ${HEAD.slice(0, 7)}: commit ${HEAD.slice(0, 7)}`);
    assert.deepEqual(r.changes, { created: 1, updated: 0, replaced: 0, deleted: 0, unchanged: 0 });
    assert.deepEqual(r.objects, [{ change: "created", object: "ConfigMap/default/app" }]);
    assert.equal(r.revision?.sha, HEAD);
  });

  it("reports each unit's readiness; a unit that asks to wait and is not ready in time fails the run as HealthCheckFailed, nothing undone", async () => {
    const web = object({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" } });
    const state: DesiredState = {
      path: "clusters/dev",
      units: [
        {
          kind: "Kustomization",
          name: "flux-system/apps",
          location: { file: "clusters/dev/apps.yaml", line: 1 },
          objects: [web],
          dependsOn: [],
          health: { wait: true, checks: [], timeoutMs: 1 },
        },
      ],
    };
    const live = () => ({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { replicas: 1 }, status: {} });
    const f = fakePorts({ state, live, applied: [step("create", web)] });
    const r = await reconcile(apply, f.ports, options);
    assert.equal(r.succeeded, false);
    assert.equal(r.reason, "HealthCheckFailed");
    assert.match(
      r.message ?? "",
      /Kustomization\/flux-system\/apps: health check was not ready[\s\S]*Deployment\/default\/web: InProgress \(LessReplicas\)/,
    );
    assert.deepEqual(r.changes, { created: 1, updated: 0, replaced: 0, deleted: 0, unchanged: 0 });
    assert.equal(r.units?.[0]?.waited, "failed");
    assert.ok(f.calls.includes("apply") && f.calls.at(-1) === "unlock");
  });

  it("reports readiness without waiting when no unit asks", async () => {
    const f = fakePorts({ live: () => undefined });
    const r = await reconcile(apply, f.ports, options);
    assert.equal(r.succeeded, true, r.message);
    assert.deepEqual(r.units, [{ unit: "ManifestFile/clusters/dev/app.yaml", health: "Ready", objects: [] }]);
  });

  it("asks the API server about the objects the update creates or changes only", async () => {
    const same = cm("same");
    const edited = cm("edited");
    const f = fakePorts({
      state: stateOf(same, edited, cm("new")),
      snapshot: {
        objects: [
          { urn: urn(same.id), id: same.id, inputs: same.object },
          { urn: urn(edited.id), id: edited.id, inputs: { ...edited.object, data: { k: "old" } } },
        ],
        pendingCreates: 0,
      },
    });
    const r = await reconcile(apply, f.ports, options);
    assert.equal(r.succeeded, true, r.message);
    assert.deepEqual(
      f.calls.filter((c) => c.startsWith("dry-run")),
      ["dry-run ConfigMap/edited", "dry-run ConfigMap/new"],
    );
  });

  it("takes over a state entry of an older URN as an alias", async () => {
    const old = "urn:pulumi:dev::ferry::ferry:index:ClusterStack$ferry:index:ManifestFile$kubernetes:core/v1:ConfigMap::core/ConfigMap/app";
    const f = fakePorts({ applied: [step("same", cm("app"))], snapshot: { objects: [{ urn: old, id: cm("app").id }], pendingCreates: 0 } });
    const r = await reconcile(apply, f.ports, options);
    assert.equal(r.succeeded, true, r.message);
    assert.deepEqual(f.inputs[0]?.adopt, { "core/ConfigMap/default/app": old });
    assert.deepEqual(r.changes, { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 1 });
  });

  describe("Helm hooks", () => {
    const hook = (name: string, events: RunHookEvent[], weight = 0): HelmHook => ({
      object: { apiVersion: "batch/v1", kind: "Job", metadata: { name } },
      namespace: "default",
      events,
      weight,
      deletePolicies: ["before-hook-creation"],
    });
    const release = (objects: DesiredObject[]): DesiredState => ({
      path: "clusters/dev",
      units: [
        {
          kind: "HelmRelease",
          name: "default/web",
          location: { file: "clusters/dev/web.yaml", line: 1 },
          objects,
          dependsOn: [],
          hooks: [
            hook("migrate", ["pre-install", "pre-upgrade"], 5),
            hook("seed", ["pre-install"], -1),
            hook("notify", ["post-install", "post-upgrade"]),
          ],
        },
      ],
    });

    it("runs pre-install hooks in weight order before the update and post-install hooks after it", async () => {
      const f = fakePorts({ state: release([cm("app")]) });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.succeeded, true, r.message);
      assert.deepEqual(f.calls.slice(f.calls.indexOf("dry-run ConfigMap/app") + 1), [
        "hook seed",
        "hook migrate",
        "apply",
        "hook notify",
        "unlock",
      ]);
    });

    it("runs upgrade hooks only when the release's objects change, and none when nothing changed", async () => {
      const app = cm("app");
      const unchanged = fakePorts({
        state: release([app]),
        snapshot: { objects: [{ urn: urn(app.id), id: app.id, inputs: app.object }], pendingCreates: 0 },
      });
      assert.equal((await reconcile(apply, unchanged.ports, options)).succeeded, true);
      assert.deepEqual(
        unchanged.calls.filter((c) => c.startsWith("hook")),
        [],
      );
      const upgraded = fakePorts({
        state: release([app]),
        snapshot: { objects: [{ urn: urn(app.id), id: app.id, inputs: { ...app.object, data: { k: "old" } } }], pendingCreates: 0 },
      });
      assert.equal((await reconcile(apply, upgraded.ports, options)).succeeded, true);
      assert.deepEqual(
        upgraded.calls.filter((c) => c.startsWith("hook")),
        ["hook migrate", "hook notify"],
      );
    });

    it("stops before the update when a pre-install hook fails", async () => {
      const f = fakePorts({
        state: release([cm("app")]),
        hookFails: (n) => (n === "migrate" ? "Job/default/migrate: the Job failed" : undefined),
      });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "ApplyFailed");
      assert.match(r.message ?? "", /HelmRelease\/default\/web: pre-install hook Job\/default\/migrate: the Job failed/);
      assert.ok(!f.calls.includes("apply"));
    });

    it("runs the hooks of a unit that has only hooks when the last update did not record them as they are now", async () => {
      const only: DesiredState = {
        path: "clusters/dev",
        units: [
          {
            kind: "ManifestFile",
            name: "clusters/dev/app.yaml",
            location: { file: "clusters/dev/app.yaml", line: 1 },
            objects: [cm("app")],
            dependsOn: [],
          },
          {
            kind: "ManifestFile",
            name: "clusters/dev/migrate.yaml",
            location: { file: "clusters/dev/migrate.yaml", line: 1 },
            objects: [],
            dependsOn: [],
            hooks: [hook("migrate", ["PreSync"])],
          },
        ],
      };
      const first = fakePorts({ state: only });
      assert.equal((await reconcile(apply, first.ports, options)).succeeded, true);
      const recorded = first.inputs.at(-1)?.outputs.hooks as Record<string, string>;
      assert.ok(recorded["ManifestFile/clusters/dev/migrate.yaml"]);
      const again = fakePorts({ state: only, snapshot: { objects: [], pendingCreates: 0, hooks: recorded } });
      assert.equal((await reconcile(apply, again.ports, options)).succeeded, true);
      const edited = fakePorts({
        state: only,
        snapshot: { objects: [], pendingCreates: 0, hooks: { "ManifestFile/clusters/dev/migrate.yaml": "other" } },
      });
      assert.equal((await reconcile(apply, edited.ports, options)).succeeded, true);
      const ran = (f: typeof first) => f.calls.filter((c) => c.startsWith("hook")).length;
      assert.deepEqual([ran(first), ran(again), ran(edited)], [1, 0, 1]);
    });

    it("a hook that fails after the update (Argo CD PostSync) fails its unit, whose objects stay applied", async () => {
      const state: DesiredState = {
        path: "clusters/dev",
        units: [
          {
            kind: "ManifestFile",
            name: "clusters/dev/app.yaml",
            location: { file: "clusters/dev/app.yaml", line: 1 },
            objects: [cm("app")],
            dependsOn: [],
            hooks: [hook("notify", ["PostSync"])],
          },
        ],
      };
      const f = fakePorts({ state, hookFails: () => "Job/default/notify: the Job failed" });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "ApplyFailed");
      assert.deepEqual(
        r.failedUnits?.map((u) => [u.unit, u.reason]),
        [["ManifestFile/clusters/dev/app.yaml", "HookFailed"]],
      );
      assert.match(r.message ?? "", /the rest of the desired state was applied/);
      assert.deepEqual(r.objects, [{ change: "created", object: "ConfigMap/default/app" }]);
    });

    it("runs no hooks in a preview", async () => {
      const f = fakePorts({ state: release([cm("app")]) });
      await reconcile({ kind: "preview", ref: "main" }, f.ports, options);
      assert.deepEqual(
        f.calls.filter((c) => c.startsWith("hook")),
        [],
      );
    });
  });

  describe("failure reasons", () => {
    it("Locked: another run holds the stack; nothing else happens", async () => {
      const f = fakePorts({ lock: () => Promise.reject(new LockedError("stack dev is being reconciled by another run (pid 1)")) });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "Locked");
      assert.match(r.message ?? "", /another run/);
      assert.deepEqual(f.calls, ["lock"]);
    });

    it("Locked: the engine reports a concurrent update", async () => {
      const f = fakePorts({ apply: () => Promise.reject(new EngineError("the stack is currently locked", [], true)) });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "Locked");
      assert.ok(f.calls.includes("unlock"), "the stack lock is released after a failure");
    });

    it("ApplyFailed: the stack's state cannot be read", async () => {
      const f = fakePorts({ open: () => Promise.reject(new Error("failed to load checkpoint")) });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "ApplyFailed");
      assert.deepEqual(f.calls, ["lock", "open", "unlock"]);
    });

    it("SourceFailed: the config repo cannot be fetched; nothing is built or applied", async () => {
      const f = fakePorts({ checkout: () => Promise.reject(new SourceError("cannot fetch https://git.example/repo: timeout")) });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "SourceFailed");
      assert.deepEqual(f.calls, ["lock", "open", "checkout", "unlock"]);
    });

    it("BuildFailed: the commit's files do not load, named by file and line", async () => {
      const bad = new DesiredStateError([new ManifestError({ file: "clusters/dev/x.yaml", line: 3 }, "invalid YAML")]);
      const f = fakePorts({ build: () => Promise.reject(bad) });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "BuildFailed");
      assert.match(r.message ?? "", /clusters\/dev\/x\.yaml:3/);
      assert.ok(!f.calls.includes("plan"));
    });

    it("GuardRefused: an empty folder", async () => {
      const f = fakePorts({ build: () => Promise.reject(new GuardError('cluster folder "clusters/dev" contains no Kubernetes objects')) });
      assert.equal((await reconcile(apply, f.ports, options)).reason, "GuardRefused");
    });

    it("GuardRefused: a prune of more than the allowed share of the managed objects", async () => {
      const managed = ["a", "b", "c"].map((n) => ({ urn: urn(cm(n).id), id: cm(n).id }));
      const f = fakePorts({ state: stateOf(cm("a")), snapshot: { objects: managed, pendingCreates: 0 } });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "GuardRefused");
      assert.match(r.message ?? "", /delete 2 of the 3 objects/);
      assert.ok(!f.calls.includes("plan"));
    });

    it("GuardRefused: the update would delete an object Git still declares, naming both places; nothing is asked or applied", async () => {
      const app = cm("app", "clusters/dev/app.yaml", 4);
      const stale = "urn:pulumi:dev::ferry::ferry:index:ClusterStack$kubernetes:core/v1:ConfigMap::core/ConfigMap/default/stale-copy";
      const f = fakePorts({
        state: stateOf(app),
        snapshot: {
          objects: [
            { urn: urn(app.id), id: app.id },
            { urn: stale, id: app.id },
          ],
          pendingCreates: 0,
        },
      });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "GuardRefused");
      assert.match(r.message ?? "", /ConfigMap\/default\/app: the engine would delete it/);
      assert.match(r.message ?? "", /stale-copy/);
      assert.match(r.message ?? "", /clusters\/dev\/app\.yaml:4/);
      assert.deepEqual(f.calls, ["lock", "open", "checkout", "build", "unlock"], "nothing was asked of the cluster or applied");
    });

    it("GuardRefused: the engine starts a delete of a declared object nobody foresaw; the update is aborted before it", async () => {
      const app = cm("app");
      const stray = "urn:pulumi:dev::ferry::ferry:index:ClusterStack$kubernetes:core/v1:ConfigMap::core/ConfigMap/default/app";
      const f = fakePorts({
        snapshot: { objects: [{ urn: stray, id: app.id }], pendingCreates: 0 },
        applied: [step("same", app), step("delete", stray)],
      });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "GuardRefused");
      assert.match(r.message ?? "", /ConfigMap\/default\/app: the engine would delete it/);
      assert.deepEqual(r.objects, [], "the delete never ran");
    });

    it("DryRunFailed: a kind the cluster does not serve, at its file and line", async () => {
      const widget = object({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }, "clusters/dev/w.yaml", 7);
      const f = fakePorts({ state: stateOf(widget), serves: (_v, kind) => kind !== "Widget" });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "DryRunFailed");
      assert.match(r.message ?? "", /clusters\/dev\/w\.yaml:7: Widget\/default\/w: the cluster does not serve Widget in example.com\/v1/);
      assert.ok(!f.calls.some((c) => c.startsWith("dry-run")) && !f.calls.includes("apply"));
    });

    it("DryRunFailed: a namespace that neither exists nor is declared", async () => {
      const f = fakePorts({ state: stateOf(object({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "nope" } })) });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "DryRunFailed");
      assert.match(r.message ?? "", /namespace "nope" does not exist/);
    });

    it("DryRunFailed: the API server rejects an object in a dry run; nothing is applied", async () => {
      const bad = object({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" } }, "clusters/dev/web.yaml", 12);
      const f = fakePorts({
        state: stateOf(cm("app"), bad),
        dryRun: (o) => (o.kind === "Deployment" ? 'Deployment.apps "web" is invalid: spec.selector: Required value' : undefined),
      });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "DryRunFailed");
      assert.match(
        r.message ?? "",
        /clusters\/dev\/web\.yaml:12: Deployment\/default\/web: the API server rejects it: .*spec\.selector: Required value/,
      );
      assert.ok(!f.calls.includes("apply"));
    });

    it("DryRunFailed in a preview: the engine's plan reports the object the API server rejects", async () => {
      const bad = object({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" } }, "clusters/dev/web.yaml", 12);
      const f = fakePorts({
        state: stateOf(cm("app"), bad),
        plan: () =>
          Promise.reject(
            new EngineError(
              "preview failed",
              [{ urn: urn(bad.id), message: 'Deployment.apps "web" is invalid: spec.selector: Required value' }],
              false,
            ),
          ),
      });
      const r = await reconcile({ kind: "preview", ref: "feature" }, f.ports, options);
      assert.equal(r.reason, "DryRunFailed");
      assert.match(
        r.message ?? "",
        /clusters\/dev\/web\.yaml:12: Deployment\/default\/web: the API server rejects it: .*spec\.selector: Required value/,
      );
    });

    it("ApplyFailed: the update fails, leading with the object at its file and line", async () => {
      const f = fakePorts({
        apply: () => Promise.reject(new EngineError("update failed", [{ urn: urn(cm("app").id), message: "timed out" }], false)),
      });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "ApplyFailed");
      assert.match(r.message ?? "", /clusters\/dev\/app\.yaml:1: ConfigMap\/default\/app: .*timed out/);
    });
  });

  describe("settle", () => {
    const withData = (k: string) => object({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "app" }, data: { k } });

    it("builds again after an update that created objects, and applies once more what renders differently now", async () => {
      const builds = [stateOf(withData("random")), stateOf(withData("looked-up"))];
      const f = fakePorts({ readsCluster: true, build: () => Promise.resolve(builds.shift()!), applied: [step("create", cm("app"))] });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.succeeded, true, r.message);
      assert.deepEqual(
        f.calls.filter((c) => c === "build" || c === "apply" || c === "open"),
        ["open", "build", "apply", "build", "open", "apply"],
      );
      assert.deepEqual(f.inputs.at(-1)?.state.units[0]?.objects[0]?.object.data, { k: "looked-up" });
    });

    it("applies once when the second build renders the same, or when charts do not read the cluster", async () => {
      const same = fakePorts({ readsCluster: true, state: stateOf(withData("v")), applied: [step("create", cm("app"))] });
      assert.equal((await reconcile(apply, same.ports, options)).succeeded, true);
      assert.deepEqual(
        same.calls.filter((c) => c === "build" || c === "apply"),
        ["build", "apply", "build"],
      );
      const builds = [stateOf(withData("a")), stateOf(withData("b"))];
      const offline = fakePorts({ build: () => Promise.resolve(builds.shift()!), applied: [step("create", cm("app"))] });
      assert.equal((await reconcile(apply, offline.ports, options)).succeeded, true);
      assert.deepEqual(
        offline.calls.filter((c) => c === "build" || c === "apply"),
        ["build", "apply"],
      );
    });
  });

  describe("unit isolation", () => {
    const unit = (name: string, objects: DesiredObject[], dependsOn: string[] = []): DesiredState["units"][number] => ({
      kind: "HelmRelease",
      name,
      location: { file: `clusters/dev/${name.split("/")[1]}.yaml`, line: 1 },
      objects,
      dependsOn,
    });
    const broken = {
      kind: "HelmRelease" as const,
      name: "default/broken",
      location: { file: "clusters/dev/broken.yaml", line: 3 },
      errors: [new ManifestError({ file: "clusters/dev/broken.yaml", line: 3 }, "HelmRelease/default/broken: chart not found")],
    };
    const managed = (...objects: DesiredObject[]): StackSnapshot => ({
      objects: objects.map((o) => ({ urn: urn(o.id), id: o.id, inputs: o.object })),
      pendingCreates: 0,
    });

    it("a unit that does not build is held back with the units that wait for it; the others apply, nothing is deleted", async () => {
      const state: DesiredState = {
        path: "clusters/dev",
        units: [unit("default/good", [cm("good")]), unit("default/after", [cm("after")], ["HelmRelease/default/broken"])],
        failed: [broken],
      };
      // The state holds the broken release's object and a third one: neither may be deleted, so no prune guard is weighed.
      const f = fakePorts({ state, snapshot: managed(cm("old-broken"), cm("gone")), applied: [step("create", cm("good"))] });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.succeeded, false);
      assert.equal(r.reason, "BuildFailed");
      assert.deepEqual(
        r.failedUnits?.map((u) => [u.unit, u.reason]),
        [
          ["HelmRelease/default/broken", "BuildFailed"],
          ["HelmRelease/default/after", "DependencyFailed"],
        ],
      );
      assert.match(r.message ?? "", /clusters\/dev\/broken\.yaml:3: HelmRelease\/default\/broken: chart not found/);
      assert.match(r.message ?? "", /HelmRelease\/default\/after .*waits for HelmRelease\/default\/broken, which failed/);
      assert.deepEqual(
        f.inputs[0]?.state.units.map((u) => u.name),
        ["default/good"],
      );
      // What the state holds and no unit declares is registered as it was, changes ignored: nothing deleted.
      assert.deepEqual(f.applies[0]?.kept, ["old-broken", "gone"]);
      assert.deepEqual(r.objects, [{ change: "created", object: "ConfigMap/default/good" }]);
    });

    it("a preview of a commit with a unit that does not build fails as the commit would; a rollback to it is refused", async () => {
      const state: DesiredState = { path: "clusters/dev", units: [unit("default/good", [cm("good")])], failed: [broken] };
      const f = fakePorts({ state });
      const r = await reconcile({ kind: "preview", ref: "feature" }, f.ports, options);
      assert.equal(r.reason, "BuildFailed");
      assert.match(r.message ?? "", /chart not found/);
      assert.ok(!f.calls.includes("plan"));
      const back = fakePorts({ state });
      const rb = await reconcile(
        { kind: "rollback", pin: { revision: OLD, from: HEAD, by: "dana", policy: "resume" } },
        back.ports,
        options,
      );
      assert.equal(rb.reason, "BuildFailed");
      assert.match(rb.message ?? "", /nothing was applied/);
      assert.ok(!back.calls.includes("apply"));
    });

    it("a unit the API server refuses is held back; the others apply; when every unit is refused nothing is applied", async () => {
      const state: DesiredState = { path: "clusters/dev", units: [unit("default/good", [cm("good")]), unit("default/bad", [cm("bad")])] };
      const f = fakePorts({ state, dryRun: (o) => (o.metadata.name === "bad" ? "data: Invalid value" : undefined) });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "DryRunFailed");
      assert.deepEqual(
        r.failedUnits?.map((u) => [u.unit, u.reason]),
        [["HelmRelease/default/bad", "DryRunFailed"]],
      );
      assert.deepEqual(
        f.inputs[0]?.state.units.map((u) => u.name),
        ["default/good"],
      );
      assert.deepEqual(f.applies[0]?.kept, []);
      const all = fakePorts({ state, dryRun: () => "data: Invalid value" });
      const none = await reconcile(apply, all.ports, options);
      assert.equal(none.reason, "DryRunFailed");
      assert.match(none.message ?? "", /refuses 2 objects of this commit; nothing was applied/);
      assert.ok(!all.calls.includes("apply"));
    });

    it("a release whose pre-install hook fails is held back; the others apply", async () => {
      const job: HelmHook = {
        object: { apiVersion: "batch/v1", kind: "Job", metadata: { name: "migrate" } },
        namespace: "default",
        events: ["pre-install"],
        weight: 0,
        deletePolicies: ["before-hook-creation"],
      };
      const state: DesiredState = {
        path: "clusters/dev",
        units: [{ ...unit("default/web", [cm("web")]), hooks: [job] }, unit("default/good", [cm("good")])],
      };
      const f = fakePorts({ state, hookFails: () => "Job/default/migrate: the Job failed" });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "ApplyFailed");
      assert.deepEqual(
        r.failedUnits?.map((u) => [u.unit, u.reason]),
        [["HelmRelease/default/web", "HookFailed"]],
      );
      assert.deepEqual(
        f.inputs[0]?.state.units.map((u) => u.name),
        ["default/good"],
      );
    });

    it("an object the engine fails on fails its unit; the update went on with the others", async () => {
      const state: DesiredState = { path: "clusters/dev", units: [unit("default/good", [cm("good")]), unit("default/bad", [cm("bad")])] };
      const f = fakePorts({
        state,
        apply: () => Promise.reject(new EngineError("update failed", [{ urn: urn(cm("bad").id), message: "forbidden" }], false)),
      });
      const r = await reconcile(apply, f.ports, options);
      assert.equal(r.reason, "ApplyFailed");
      assert.deepEqual(
        r.failedUnits?.map((u) => [u.unit, u.reason]),
        [["HelmRelease/default/bad", "ApplyFailed"]],
      );
      assert.match(r.message ?? "", /clusters\/dev\/app\.yaml:1: ConfigMap\/default\/bad: the API server rejects it: forbidden/);
      assert.equal(f.applies[0]?.kept, undefined);
    });
  });

  describe("modes", () => {
    it("detect: plans and reports drift, changes nothing", async () => {
      const f = fakePorts({ planned: [step("update", cm("app"))] });
      const r = await reconcile({ kind: "detect" }, f.ports, options);
      assert.equal(r.succeeded, true);
      assert.equal(r.drift, true);
      assert.deepEqual(r.objects, [{ change: "updated", object: "ConfigMap/default/app" }]);
      assert.ok(!f.calls.includes("apply"));
      assert.ok(f.calls.includes("lock"), "detect uses the stack's checkout, so it takes the lock");
    });

    it("heal: updates only the drifted objects the stack manages, without a dry run", async () => {
      const app = cm("app");
      const f = fakePorts({ snapshot: { objects: [{ urn: urn(app.id), id: app.id }], pendingCreates: 0 }, applied: [step("create", app)] });
      const r = await reconcile({ kind: "heal", targets: [app.id] }, f.ports, options);
      assert.equal(r.succeeded, true);
      assert.ok(!f.calls.some((c) => c.startsWith("dry-run")));
      assert.deepEqual(f.applies[0]?.targets, [urn(app.id)]);
      // Not their dependents: with the stack's frame (its providers) that would be every object.
      assert.equal(f.applies[0]?.dependents, false);
      assert.match(f.applies[0]?.message ?? "", /^heal /);
    });

    it("heal of an object the state does not hold: checks and applies everything", async () => {
      const f = fakePorts({});
      await reconcile({ kind: "heal", targets: [cm("app").id] }, f.ports, options);
      assert.ok(f.calls.includes("dry-run ConfigMap/app"));
      assert.equal(f.applies[0]?.targets, undefined);
    });

    it("rollback: applies the pinned commit, and records the pin and who", async () => {
      const f = fakePorts({ applied: [step("same", cm("app"))] });
      const r = await reconcile({ kind: "rollback", pin: { revision: OLD, from: HEAD, by: "dana", policy: "resume" } }, f.ports, options);
      assert.equal(r.succeeded, true);
      assert.deepEqual(f.refs, [OLD]);
      assert.match(f.applies[0]?.message ?? "", new RegExp(`^rollback ${OLD.slice(0, 7)} from ${HEAD.slice(0, 7)} by dana: `));
      assert.equal((f.inputs.at(-1)?.outputs.pin as { revision: string }).revision, OLD);
      assert.equal(r.pin?.by, "dana");
    });

    it("apply on a pinned stack applies the pinned commit; unpin lifts it and records a resume", async () => {
      const pin = { revision: OLD, by: "dana", at: "2026-11-29T00:00:00Z", policy: "resume" as const };
      const pinned = fakePorts({ snapshot: { objects: [], pendingCreates: 0, pin } });
      const held = await reconcile(apply, pinned.ports, options);
      assert.deepEqual(pinned.refs, [OLD]);
      assert.equal(held.pin?.revision, OLD);
      const f = fakePorts({ snapshot: { objects: [], pendingCreates: 0, pin } });
      const r = await reconcile({ kind: "apply", run: "sync", unpin: true, scope: "full" }, f.ports, options);
      assert.deepEqual(f.refs, [undefined]);
      assert.equal(r.unpinned, "resume");
      assert.equal(r.pin, undefined);
      assert.match(f.applies[0]?.message ?? "", /^resume /);
      assert.deepEqual(f.inputs.at(-1)?.outputs, { hooks: {}, clusterUid: "cluster-uid" });
    });

    it("preview: no lock, a plan of the ref, nothing applied", async () => {
      const f = fakePorts({ planned: [step("update", cm("app"))] });
      const r = await reconcile({ kind: "preview", ref: "feature" }, f.ports, options);
      assert.equal(r.succeeded, true);
      assert.deepEqual(f.calls, ["open", "checkout", "build", "plan"]);
      assert.deepEqual(f.refs, ["feature"]);
      assert.equal(r.planned?.length, 1);
    });

    it("preview with a base: skipped when the change does not touch the stack's folder", async () => {
      const f = fakePorts({ changed: ["docs/README.md"] });
      const r = await reconcile({ kind: "preview", ref: "feature", base: "main" }, f.ports, options);
      assert.equal(r.skipped, true);
      assert.ok(!f.calls.includes("build"));
    });
  });

  describe("a run of what changed", () => {
    const changed = (drifted: ObjectId[] = []): Mode => ({ kind: "apply", run: "sync", scope: "changed", drifted });
    const a = cm("a");
    const b = cm("b");
    const recorded = (...objects: DesiredObject[]): StackSnapshot => ({
      objects: objects.map((o) => ({ urn: urn(o.id), id: o.id, inputs: o.object })),
      pendingCreates: 0,
      clusterUid: "cluster-uid",
    });

    it("runs no update when the desired state is what the state recorded, on the same cluster", async () => {
      const f = fakePorts({ state: stateOf(a, b), snapshot: recorded(a, b) });
      const r = await reconcile(changed(), f.ports, options);
      assert.equal(r.succeeded, true, r.message);
      assert.ok(!f.calls.includes("apply"), f.calls.join(","));
      assert.deepEqual(r.scope, { kind: "none", objects: 0 });
    });

    it("targets what changed, what drifted and what left Git; new objects are creates", async () => {
      const edited = { ...b, object: { ...b.object, data: { k: "new" } } };
      const gone = cm("gone");
      const fresh = cm("fresh");
      const f = fakePorts({ state: stateOf(a, edited, fresh), snapshot: recorded(a, b, gone), applied: [] });
      const r = await reconcile(changed([a.id]), f.ports, options);
      assert.equal(r.succeeded, true, r.message);
      assert.deepEqual([...(f.applies[0]?.targets ?? [])].sort(), [urn(a.id), urn(b.id), urn(gone.id)].sort());
      assert.equal(f.applies[0]?.dependents, false);
      assert.deepEqual(r.scope, { kind: "targets", objects: 4 });
    });

    it("updates every object on a cluster that is not the one the last update applied to (its etcd lost)", async () => {
      const f = fakePorts({ state: stateOf(a, b), snapshot: recorded(a, b), clusterUid: "rebuilt", applied: [] });
      const r = await reconcile(changed(), f.ports, options);
      assert.equal(r.succeeded, true, r.message);
      assert.ok(f.calls.includes("apply"));
      assert.equal(f.applies[0]?.targets, undefined);
      assert.equal(f.inputs.at(-1)?.outputs.clusterUid, "rebuilt");
      assert.equal(r.scope?.kind, "full");
    });

    it("without a live view, targets what changed in the cluster since the last update (its metadata, listed)", async () => {
      const c = cm("c");
      const snapshot: StackSnapshot = {
        objects: [a, b, c].map((o) => ({ urn: urn(o.id), id: o.id, inputs: o.object, observed: { resourceVersion: "1" } })),
        pendingCreates: 0,
        clusterUid: "cluster-uid",
      };
      // a as recorded; b edited by hand (a new resourceVersion); c deleted.
      const observed = new Map<string, Observed>([
        [resourceName(a.id), { resourceVersion: "1" }],
        [resourceName(b.id), { resourceVersion: "7" }],
      ]);
      const f = fakePorts({ state: stateOf(a, b, c), snapshot, observed, applied: [] });
      const r = await reconcile({ kind: "apply", run: "sync", scope: "changed" }, f.ports, options);
      assert.equal(r.succeeded, true, r.message);
      assert.deepEqual([...(f.applies[0]?.targets ?? [])].sort(), [urn(b.id), urn(c.id)].sort());
    });

    it("updates only the outputs when a unit's hooks changed and none of its objects", async () => {
      const snapshot = { ...recorded(a), hooks: { "ManifestFile/clusters/dev/app.yaml": "old-digest" } };
      const f = fakePorts({ state: stateOf(a), snapshot, applied: [] });
      const r = await reconcile(changed(), f.ports, options);
      assert.equal(r.succeeded, true, r.message);
      assert.deepEqual(f.applies[0]?.targets, []);
    });
  });
});
