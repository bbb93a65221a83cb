import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { EMPTY_OVERLAY, KustomizeOverlay } from "../../src/desired-state/kustomize-fields";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import { KubeObject } from "../../src/desired-state/object-id";
import { sourcePolicy } from "../../src/desired-state/source-policy";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { applyOverlay, confinedOverlay, overlayKustomization } from "../../src/render/kustomize-overlay";
import { localRenderTools } from "../../src/render/render-tools";
import { replacingDefaults } from "../../src/render/values-files";
import { KUBERNETES_VERSION } from "../../src/toolchain/components";
import { defaultToolchainOptions } from "../../src/toolchain/install";
import { GitRef } from "../../src/desired-state/git-ref";
import { strictBuild } from "../helpers/assertions";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

/** The toolchain's kubectl when it is installed (`ferry toolchain install`); the Kustomize runs are skipped otherwise. */
const kubectl = path.join(defaultToolchainOptions().dir, `kubectl-${KUBERNETES_VERSION}`, "bin", "kubectl");
const noKubectl = fs.existsSync(kubectl) ? false : `no kubectl at ${kubectl}`;

/** Fake render tools whose overlays run through the real `kubectl kustomize`. */
function toolsWithKustomize(charts: ConstructorParameters<typeof FakeRenderTools>[0] = {}, live: KubeObject[] = []): FakeRenderTools {
  const tools = new FakeRenderTools(charts, live);
  const real = localRenderTools({ helm: "helm-unused", kubectl, cacheDir: tempDir(), policy: sourcePolicy() });
  tools.overlayBuilder = (r) => real.kustomizeOverlay(r);
  return tools;
}

describe("overlayKustomization", () => {
  it("writes the base, components, patches, images, prefix/suffix and common metadata as kustomize-controller does", () => {
    const overlay: KustomizeOverlay = {
      patches: [{ patch: "- op: remove\n  path: /a\n", target: { kind: "Service", name: "(a|b)" } }, { patch: "kind: X\n" }],
      images: [{ name: "nginx", newTag: "1.27" }],
      components: ["/abs/ignored"],
      ignoreMissingComponents: false,
      namePrefix: "p-",
      nameSuffix: "-s",
      commonMetadata: { labels: { on: "yes" }, annotations: { y: "n" } },
    };
    assert.deepEqual(JSON.parse(overlayKustomization(overlay, ["../checkout/components/a"])), {
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: ["base.yaml"],
      components: ["../checkout/components/a"],
      patches: [{ patch: "- op: remove\n  path: /a\n", target: { kind: "Service", name: "(a|b)" } }, { patch: "kind: X\n" }],
      images: [{ name: "nginx", newTag: "1.27" }],
      namePrefix: "p-",
      nameSuffix: "-s",
      commonAnnotations: { y: "n" },
      labels: [{ pairs: { on: "yes" }, includeSelectors: false }],
    });
  });

  it("runs nothing for an empty overlay", async () => {
    const out = await applyOverlay({ unit: "u", base: "kind: A\n", overlay: EMPTY_OVERLAY }, undefined, () =>
      Promise.reject(new Error("ran")),
    );
    assert.equal(out, "kind: A\n");
  });

  it("resolves components inside the checkout, skips missing ones only when asked, and refuses those that leave it", () => {
    const repo = tempDir();
    writeFiles(repo, {
      "components/a/kustomization.yaml": "kind: Component\n",
      "components/evil/kustomization.yaml": "kind: Component\nresources: [../../../x]\n",
    });
    const folder = { checkout: repo, dir: "apps", allowRemoteBases: false };
    fs.mkdirSync(path.join(repo, "apps"));
    const overlay = (components: string[], ignoreMissingComponents = false) => ({ ...EMPTY_OVERLAY, components, ignoreMissingComponents });
    assert.deepEqual(confinedOverlay(overlay(["../components/a"]), folder).components, [path.join(fs.realpathSync(repo), "components/a")]);
    assert.deepEqual(confinedOverlay(overlay(["../components/missing"], true), folder).components, []);
    assert.throws(
      () => confinedOverlay(overlay(["../components/missing"]), folder),
      /component "\.\.\/components\/missing": folder "components\/missing" does not exist/,
    );
    assert.throws(
      () => confinedOverlay(overlay(["../../outside"], true), folder),
      /component "\.\.\/\.\.\/outside": path "\.\.\/outside" leaves the checkout/,
    );
    assert.throws(() => confinedOverlay(overlay(["../components/evil"]), folder), /outside the checkout/);
  });
});

