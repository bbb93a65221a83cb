// End to end: an object is (group, kind, namespace, name). Writing its manifest differently, moving it
// between files, Kustomize folders, Flux Kustomizations and charts, or upgrading ferry never deletes
// or recreates it; a plan that would delete a declared object is refused.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { run, runChecked } from "../../src/lib/exec";
import { ferryRoot } from "../../src/lib/paths";
import { ReconcileResult } from "../../src/reconcile/reconcile-result";
import { ChartRepo, startChartRepo } from "../helpers/chart-repo";
import { ConfigRepo } from "../helpers/config-repo";
import { E2E, eventually, useE2E } from "../helpers/e2e";
import { ferrySync } from "../helpers/ferry-sync";

/** The release before object identity was fixed: a stack it synced must upgrade in place. */
const PREVIOUS_RELEASE = "6a05702";

interface Live {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    generation?: number;
    managedFields?: { manager: string; operation: string; apiVersion: string }[];
  };
  data?: Record<string, string>;
  status?: { phase?: string };
}

/** Where a scenario's objects live: a Namespace of its own, plus ConfigMaps written without a namespace (so in `default`). */
interface Scope {
  readonly namespace: string;
  readonly defaultConfigMaps: readonly string[];
}

/** The scenario's live objects by `Kind/namespace/name` (cluster-scoped: `Kind/name`). */
async function liveObjects(e: E2E, scope: Scope): Promise<Map<string, Live>> {
  const lists = await Promise.all([
    e.getJson<{ items: Live[] }>("namespaces", "--field-selector", `metadata.name=${scope.namespace}`),
    ...scope.defaultConfigMaps.map((name) =>
      e.getJson<{ items: Live[] }>("configmaps", "-n", "default", "--field-selector", `metadata.name=${name}`),
    ),
    e.getJson<{ items: Live[] }>(
      "configmaps,persistentvolumeclaims,deployments.apps,horizontalpodautoscalers.autoscaling",
      "-n",
      scope.namespace,
    ),
  ]);
  const objects = lists.flatMap((l) => l.items).filter((o) => o.metadata.name !== "kube-root-ca.crt");
  return new Map(objects.map((o) => [[o.kind, o.metadata.namespace, o.metadata.name].filter(Boolean).join("/"), o]));
}

/** `Kind/namespace/name` -> uid, in key order. */
function uids(objects: Map<string, Live>): Record<string, string> {
  return Object.fromEntries([...objects].map(([k, o]) => [k, o.metadata.uid]).sort());
}

/** Any change to any object shows: uid and resourceVersion (generation for objects whose status controllers keep writing). */
function fingerprint(objects: Map<string, Live>): Record<string, string> {
  return Object.fromEntries(
    [...objects]
      .map(([k, o]) => {
        const busy = o.kind === "Deployment" || o.kind === "HorizontalPodAutoscaler";
        return [k, `${o.metadata.uid} ${busy ? `generation ${o.metadata.generation}` : o.metadata.resourceVersion}`];
      })
      .sort(),
  );
}

/** A run that kept every object: no create, delete or replace, in the counts or the list. */
function assertNoChurn(result: ReconcileResult, stderr: string): void {
  const churn = result.objects.filter((o) => o.change === "created" || o.change === "deleted" || o.change === "replaced");
  assert.deepEqual(churn, [], `objects were recreated or deleted: ${JSON.stringify(result.objects)}\n${stderr.slice(-2000)}`);
  assert.equal(result.changes?.created, 0, JSON.stringify(result.changes));
  assert.equal(result.changes?.deleted, 0, JSON.stringify(result.changes));
  assert.equal(result.changes?.replaced, 0, JSON.stringify(result.changes));
}

/**
 * Checks the previous release out into a git worktree of ferry's own repository (sharing this
 * checkout's node_modules) and builds it; returns its bin/ferry. Fails, never skips, when the commit
 * is not there (a shallow clone).
 */
