import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { DesiredState, unitKey } from "../../src/desired-state/desired-state";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import { DesiredStateError } from "../../src/desired-state/manifest-error";
import { buildDesiredState, HelmTemplateRequest } from "../../src/render/build-desired-state";
import { strictBuild } from "../helpers/assertions";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const kustomization = (name: string, spec: string, namespace = "flux-system") =>
  `apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n  interval: 10m\n${spec}`;
const helmRepository = (name: string, namespace?: string) =>
  `apiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: HelmRepository\nmetadata: {name: ${name}${namespace ? `, namespace: ${namespace}` : ""}}\nspec: {url: http://charts.invalid/${name}}\n`;
const helmRelease = (name: string, namespace: string | undefined, spec: string, apiVersion = "helm.toolkit.fluxcd.io/v2beta1") =>
  `apiVersion: ${apiVersion}\nkind: HelmRelease\nmetadata: {name: ${name}${namespace ? `, namespace: ${namespace}` : ""}}\nspec:\n${spec}`;
const configMap = (name: string, data = "k: v") => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {${data}}\n`;
const chartConfigMap = (r: HelmTemplateRequest) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${r.releaseName}}\ndata: {greeting: "${String(r.values.greeting ?? "")}"}\n`;

/** `unit -> Kind/namespace/name` for every object, sorted. */
function inventory(state: DesiredState): string[] {
  return state.units.flatMap((u) => u.objects.map((o) => `${unitKey(u)} ${o.id.kind}/${o.id.namespace ?? ""}/${o.id.name}`)).sort();
}

async function buildError(run: Promise<DesiredState>): Promise<string> {
  try {
    await strictBuild(run);
  } catch (err) {
    assert.ok(err instanceof DesiredStateError, String(err));
    return err.message;
  }
  assert.fail("the build succeeded");
}

describe("buildDesiredState: units isolated like Flux's", () => {
  it("gives the units that build, and each unit that does not with its own problems (nothing it would yield is taken)", async () => {
    const repo = tempDir();
    const chart = (name: string) => `  chart: {spec: {chart: ${name}, sourceRef: {kind: HelmRepository, name: charts}}}\n`;
    writeFiles(repo, {
      "c/sources.yaml": helmRepository("charts", "flux-system"),
      "c/good.yaml": helmRelease("good", "flux-system", chart("good")),
      "c/broken.yaml": helmRelease("broken", "flux-system", chart("missing")),
      "c/after.yaml": helmRelease("after", "flux-system", chart("good") + "  dependsOn: [{name: broken}]\n"),
      "c/apps.yaml": kustomization("apps", "  path: ./apps\n  prune: true\n"),
      // The Kustomization's path has a broken file next to a HelmRelease: the whole Kustomization fails.
      "apps/ok.yaml": helmRelease("nested", "flux-system", chart("good")),
      "apps/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: [unclosed\n",
    });
    const tools = new FakeRenderTools({ good: chartConfigMap });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    assert.deepEqual(inventory(state), [
      "HelmRelease/flux-system/after ConfigMap/flux-system/after",
      "HelmRelease/flux-system/good ConfigMap/flux-system/good",
    ]);
    // The dependent still names what it waits for: the pipeline holds it back with the failed one.
    assert.deepEqual(state.units.find((u) => u.name === "flux-system/after")?.dependsOn, ["HelmRelease/flux-system/broken"]);
    assert.deepEqual(
      state.failed?.map((f) => [unitKey(f), f.location.file]),
      [
        ["Kustomization/flux-system/apps", "c/apps.yaml"],
        ["HelmRelease/flux-system/broken", "c/broken.yaml"],
      ],
    );
    assert.match(state.failed?.[0]?.errors[0]?.message ?? "", /apps\/bad\.yaml:5:1 .*invalid YAML/);
    assert.match(state.failed?.[1]?.errors[0]?.message ?? "", /HelmRelease\/flux-system\/broken/);
  });

  it("fails the whole build when no unit builds", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/sources.yaml": helmRepository("charts", "flux-system"),
      "c/broken.yaml": helmRelease(
        "broken",
        "flux-system",
        "  chart: {spec: {chart: missing, sourceRef: {kind: HelmRepository, name: charts}}}\n",
      ),
    });
    const message = await buildError(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools()));
    assert.match(message, /HelmRelease\/flux-system\/broken/);
  });
});