describe("Flux Kustomization fields through kubectl kustomize", { skip: noKubectl }, () => {
  it("applies patches (strategic merge and JSON 6902 with regex targets), images, components, namePrefix and commonMetadata", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "clusters/dev/apps.yaml": [
        "apiVersion: kustomize.toolkit.fluxcd.io/v1beta2",
        "kind: Kustomization",
        "metadata: {name: apps, namespace: flux-system}",
        "spec:",
        "  interval: 10m",
        "  path: ./apps",
        "  prune: true",
        "  wait: true",
        "  namePrefix: prod-",
        "  commonMetadata: {labels: {team: web}, annotations: {owner: ops}}",
        "  images: [{name: nginx, newTag: '1.27'}]",
        "  components: [../components/replicas]",
        "  patchesStrategicMerge:",
        "    - {apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {mode: strategic}}",
        "  patches:",
        "    - target: {kind: Deployment, name: '(web|api)'}",
        "      patch: |",
        "        - op: add",
        "          path: /metadata/annotations",
        "          value: {patched: json6902}",
        "  postBuild: {substitute: {level: debug}}",
      ].join("\n"),
      "apps/deploy.yaml":
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx:1.25}]}\n",
      "apps/cm.yaml":
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {mode: plain, level: '${level}'}\n",
      "components/replicas/kustomization.yaml":
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - target: {kind: Deployment}\n    patch: |\n      - op: add\n        path: /spec/replicas\n        value: 3\n",
    });
    const tools = toolsWithKustomize();
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "clusters/dev" }), tools);
    const objects = state.units.flatMap((u) => u.objects.map((o) => o.object));
    const deploy = objects.find((o) => o.kind === "Deployment")!;
    const cm = objects.find((o) => o.kind === "ConfigMap")!;
    assert.equal(deploy.metadata.name, "prod-web");
    assert.deepEqual(deploy.metadata.labels, { team: "web" });
    assert.deepEqual(deploy.metadata.annotations, { owner: "ops", patched: "json6902" });
    const spec = deploy.spec as { replicas: number; selector: unknown; template: { spec: { containers: { image: string }[] } } };
    assert.equal(spec.replicas, 3);
    assert.deepEqual(spec.selector, { matchLabels: { app: "web" } }, "commonMetadata labels stay off selectors");
    assert.equal(spec.template.spec.containers[0]?.image, "nginx:1.27");
    assert.equal(cm.metadata.name, "prod-settings");
    // Substitution runs on Kustomize's output, after the patches.
    assert.deepEqual(cm.data, { mode: "strategic", level: "debug" });
    assert.equal(tools.overlayRequests[0]?.unit, "Kustomization/flux-system/apps");
  });

  it("names the Kustomization when a patch matches nothing", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/k.yaml":
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\nspec:\n  path: ./apps\n  prune: true\n  patches: [{patch: '{apiVersion: v1, kind: ConfigMap, metadata: {name: nothere}, data: {a: b}}'}]\n",
      "apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n",
    });
    await assert.rejects(
      strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), toolsWithKustomize())),
      /Kustomization\/flux-system\/apps: no resource matches strategic merge patch "ConfigMap\.v1\.\[noGrp\]\/nothere/,
    );
  });
});

