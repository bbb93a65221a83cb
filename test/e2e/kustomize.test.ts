// End to end: a Kustomize overlay and Flux Kustomizations with dependsOn, in one sync.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { simpleGit } from "simple-git";
import { describe, it } from "node:test";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";

interface K8sObject {
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: { replicas?: number };
}

describe("Kustomize and Flux Kustomizations", () => {
  const env = useE2E();

  it("builds an overlay and follows Kustomizations in dependsOn order, in one sync", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "kustomize");
    await repo.commitStep("step1", "Add overlay and Kustomizations");
    const { code, result, stderr } = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(code, 0, `${result.message}\n${stderr}`);

    // The overlay: namespace, name prefix and patch applied.
    const echo = await e.getJson<K8sObject>("deployment", "dev-echo", "-n", "kustomized");
    assert.equal(echo.spec?.replicas, 3);
    // The apps Kustomization: targetNamespace and postBuild substitution (with a default).
    const cm = await e.getJson<K8sObject>("configmap", "podinfo-settings", "-n", "podinfo");
    assert.deepEqual(cm.data, { greeting: "hello from postBuild", unset: "a default" });
    // The namespaces from the infra Kustomization came first, or the run would have failed.
    assert.ok(await e.exists("namespace", "podinfo"));
    assert.equal(result.changes?.created, 4, JSON.stringify(result.objects));
  });

  it("applies a CRD and a custom resource of it from one commit in one run", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "crd-repo"), "kustomize");
    await repo
      .edit({
        "clusters/crd/gadget.yaml":
          "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: first\n  namespace: default\nspec:\n  color: red\n",
        "clusters/crd/z-crd.yaml": [
          "apiVersion: apiextensions.k8s.io/v1",
          "kind: CustomResourceDefinition",
          "metadata: {name: gadgets.example.com}",
          "spec:",
          "  group: example.com",
          "  scope: Namespaced",
          "  names: {kind: Gadget, plural: gadgets, singular: gadget}",
          "  versions:",
          "    - name: v1",
          "      served: true",
          "      storage: true",
          "      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}",
          "",
        ].join("\n"),
      })
      .commitAll("A CRD and its first resource");
    const { code, result } = await e.sync({ repo: repo.dir, path: "clusters/crd", stack: "crd" });
    assert.equal(code, 0, result.message);
    assert.equal(result.changes?.created, 2);
    assert.ok(await e.exists("gadgets.example.com", "first", "-n", "default"));
  });

  it("syncs a config repo scaffolded by ferry init (one folder per cluster, shared folders)", async () => {
    const e = env();
    const dir = path.join(e.dir, "scaffolded");
    const init = await e.ferry(["init", dir, "--cluster", "alpha", "--cluster", "beta"]);
    assert.equal(init.code, 0, init.stderr);
    assert.ok(fs.existsSync(path.join(dir, "clusters", "beta", "apps.yaml")));
    const git = simpleGit(dir);
    await git.addConfig("user.name", "Alice Example").addConfig("user.email", "alice@example.com");
    await git.add(".").commit("Scaffold");
    const { code, result } = await e.sync({ repo: dir, path: "clusters/alpha", stack: "alpha" });
    assert.equal(code, 0, result.message);
    assert.equal((await e.getJson<K8sObject>("configmap", "hello", "-n", "apps")).data?.message, "hello from git");
  });

  it("applies a Flux Kustomization's patches, images, components, namePrefix, commonMetadata and substituteFrom", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "fields-repo"), "kustomize");
    await repo
      .edit({
        // The shape of the Flux example's infrastructure.yaml: an inline JSON 6902 patch with a target.
        "c/k.yaml": [
          "apiVersion: kustomize.toolkit.fluxcd.io/v1",
          "kind: Kustomization",
          "metadata: {name: web, namespace: flux-system}",
          "spec:",
          "  interval: 1h",
          "  retryInterval: 1m",
          "  timeout: 5m",
          "  wait: true",
          "  path: ./web",
          "  prune: true",
          "  namePrefix: prod-",
          "  commonMetadata: {labels: {team: web}}",
          "  images: [{name: registry.local/web, newTag: '2.0'}]",
          "  components: [../components/settings]",
          "  patches:",
          "    - patch: |",
          "        - op: replace",
          "          path: /spec/replicas",
          "          value: 2",
          "      target: {kind: Deployment, name: web}",
          "  postBuild:",
          "    substituteFrom: [{kind: ConfigMap, name: web-vars}]",
          "",
        ].join("\n"),
        "c/vars.yaml":
          "apiVersion: v1\nkind: Namespace\nmetadata: {name: flux-system}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-vars, namespace: flux-system}\ndata: {env: production}\n",
        "web/deploy.yaml": [
          "apiVersion: apps/v1",
          "kind: Deployment",
          "metadata: {name: web, namespace: default}",
          "spec:",
          "  replicas: 1",
          "  selector: {matchLabels: {app: web}}",
          "  template:",
          "    metadata: {labels: {app: web}}",
          "    spec: {containers: [{name: web, image: 'registry.local/web:1.0'}]}",
          "",
        ].join("\n"),
        "web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-settings, namespace: default}\ndata: {env: '${env}'}\n",
        "components/settings/kustomization.yaml": [
          "apiVersion: kustomize.config.k8s.io/v1alpha1",
          "kind: Component",
          "patches:",
          "  - patch: |",
          "      apiVersion: v1",
          "      kind: ConfigMap",
          "      metadata: {name: web-settings, namespace: default}",
          "      data: {component: 'on'}",
          "",
        ].join("\n"),
      })
      .commitAll("A Kustomization with patches, images and a component");
    const { code, result } = await e.sync({ repo: repo.dir, path: "c", stack: "fields" });
    assert.equal(code, 0, result.message);
    const deploy = await e.getJson<
      K8sObject & { metadata: { labels?: Record<string, string> }; spec: { template: { spec: { containers: { image: string }[] } } } }
    >("deployment", "prod-web", "-n", "default");
    assert.equal(deploy.spec.replicas, 2);
    assert.equal(deploy.spec.template.spec.containers[0]?.image, "registry.local/web:2.0");
    assert.equal(deploy.metadata.labels?.team, "web");
    const cm = await e.getJson<K8sObject>("configmap", "prod-web-settings", "-n", "default");
    assert.deepEqual(cm.data, { env: "production", component: "on" });
  });

  it("leaves the objects of a suspended Kustomization as they are", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "suspend-repo"), "kustomize");
    const kustomization = (suspend: boolean) =>
      `apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: app, namespace: flux-system}\nspec: {path: ./app, prune: true, suspend: ${suspend}}\n`;
    const cm = (v: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: suspended-app, namespace: default}\ndata: {version: "${v}"}\n`;
    await repo.edit({ "c/k.yaml": kustomization(false), "app/cm.yaml": cm("1") }).commitAll("App v1");
    assert.equal((await e.sync({ repo: repo.dir, path: "c", stack: "suspend" })).code, 0);
    await repo.edit({ "c/k.yaml": kustomization(true), "app/cm.yaml": cm("2") }).commitAll("App v2, suspended");
    const { code, result } = await e.sync({ repo: repo.dir, path: "c", stack: "suspend" });
    assert.equal(code, 0, result.message);
    assert.equal((await e.getJson<K8sObject>("configmap", "suspended-app", "-n", "default")).data?.version, "1");
  });

  it("skips fluxcd.io/ignore objects and never prunes sync_only ones", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "ignore-repo"), "kustomize");
    const cm = (name: string, ignore?: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: default\n${ignore ? `  annotations:\n    fluxcd.io/ignore: "${ignore}"\n` : ""}`;
    await repo
      .edit({ "c/kept.yaml": cm("kept"), "c/skipped.yaml": cm("skipped", "true"), "c/sync-only.yaml": cm("sync-only", "sync_only") })
      .commitAll("Annotated objects");
    const first = await e.sync({ repo: repo.dir, path: "c", stack: "ignore" });
    assert.equal(first.code, 0, first.result.message);
    assert.equal(await e.exists("configmap", "skipped", "-n", "default"), false);
    assert.ok(await e.exists("configmap", "sync-only", "-n", "default"));

    await repo.edit({ "c/sync-only.yaml": undefined }).commitAll("Drop the sync_only object from Git");
    const second = await e.sync({ repo: repo.dir, path: "c", stack: "ignore" });
    assert.equal(second.code, 0, second.result.message);
    assert.ok(await e.exists("configmap", "sync-only", "-n", "default"), "a sync_only object is never deleted");
  });

  it("runs Argo CD hooks (a generateName PreSync Job, Sync hooks) around the update and applies sync waves in order; hooks are not managed and a second sync changes nothing", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "argo-repo"), "argo-hooks");
    await repo.commitStep("step1", "Argo CD sync-waves shape");
    const sync = () => e.sync({ repo: repo.dir, path: "clusters/argo", stack: "argo" });
    const first = await sync();
    assert.equal(first.code, 0, `${first.result.message}\n${first.stderr}`);

    // Hooks are not managed objects, and the Skip object is not applied at all.
    assert.deepEqual(first.result.objects.map((o) => o.object).sort(), [
      "ConfigMap/argo-demo/frontend",
      "Namespace/argo-demo",
      "ReplicaSet/argo-demo/backend",
      "Service/argo-demo/backend",
      "Service/argo-demo/frontend",
    ]);
    assert.equal(await e.exists("configmap", "skipped", "-n", "argo-demo"), false);
    // The PreSync Job (generateName, HookSucceeded) ran and was deleted under the name the server gave it;
    // the Sync hooks ran to completion and stay (BeforeHookCreation); the PreSync ConfigMap stays once.
    const jobs = await e.getJson<{ items: { metadata: { name: string; uid: string }; status?: { succeeded?: number } }[] }>(
      "jobs",
      "-n",
      "argo-demo",
    );
    assert.deepEqual(jobs.items.map((j) => `${j.metadata.name} ${j.status?.succeeded}`).sort(), ["maint-page-down 1", "maint-page-up 1"]);
    const markers = async () =>
      (await e.getJson<{ items: { metadata: { name: string; labels?: Record<string, string> } }[] }>("configmaps", "-n", "argo-demo")).items
        .filter((c) => c.metadata.name.startsWith("pre-marker-"))
        .map((c) => c.metadata);
    const [marker, ...more] = await markers();
    assert.ok(marker && more.length === 0, "one instance of the generateName PreSync ConfigMap");
    assert.match(marker.labels?.["ferry.dev/hook"] ?? "", /^h-[0-9a-f]{40}$/);

    // Wave 2 waits for wave 0 of the same file: the engine's state records the dependency.
    const exported = JSON.parse(await e.pulumi("argo", ["stack", "export"])) as {
      deployment: { resources?: { urn: string; type: string; dependencies?: string[]; outputs?: { metadata?: { name?: string } } }[] };
    };
    const resources = exported.deployment.resources ?? [];
    const urn = (type: string, name: string) => resources.find((r) => r.type.endsWith(type) && r.outputs?.metadata?.name === name)?.urn;
    const frontend = resources.find((r) => r.urn === urn(":ConfigMap", "frontend"));
    assert.ok(frontend?.dependencies?.includes(urn(":ReplicaSet", "backend") ?? "-"), JSON.stringify(frontend));
    assert.ok(frontend?.dependencies?.includes(urn(":Service", "backend") ?? "-"), JSON.stringify(frontend));

    // Converged: a second sync changes nothing and runs no hook.
    const upUid = jobs.items.find((j) => j.metadata.name === "maint-page-up")?.metadata.uid;
    const second = await sync();
    assert.equal(second.code, 0, second.result.message);
    assert.deepEqual(second.result.objects, []);
    assert.equal(second.result.changes?.created, 0);
    assert.equal(second.result.changes?.updated, 0);
    assert.equal((await e.getJson<{ metadata: { uid: string } }>("job", "maint-page-up", "-n", "argo-demo")).metadata.uid, upUid);

    // A change to the unit runs its hooks again: the earlier generateName instance is replaced, found by its label.
    await repo.commitStep("step2", "Frontend version 2");
    const third = await sync();
    assert.equal(third.code, 0, third.result.message);
    assert.notEqual((await e.getJson<{ metadata: { uid: string } }>("job", "maint-page-up", "-n", "argo-demo")).metadata.uid, upUid);
    const after = await markers();
    assert.equal(after.length, 1, JSON.stringify(after));
    assert.notEqual(after[0]!.name, marker.name);
  });
});