describe("buildDesiredState: Flux objects wherever they are found", () => {
  it("renders a HelmRelease two Kustomization levels down, from a HelmRepository another Kustomization declares", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "clusters/prod/infrastructure.yaml": kustomization("infrastructure", "  path: ./infrastructure\n  prune: false\n"),
      "clusters/prod/apps.yaml": kustomization(
        "apps",
        "  dependsOn: [{name: infrastructure}]\n  path: ./apps/production\n  prune: true\n  targetNamespace: web\n" +
          "  postBuild: {substitute: {greeting: hello}}\n",
      ),
      // infrastructure: a source for everyone, and a Kustomization one level further down.
      "infrastructure/sources/podinfo.yaml": helmRepository("podinfo", "web"),
      "infrastructure/configs.yaml": kustomization("configs", "  path: ./infrastructure-configs\n  prune: true\n"),
      "infrastructure-configs/cache.yaml":
        helmRelease("cache", "web", "  chart: {spec: {chart: cache, sourceRef: {kind: HelmRepository, name: podinfo}}}\n") +
        "---\n" +
        configMap("settings"),
      // apps/production is a Kustomize folder: its output holds the HelmRelease (no namespace: targetNamespace sets it).
      "apps/production/kustomization.yaml": "resources: []\n",
    });
    const tools = new FakeRenderTools({ podinfo: chartConfigMap, cache: chartConfigMap }, [], {
      "apps/production": helmRelease(
        "podinfo",
        undefined,
        "  chart: {spec: {chart: podinfo, sourceRef: {kind: HelmRepository, name: podinfo}}}\n  values: {greeting: ${greeting}}\n",
      ),
    });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "clusters/prod" }), tools);

    assert.deepEqual(inventory(state), [
      "HelmRelease/web/cache ConfigMap/web/cache",
      "HelmRelease/web/podinfo ConfigMap/web/podinfo",
      "Kustomization/flux-system/configs ConfigMap/default/settings",
    ]);
    // The HelmRepository another Kustomization declared; substitution before the HelmRelease was read.
    const podinfo = tools.helmRequests.find((r) => r.releaseName === "podinfo");
    assert.equal(podinfo?.repo, "http://charts.invalid/podinfo");
    assert.equal(podinfo?.namespace, "web");
    assert.deepEqual(podinfo?.values, { greeting: "hello" });
    // apps waits for infrastructure and everything it yields, however deep.
    const unit = (key: string) => state.units.find((u) => unitKey(u) === key);
    assert.deepEqual(unit("HelmRelease/web/podinfo")?.dependsOn, [
      "Kustomization/flux-system/infrastructure",
      "Kustomization/flux-system/configs",
      "HelmRelease/web/cache",
    ]);
    // prune: false on infrastructure holds for what its Kustomizations and HelmReleases make.
    assert.equal(unit("HelmRelease/web/cache")?.objects[0]?.prune, false);
    assert.equal(unit("Kustomization/flux-system/configs")?.objects[0]?.prune, false);
    assert.equal(unit("HelmRelease/web/podinfo")?.objects[0]?.prune, true);
  });

  it("accepts every served Flux API version in a Kustomize build", async () => {
    const repo = tempDir();
    writeFiles(repo, { "c/k/kustomization.yaml": "resources: []\n" });
    const spec = "  chart: {spec: {chart: app, sourceRef: {kind: HelmRepository, name: charts}}}\n";
    const out = [
      helmRepository("charts", "a").replace("v1beta2", "v1beta1"),
      helmRepository("charts", "b").replace("v1beta2", "v1"),
      helmRelease("one", "a", spec, "helm.toolkit.fluxcd.io/v2beta1"),
      helmRelease("two", "b", spec, "helm.toolkit.fluxcd.io/v2beta2"),
      helmRelease("three", "b", spec, "helm.toolkit.fluxcd.io/v2"),
    ].join("---\n");
    const tools = new FakeRenderTools({ app: chartConfigMap }, [], { "c/k": out });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    assert.deepEqual(
      state.units.map((u) => unitKey(u)),
      ["Kustomize/c/k", "HelmRelease/a/one", "HelmRelease/b/two", "HelmRelease/b/three"],
    );
  });

  it("names the chain of a Kustomization cycle", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/a.yaml": kustomization("a", "  path: ./a\n  prune: true\n"),
      "a/b.yaml": kustomization("b", "  path: ./b\n  prune: true\n"),
      "b/a.yaml": kustomization("a", "  path: ./a\n  prune: true\n"),
    });
    const message = await buildError(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools()));
    assert.match(
      message,
      /b\/a\.yaml:1.*Kustomization cycle: Kustomization\/flux-system\/a -> Kustomization\/flux-system\/b -> Kustomization\/flux-system\/a/,
    );
  });

  it("treats the bootstrap flux-system Kustomization as the cluster folder and its GitRepository as the config repo", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "clusters/x/flux-system/gotk-components.yaml": configMap("flux-controllers"),
      "clusters/x/flux-system/gotk-sync.yaml":
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: flux-system, namespace: flux-system}\n" +
        "spec: {interval: 1m, ref: {branch: main}, url: ssh://git@github.com/someone/fleet}\n---\n" +
        kustomization("flux-system", "  path: ./clusters/x\n  prune: true\n  sourceRef: {kind: GitRepository, name: flux-system}\n"),
      "clusters/x/apps.yaml": kustomization(
        "apps",
        "  dependsOn: [{name: flux-system}]\n  path: ./apps\n  prune: true\n  sourceRef: {kind: GitRepository, name: flux-system}\n",
      ),
      "apps/app.yaml": configMap("app"),
    });
    const tools = new FakeRenderTools();
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "clusters/x" }), tools);
    assert.deepEqual(inventory(state), [
      "Kustomization/flux-system/apps ConfigMap/default/app",
      "ManifestFile/clusters/x/flux-system/gotk-components.yaml ConfigMap/default/flux-controllers",
    ]);
    assert.deepEqual(tools.gitRequests, []);
  });

  it("reads a Kustomization's path from the GitRepository its sourceRef names, at its own URL and ref", async () => {
    const repo = tempDir();
    const other = tempDir();
    writeFiles(other, { "deploy/app.yaml": configMap("from-other-repo") });
    writeFiles(repo, {
      "c/sources.yaml":
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: team, namespace: flux-system}\n" +
        "spec: {url: https://git.example.com/team.git, ref: {tag: v1.2.0}}\n",
      "c/team.yaml": kustomization("team", "  path: ./deploy\n  prune: true\n  sourceRef: {kind: GitRepository, name: team}\n"),
      // The same path in the config repo must not be read.
      "deploy/app.yaml": configMap("from-config-repo"),
    });
    const tools = new FakeRenderTools();
    tools.gitCheckouts["https://git.example.com/team.git"] = other;
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    assert.deepEqual(inventory(state), ["Kustomization/flux-system/team ConfigMap/default/from-other-repo"]);
    assert.deepEqual(
      tools.gitRequests.map((r) => ({ url: r.url, ref: r.ref, unit: r.request?.unit })),
      [{ url: "https://git.example.com/team.git", ref: { kind: "tag", tag: "v1.2.0" }, unit: "Kustomization/flux-system/team" }],
    );
  });

  it("confines a Kustomization's path to its own source's checkout", async () => {
    const repo = tempDir();
    const other = tempDir();
    writeFiles(repo, {
      "c/sources.yaml":
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: team, namespace: flux-system}\n" +
        "spec: {url: https://git.example.com/team.git}\n",
      "c/team.yaml": kustomization("team", "  path: ./deploy\n  prune: true\n  sourceRef: {kind: GitRepository, name: team}\n"),
      "c/secret.yaml": configMap("config-repo-only"),
    });
    fs.mkdirSync(path.join(other, "deploy"));
    fs.symlinkSync(path.join(repo, "c/secret.yaml"), path.join(other, "deploy/stolen.yaml"));
    const tools = new FakeRenderTools();
    tools.gitCheckouts["https://git.example.com/team.git"] = other;
    const message = await buildError(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools));
    assert.match(message, /deploy\/stolen\.yaml.*outside the checkout/);
  });

  it("carries suspend from a Kustomization to the HelmReleases it yields, and refuses settings on the bootstrap Kustomization", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": helmRepository("charts", "flux-system"),
      "c/apps.yaml": kustomization("apps", "  path: ./apps\n  prune: true\n  suspend: true\n"),
      "apps/app.yaml": helmRelease(
        "app",
        "flux-system",
        "  chart: {spec: {chart: app, sourceRef: {kind: HelmRepository, name: charts}}}\n",
      ),
    });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools({ app: chartConfigMap }));
    assert.equal(state.units.find((u) => unitKey(u) === "HelmRelease/flux-system/app")?.objects[0]?.suspended, true);

    writeFiles(repo, { "c/flux-system.yaml": kustomization("flux-system", "  path: ./c\n  prune: true\n  targetNamespace: x\n") });
    const message = await buildError(
      buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools({ app: chartConfigMap })),
    );
    assert.match(message, /Kustomization\/flux-system\/flux-system builds c, the cluster folder ferry syncs.*spec\.targetNamespace/);
  });

  it("reads the config repo itself for a GitRepository at the config repo's URL", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/sources.yaml":
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: self, namespace: flux-system}\n" +
        "spec: {url: https://git.example.com/config.git, ref: {branch: main}}\n",
      "c/self.yaml": kustomization("self", "  path: ./deploy\n  prune: true\n  sourceRef: {kind: GitRepository, name: self}\n"),
      "deploy/app.yaml": configMap("app"),
    });
    const tools = new FakeRenderTools();
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools, {
      repoUrl: "https://git.example.com/config.git",
    });
    assert.deepEqual(inventory(state), ["Kustomization/flux-system/self ConfigMap/default/app"]);
    assert.deepEqual(tools.gitRequests, []);
  });

  it("refuses by name a sourceRef it cannot follow: a Bucket, a missing GitRepository", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/bucket.yaml": kustomization("bucket", "  path: ./x\n  prune: true\n  sourceRef: {kind: Bucket, name: manifests}\n"),
      "c/missing.yaml": kustomization("missing", "  path: ./x\n  prune: true\n  sourceRef: {kind: GitRepository, name: nowhere}\n"),
      "x/app.yaml": configMap("app"),
    });
    const message = await buildError(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools()));
    assert.match(message, /c\/bucket\.yaml:1.*Kustomization\/flux-system\/bucket: spec\.sourceRef kind Bucket is not supported/);
    assert.match(message, /c\/missing\.yaml:1.*GitRepository\/flux-system\/nowhere, which is not in the repository/);
  });

  it("applies a Kustomization's objects as its serviceAccountName, and what a HelmRelease or Kustomization inside it yields as their own", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/tenant.yaml": kustomization("tenant", "  path: ./tenant\n  prune: true\n  serviceAccountName: deployer\n", "apps"),
      "tenant/app.yaml": configMap("app"),
      "tenant/inner.yaml": kustomization("inner", "  path: ./inner\n  prune: true\n", "apps"),
      "tenant/source.yaml": helmRepository("charts", "apps"),
      "tenant/release.yaml":
        helmRelease(
          "own",
          "apps",
          "  serviceAccountName: releaser\n  chart: {spec: {chart: own, sourceRef: {kind: HelmRepository, name: charts}}}\n",
        ) +
        "---\n" +
        helmRelease("plain", "apps", "  chart: {spec: {chart: plain, sourceRef: {kind: HelmRepository, name: charts}}}\n"),
      "inner/inner.yaml": configMap("inner"),
    });
    const tools = new FakeRenderTools({ own: chartConfigMap, plain: chartConfigMap });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    const accounts = state.units.flatMap((u) =>
      u.objects.map(
        (o) => `${o.id.kind}/${o.id.name} ${o.serviceAccount ? `${o.serviceAccount.namespace}:${o.serviceAccount.name}` : "-"}`,
      ),
    );
    // Flux: the Kustomization applies its own objects as its account; helm-controller and
    // kustomize-controller apply a nested release or Kustomization with its own account, or their own rights.
    assert.deepEqual(accounts.sort(), [
      "ConfigMap/app apps:deployer",
      "ConfigMap/inner -",
      "ConfigMap/own apps:releaser",
      "ConfigMap/plain -",
    ]);
  });

  it("runs a HelmRelease's hooks as its serviceAccountName", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": helmRepository("charts", "apps"),
      "c/release.yaml": helmRelease(
        "hooked",
        "apps",
        "  serviceAccountName: releaser\n  chart: {spec: {chart: hooked, sourceRef: {kind: HelmRepository, name: charts}}}\n",
      ),
    });
    const hooked = (r: HelmTemplateRequest) =>
      chartConfigMap(r) +
      "---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate, annotations: {helm.sh/hook: pre-install}}\n" +
      "spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}\n";
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools({ hooked }));
    const unit = state.units.find((u) => unitKey(u) === "HelmRelease/apps/hooked");
    assert.deepEqual(
      unit?.hooks?.map((h) => [h.object.kind, h.serviceAccount]),
      [["Job", { namespace: "apps", name: "releaser" }]],
    );
    assert.deepEqual(unit?.objects[0]?.serviceAccount, { namespace: "apps", name: "releaser" });
  });
});