async function buildPreviousRelease(worktree: string): Promise<string> {
  const root = ferryRoot();
  const rev = await run("git", ["-C", root, "rev-parse", "--verify", "--quiet", `${PREVIOUS_RELEASE}^{commit}`]);
  if (rev.code !== 0) {
    throw new Error(
      `the previous release, commit ${PREVIOUS_RELEASE}, is not in the git history of ${root} (a shallow clone?); ` +
        "fetch it (git fetch --unshallow) to run the upgrade test",
    );
  }
  await runChecked("git", ["-C", root, "worktree", "add", "--detach", worktree, rev.stdout.trim()]);
  fs.symlinkSync(path.join(root, "node_modules"), path.join(worktree, "node_modules"), "dir");
  // tsc exits non-zero on a type error but still emits; what matters is a runnable CLI.
  const tsc = await run(path.join(root, "node_modules", ".bin", "tsc"), ["-p", path.join(worktree, "tsconfig.json")]);
  const main = path.join(worktree, "dist", "src", "cli", "main.js");
  if (!fs.existsSync(main)) throw new Error(`building ${PREVIOUS_RELEASE} emitted no ${main}:\n${tsc.stdout}\n${tsc.stderr}`);
  return path.join(worktree, "bin", "ferry");
}

describe("object identity", () => {
  const env = useE2E();
  const stack = "dev";
  const scope: Scope = { namespace: "identity", defaultConfigMaps: ["app"] };
  /** Every object of every step of test/fixtures/repos/identity. */
  const TRACKED = [
    "ConfigMap/default/app",
    "ConfigMap/identity/from-chart",
    "ConfigMap/identity/moving",
    "ConfigMap/identity/placeholder",
    "ConfigMap/identity/settings",
    "ConfigMap/identity/shared",
    "ConfigMap/identity/staying",
    "Deployment/identity/web",
    "HorizontalPodAutoscaler/identity/web",
    "Namespace/identity",
    "PersistentVolumeClaim/identity/data",
  ];
  let charts: ChartRepo | undefined;
  let repo: ConfigRepo;
  /** Set by the first test: the steps after it move objects the baseline created, and fail at once without them. */
  let baselineApplied = false;
  const previousDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-previous-release-"));
  const worktree = path.join(previousDir, "ferry");
  let previousBin: Promise<string> | undefined;

  const sync = () => ferrySync(env(), { repo: repo.dir, path: "clusters/dev", stack });
  const live = () => liveObjects(env(), scope);

  /**
   * A failed earlier step may have lost objects; sync the same commit again first, so each test
   * measures only its own change.
   */
  const restoreIfIncomplete = async (): Promise<void> => {
    assert.ok(baselineApplied, "the baseline was not applied (see the first test): no objects to move");
    if ([...(await live()).keys()].sort().join() === TRACKED.join()) return;
    await eventually(
      "no namespace identity is terminating",
      async () => {
        const ns = await env().getJson<{ items: Live[] }>("namespaces", "--field-selector", "metadata.name=identity");
        return ns.items.every((n) => n.status?.phase !== "Terminating");
      },
      120_000,
    );
    await sync();
  };

  /** Commits a step that only moves or rewrites manifests, syncs it, and checks that every object kept its uid. */
  const commitAndKeepEveryObject = async (
    step: string,
    subject: string,
  ): Promise<{ result: ReconcileResult; objects: Map<string, Live> }> => {
    await restoreIfIncomplete();
    const before = uids(await live());
    assert.deepEqual(Object.keys(before), TRACKED);
    await repo.commitStep(step, subject);
    const { code, result, stderr } = await sync();
    assert.equal(code, 0, `${result.reason}: ${result.message}\n${stderr.slice(-2000)}`);
    assertNoChurn(result, stderr);
    const objects = await live();
    assert.deepEqual(uids(objects), before, "every object keeps its uid");
    return { result, objects };
  };

  before(async () => {
    // Built while the first tests run; awaited by the upgrade test (the handler only keeps an early failure from being unhandled).
    previousBin = buildPreviousRelease(worktree);
    previousBin.catch(() => undefined);
    charts = await startChartRepo(env().toolchain.bin("helm"), [{ name: "configmaps" }]);
    repo = await ConfigRepo.create(path.join(env().dir, "config-repo"), "identity", { CHART_REPO: charts.url });
  });
  after(async () => {
    await charts?.close();
    await previousBin?.catch(() => undefined);
    if (fs.existsSync(worktree)) await run("git", ["-C", ferryRoot(), "worktree", "remove", "--force", worktree]);
    fs.rmSync(previousDir, { recursive: true, force: true });
  });

  it("applies the baseline, a PersistentVolumeClaim that stays Pending included, without waiting for the claim", async () => {
    await repo.commitStep("step1", "Baseline: every kind of unit");
    const { code, result, stderr } = await sync();
    assert.equal(code, 0, `${result.reason}: ${result.message}\n${stderr.slice(-2000)}`);
    assert.equal(result.changes?.created, TRACKED.length, JSON.stringify(result.objects));
    const objects = await live();
    assert.deepEqual([...objects.keys()].sort(), TRACKED);
    assert.equal(objects.get("PersistentVolumeClaim/identity/data")?.status?.phase, "Pending");
    baselineApplied = true;
  });

  it("keeps a ConfigMap written without a namespace when `namespace: default` is written out", async () => {
    await commitAndKeepEveryObject("step2", "Write out namespace: default");
  });

  it("keeps a Namespace, a PersistentVolumeClaim and a ConfigMap whose manifests move into a Kustomize folder, and updates the ConfigMap in place", async () => {
    const { objects } = await commitAndKeepEveryObject("step3", "Move the Namespace, the claim and the settings into a Kustomize folder");
    assert.equal(objects.get("ConfigMap/identity/settings")?.data?.color, "green");
  });

  it("keeps a Namespace, a PersistentVolumeClaim and a ConfigMap whose manifests move back out of a Kustomize folder", async () => {
    await commitAndKeepEveryObject("step4", "Move them back out of the Kustomize folder");
  });

  it("keeps objects whose manifest moves to another file, or whose file is renamed", async () => {
    await commitAndKeepEveryObject("step5", "Move the settings into app.yaml; rename namespace.yaml and storage.yaml");
  });

  it("keeps a ConfigMap that moves from one Flux Kustomization to another (both prune: true), and updates it in place", async () => {
    const { objects } = await commitAndKeepEveryObject("step6", "Move the moving ConfigMap from apps-a to apps-b");
    assert.equal(objects.get("ConfigMap/identity/moving")?.data?.journey, "arrived in apps-b");
  });

  it("keeps a ConfigMap that moves from a plain manifest into a HelmRelease's chart output, and updates it in place", async () => {
    const { objects } = await commitAndKeepEveryObject("step7", "Render the shared ConfigMap with the extras chart");
    assert.equal(objects.get("ConfigMap/identity/shared")?.data?.owner, "the chart");
  });

  it("updates a HorizontalPodAutoscaler in place when its apiVersion changes from autoscaling/v1 to autoscaling/v2", async () => {
    await commitAndKeepEveryObject("step8", "Write the HPA in autoscaling/v2");
    const hpa = await env().getJson<Live>("horizontalpodautoscalers.autoscaling", "web", "-n", "identity", "--show-managed-fields");
    const applied = hpa.metadata.managedFields?.filter((f) => f.operation === "Apply");
    assert.ok(
      applied?.some((f) => f.apiVersion === "autoscaling/v2"),
      `the HPA was applied in autoscaling/v2: ${JSON.stringify(applied)}`,
    );
  });

  it("refuses a ConfigMap declared in two files, once without a namespace and once with namespace: default, naming both files, and changes nothing", async () => {
    await restoreIfIncomplete();
    const before = fingerprint(await live());
    await repo
      .edit({ "clusters/dev/app-again.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: hello again\n" })
      .commitAll("Declare the app ConfigMap a second time, without a namespace");
    try {
      const { code, result, stderr } = await sync();
      assert.equal(code, 1, `${JSON.stringify(result.objects)}\n${stderr.slice(-2000)}`);
      assert.equal(result.reason, "BuildFailed", result.message);
      const message = result.message ?? "";
      assert.match(message, /defined twice/);
      assert.ok(message.includes("clusters/dev/app.yaml"), message);
      assert.ok(message.includes("clusters/dev/app-again.yaml"), message);
      assert.deepEqual(fingerprint(await live()), before);
    } finally {
      await repo.edit({ "clusters/dev/app-again.yaml": undefined }).commitAll("Declare the app ConfigMap once");
    }
  });

  it("refuses a plan that would delete a live object the desired state still declares, naming the object, its file:line and the state entry's URN, and applies nothing", async () => {
    const e = env();
    await restoreIfIncomplete();
    const good = await sync();
    assert.equal(good.code, 0, good.result.message);
    const before = fingerprint(await live());

    // A stale second state entry for the live ConfigMap default/app, under another URN: the engine
    // would delete it (and with it the live object) because no resource of the program has its URN.
    const file = path.join(e.dir, "identity-state.json");
    await e.pulumi(stack, ["stack", "export", "--file", file]);
    const exported = JSON.parse(fs.readFileSync(file, "utf8")) as {
      deployment: { resources: { urn: string; type: string; outputs?: { metadata?: { name?: string; namespace?: string } } }[] };
    };
    const resources = exported.deployment.resources;
    const i = resources.findIndex(
      (r) =>
        r.type.startsWith("kubernetes:core/v1:ConfigMap") &&
        r.outputs?.metadata?.name === "app" &&
        r.outputs.metadata.namespace === "default",
    );
    assert.ok(i >= 0, `the state holds ConfigMap/default/app: ${resources.map((r) => r.urn).join("\n")}`);
    const entry = resources[i]!;
    const staleUrn = `${entry.urn.slice(0, entry.urn.lastIndexOf("::"))}::core/ConfigMap/default/stale-copy`;
    resources.splice(i + 1, 0, { ...entry, urn: staleUrn });
    fs.writeFileSync(file, JSON.stringify(exported));
    await e.pulumi(stack, ["stack", "import", "--file", file]);

    const { code, result, stderr } = await sync();
    assert.equal(code, 1, `${JSON.stringify(result.objects)}\n${stderr.slice(-2000)}`);
    assert.equal(result.reason, "GuardRefused", result.message);
    const message = result.message ?? "";
    assert.ok(message.includes("ConfigMap/default/app"), message);
    assert.match(message, /clusters\/dev\/app\.yaml:\d+/);
    assert.ok(message.includes(staleUrn), message);
    assert.deepEqual(fingerprint(await live()), before);
  });

  it(`upgrades a stack synced by the previous release (${PREVIOUS_RELEASE}) with no Git change: nothing is created or deleted`, async () => {
    const e = env();
    const upgradeScope: Scope = { namespace: "upgrade", defaultConfigMaps: ["upgrade-legacy"] };
    const upgradeRepo = await ConfigRepo.create(path.join(e.dir, "upgrade-repo"), "identity", { CHART_REPO: charts!.url });
    await upgradeRepo.commitStep(
      "upgrade",
      "A Namespace, a ConfigMap without a namespace, a Deployment, a Kustomize folder and a HelmRelease",
    );
    const options = { repo: upgradeRepo.dir, path: "clusters/upgrade", stack: "upgrade" };

    const old = await ferrySync(e, { ...options, bin: await (previousBin ?? buildPreviousRelease(worktree)) });
    assert.equal(old.code, 0, `the previous release failed: ${old.result.reason}: ${old.result.message}\n${old.stderr.slice(-2000)}`);
    const before = uids(await liveObjects(e, upgradeScope));
    assert.deepEqual(Object.keys(before), [
      "ConfigMap/default/upgrade-legacy",
      "ConfigMap/upgrade/addons-config",
      "ConfigMap/upgrade/kustomized-settings",
      "Deployment/upgrade/web",
      "Namespace/upgrade",
    ]);

    const { code, result, stderr } = await ferrySync(e, options);
    assert.equal(code, 0, `${result.reason}: ${result.message}\n${stderr.slice(-2000)}`);
    assert.equal(result.revision?.sha, old.result.revision?.sha);
    assertNoChurn(result, stderr);
    assert.deepEqual(uids(await liveObjects(e, upgradeScope)), before);
  });
});