describe("HelmRelease postRenderers and valuesFiles", { skip: noKubectl }, () => {
  const repoSource =
    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts, namespace: apps}\nspec: {url: http://charts.invalid}\n";
  const chart = () =>
    [
      "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: cert-manager-webhook}\nwebhooks: []",
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cert-manager, namespace: apps}\nspec:\n  selector: {matchLabels: {app: cm}}\n  template:\n    metadata: {labels: {app: cm}}\n    spec: {containers: [{name: c, image: quay.io/jetstack/cert-manager-controller:v1}]}",
    ].join("\n---\n");

  it("deletes and patches Helm's output as the corpus' cert-manager post-renderer does, then applies commonMetadata", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": repoSource,
      "c/release.yaml": [
        "apiVersion: helm.toolkit.fluxcd.io/v2",
        "kind: HelmRelease",
        "metadata: {name: cert-manager, namespace: apps}",
        "spec:",
        "  chart: {spec: {chart: cert-manager, sourceRef: {kind: HelmRepository, name: charts}}}",
        "  install: {remediation: {retries: 3}}",
        "  commonMetadata: {labels: {owner: platform}}",
        "  postRenderers:",
        "    - kustomize:",
        "        patches:",
        "          - patch: |",
        "              $patch: delete",
        "              apiVersion: admissionregistration.k8s.io/v1",
        "              kind: ValidatingWebhookConfiguration",
        "              metadata:",
        "                name: cert-manager-webhook",
        "        images: [{name: quay.io/jetstack/cert-manager-controller, newName: registry.local/cm, newTag: v2}]",
      ].join("\n"),
    });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), toolsWithKustomize({ "cert-manager": chart }));
    const objects = state.units.flatMap((u) => u.objects.map((o) => o.object));
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["Deployment"],
    );
    const d = objects[0]!;
    assert.deepEqual(d.metadata.labels, { owner: "platform" });
    assert.equal(
      (d.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]?.image,
      "registry.local/cm:v2",
    );
  });

  it("withholds Kustomize's message when the release's values come from a Secret", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": repoSource,
      "c/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: v, namespace: apps}\nstringData: {values.yaml: 'token: hunter22'}\n",
      "c/release.yaml":
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: cm, namespace: apps}\nspec:\n  chart: {spec: {chart: cert-manager, sourceRef: {kind: HelmRepository, name: charts}}}\n  valuesFrom: [{kind: Secret, name: v}]\n  postRenderers: [{kustomize: {patches: [{patch: '{apiVersion: v1, kind: Secret, metadata: {name: nothere}}'}]}}]\n",
    });
    await assert.rejects(
      strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), toolsWithKustomize({ "cert-manager": chart }))),
      (err: Error) => /spec\.postRenderers\[0\] failed: Kustomize's message is withheld/.test(err.message) && !/nothere/.test(err.message),
    );
  });

  it("replaces a git chart's values.yaml with its valuesFiles, merged in order", async () => {
    const charts = tempDir();
    writeFiles(charts, {
      "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
      "charts/app/values.yaml": "replicas: 1\nimage: {repository: nginx, tag: '1.25'}\ndebug: true\n",
      "charts/app/values-prod.yaml": "replicas: 3\nimage: {tag: '1.27'}\n",
    });
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml":
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: charts, namespace: apps}\nspec: {url: https://git.example.com/charts, ref: {branch: main}}\n",
      "c/release.yaml":
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: app, namespace: apps}\nspec:\n  chart:\n    spec:\n      chart: ./charts/app\n      sourceRef: {kind: GitRepository, name: charts}\n      valuesFiles: [./charts/app/values-prod.yaml, ./charts/app/values-missing.yaml]\n      ignoreMissingValuesFiles: true\n  values: {extra: 1}\n",
    });
    class GitTools extends FakeRenderTools {
      override checkoutGit(_url: string, _ref: GitRef): Promise<string> {
        return Promise.resolve(charts);
      }
    }
    const tools = new GitTools({ [path.join(charts, "charts/app")]: () => "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n" });
    await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    // values.yaml's `replicas`, `image.repository` and `debug` are gone (null deletes a chart default), as in Flux.
    assert.deepEqual(tools.helmRequests[0]?.values, { replicas: 3, image: { repository: null, tag: "1.27" }, debug: null, extra: 1 });
  });
});

describe("replacingDefaults", () => {
  it("nulls every default the replacement does not set, deeply, and keeps the replacement", () => {
    assert.deepEqual(replacingDefaults({ a: 1, b: { c: 1, d: 2 }, e: [1] }, { b: { c: 5 }, f: "x" }), {
      a: null,
      b: { c: 5, d: null },
      e: null,
      f: "x",
    });
  });
});