describe("buildDesiredState: chart folders", () => {
  it("renders a folder holding a Chart.yaml as Argo CD does: release named after the folder, the default namespace", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/guestbook/Chart.yaml": "apiVersion: v2\nname: guestbook\nversion: 0.1.0\n",
      "c/guestbook/values.yaml": "replicas: 1\n",
      "c/guestbook/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
      "c/plain.yaml": configMap("plain"),
    });
    const chartDir = path.join(fs.realpathSync(repo), "c/guestbook");
    const tools = new FakeRenderTools({ [chartDir]: chartConfigMap });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools, { defaultNamespace: "team" });
    assert.deepEqual(inventory(state), [
      "HelmChart/c/guestbook ConfigMap/team/guestbook",
      "ManifestFile/c/plain.yaml ConfigMap/team/plain",
    ]);
    assert.equal(tools.helmRequests[0]?.namespace, "team");
    assert.equal(tools.helmRequests[0]?.includeCRDs, true);
  });

  it("renders the cluster folder itself when it is a chart", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "helm-guestbook/Chart.yaml": "apiVersion: v2\nname: guestbook\nversion: 0.1.0\n",
      "helm-guestbook/templates/cm.yaml": "kind: {{ .Values.kind }}\n",
    });
    const chartDir = path.join(fs.realpathSync(repo), "helm-guestbook");
    const tools = new FakeRenderTools({ [chartDir]: chartConfigMap });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "helm-guestbook" }), tools);
    assert.deepEqual(inventory(state), ["HelmChart/helm-guestbook ConfigMap/default/helm-guestbook"]);
  });

  it("leaves a chart folder to the HelmRelease that renders it from the config repo", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "charts/podinfo/Chart.yaml": "apiVersion: v2\nname: podinfo\nversion: 0.1.0\n",
      "charts/podinfo/templates/cm.yaml": "kind: {{ .Values.kind }}\n",
      "releases/dev.yaml":
        "apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata: {name: podinfo, namespace: dev}\n" +
        "spec:\n  chart: {git: https://git.example.com/config.git, ref: master, path: charts/podinfo}\n",
    });
    const chartDir = path.join(fs.realpathSync(repo), "charts/podinfo");
    const tools = new FakeRenderTools({ [chartDir]: chartConfigMap });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "." }), tools, {
      repoUrl: "https://git.example.com/config.git",
    });
    assert.deepEqual(inventory(state), ["HelmRelease/dev/podinfo ConfigMap/dev/dev-podinfo"]);
    // Read from the commit synced, not cloned again.
    assert.deepEqual(tools.gitRequests, []);
  });

  it("refuses a chart folder inside a Flux Kustomization's path, naming it", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/apps.yaml": kustomization("apps", "  path: ./apps\n  prune: true\n"),
      "apps/chart/Chart.yaml": "apiVersion: v2\nname: x\nversion: 0.1.0\n",
      "apps/app.yaml": configMap("app"),
    });
    const message = await buildError(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools()));
    assert.match(message, /chart folders \(apps\/chart\) are not manifests/);
  });
});
