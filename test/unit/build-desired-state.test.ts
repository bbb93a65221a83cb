import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { unitKey } from "../../src/desired-state/desired-state";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import { DesiredStateError, GuardError } from "../../src/desired-state/manifest-error";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const release = (name: string, spec: string) =>
  `apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: ${name}, namespace: apps}\nspec:\n${spec}`;
const repoSource =
  "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts, namespace: apps}\nspec: {url: http://charts.invalid}\n";
const chartRef = "  chart: {spec: {chart: app, sourceRef: {kind: HelmRepository, name: charts}}}\n";
const appChart = () => "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {k: v}\n";

describe("buildDesiredState", () => {
  it("merges valuesFrom in order (Git, then the cluster, targetPath, optional) with inline values last", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": repoSource,
      "c/values.yaml":
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base, namespace: apps}\ndata:\n  values.yaml: |\n    a: from-git\n    b: from-git\n    nested: {x: 1, y: 1}\n",
      "c/release.yaml": release(
        "app",
        chartRef +
          "  valuesFrom:\n" +
          "    - {kind: ConfigMap, name: base}\n" +
          "    - {kind: Secret, name: live}\n" +
          "    - {kind: Secret, name: live, valuesKey: token, targetPath: auth.token}\n" +
          "    - {kind: ConfigMap, name: absent, optional: true}\n" +
          "  values: {a: inline, nested: {y: 2}}\n",
      ),
    });
    const live = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "live", namespace: "apps" },
      data: { "values.yaml": Buffer.from("b: from-cluster\n").toString("base64"), token: Buffer.from("t0k3n").toString("base64") },
    };
    const tools = new FakeRenderTools({ app: appChart }, [live]);
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    assert.deepEqual(tools.helmRequests[0]?.values, { a: "inline", b: "from-cluster", nested: { x: 1, y: 2 }, auth: { token: "t0k3n" } });
    assert.equal(tools.helmRequests[0]?.namespace, "apps");
    assert.equal(tools.helmRequests[0]?.includeCRDs, true);
    // The chart's object landed in the release namespace; the values ConfigMap is applied too.
    const names = state.units.flatMap((u) => u.objects.map((o) => `${unitKey(u)} ${o.id.kind}/${o.id.namespace}/${o.id.name}`));
    assert.deepEqual(names.sort(), ["HelmRelease/apps/app ConfigMap/apps/app", "ManifestFile/c/values.yaml ConfigMap/apps/base"]);
  });

  it("names the HelmRelease, file and line when a valuesFrom source is missing or the chart does not render", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": repoSource,
      "c/a.yaml": release("missing-values", chartRef + "  valuesFrom: [{kind: ConfigMap, name: nowhere}]\n"),
      "c/b.yaml": release("bad-chart", "  chart: {spec: {chart: nope, sourceRef: {kind: HelmRepository, name: charts}}}\n"),
    });
    await assert.rejects(
      buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools({ app: appChart })),
      (err: unknown) => {
        assert.ok(err instanceof DesiredStateError);
        assert.match(
          err.message,
          /c\/a\.yaml:1 \(document 1\): HelmRelease\/apps\/missing-values: ConfigMap\/apps\/nowhere \(valuesFrom\) is neither in the repository nor in the cluster/,
        );
        assert.match(err.message, /c\/b\.yaml:1 \(document 1\): HelmRelease\/apps\/bad-chart: chart "nope" not found/);
        return true;
      },
    );
  });

  it("carries dependsOn and suspend to the units and their objects", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": repoSource,
      "c/db.yaml": release("db", chartRef + "  suspend: true\n  releaseName: db\n"),
      "c/web.yaml": release("web", chartRef + "  dependsOn: [{name: db}]\n"),
    });
    const state = await buildDesiredState(
      loadConfigFolder({ checkout: repo, path: "c" }),
      new FakeRenderTools({ app: (r) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${r.releaseName}}\n` }),
    );
    const web = state.units.find((u) => u.name === "apps/web")!;
    const db = state.units.find((u) => u.name === "apps/db")!;
    assert.deepEqual(web.dependsOn, ["HelmRelease/apps/db"]);
    assert.equal(db.objects[0]?.suspended, true);
    assert.ok(state.units.indexOf(db) < state.units.indexOf(web), "dependencies are rendered first");
  });

  it("refuses an empty desired state unless allowed", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/ignored.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations: {fluxcd.io/ignore: 'true'}\n",
    });
    await assert.rejects(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools()), GuardError);
    const allowed = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools(), { allowEmpty: true });
    assert.equal(allowed.units.length, 0);
  });

  it("refuses postBuild.substituteFrom, which ferry does not read yet", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/k.yaml":
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\nspec:\n  path: ./apps\n  prune: true\n  postBuild:\n    substituteFrom: [{kind: ConfigMap, name: vars}]\n",
      "apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n",
    });
    await assert.rejects(
      buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools()),
      /substituteFrom is not supported/,
    );
  });
});
