// A HelmRelease rendered as helm-controller does: hooks and tests split off, crds/ CRDs by the CRD policy.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { splitChartCrds } from "../../src/desired-state/helm-crds";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const release = (name: string, spec: string) =>
  `apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: ${name}, namespace: apps}\nspec:\n${spec}`;
const repoSource =
  "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts, namespace: apps}\nspec: {url: http://charts.invalid}\n";
const chartRef = "  chart: {spec: {chart: app, sourceRef: {kind: HelmRepository, name: charts}}}\n";

/** What `helm template --include-crds` prints for a chart with a CRD, a hook Job, a test Pod and a ConfigMap. */
const rendered = [
  "---",
  "# Source: app/crds/widgets.yaml",
  "apiVersion: apiextensions.k8s.io/v1",
  "kind: CustomResourceDefinition",
  "metadata: {name: widgets.example.com}",
  "---",
  "apiVersion: apiextensions.k8s.io/v1",
  "kind: CustomResourceDefinition",
  "metadata: {name: gadgets.example.com}",
  "---",
  "# Source: app/templates/configmap.yaml",
  "apiVersion: v1",
  "kind: ConfigMap",
  "metadata: {name: app}",
  "---",
  "# Source: app/templates/migrate.yaml",
  "apiVersion: batch/v1",
  "kind: Job",
  "metadata: {name: migrate, annotations: {helm.sh/hook: pre-install}}",
  "---",
  "# Source: app/templates/tests/test.yaml",
  "apiVersion: v1",
  "kind: Pod",
  "metadata: {name: app-test-x8k2q, annotations: {helm.sh/hook: test}}",
  "",
].join("\n");

describe("splitChartCrds", () => {
  it("tells the documents of crds/ folders (of the chart and its subcharts) from the templates'", () => {
    const r = splitChartCrds(rendered + "---\n# Source: app/charts/sub/crds/x.yaml\nkind: CustomResourceDefinition\n");
    assert.equal((r.crds.match(/kind: CustomResourceDefinition/g) ?? []).length, 3);
    assert.doesNotMatch(r.rest, /CustomResourceDefinition/);
    assert.match(r.rest, /kind: ConfigMap/);
  });
});

describe("buildDesiredState: Helm as helm-controller runs it", () => {
  const build = async (spec: string) => {
    const repo = tempDir();
    writeFiles(repo, { "c/source.yaml": repoSource, "c/web.yaml": release("web", chartRef + spec) });
    const tools = new FakeRenderTools({ app: () => rendered });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    return { unit: state.units.find((u) => u.name === "apps/web")!, tools };
  };

  it("keeps hooks and test Pods out of the managed objects; install hooks go with the unit", async () => {
    const { unit } = await build("");
    assert.deepEqual(
      unit.objects.map((o) => `${o.id.kind}/${o.id.name}`),
      ["CustomResourceDefinition/widgets.example.com", "CustomResourceDefinition/gadgets.example.com", "ConfigMap/app"],
    );
    assert.deepEqual(
      unit.hooks?.map((h) => `${h.object.kind}/${h.object.metadata.name} ${h.events.join(",")} in ${h.namespace}`),
      ["Job/migrate pre-install in apps"],
    );
  });

  it("creates the crds/ CRDs once and never prunes them by default (upgrade.crds Skip); CreateReplace updates them", async () => {
    const byDefault = (await build("")).unit.objects.filter((o) => o.id.kind === "CustomResourceDefinition");
    assert.deepEqual(
      byDefault.map((o) => [o.prune, o.suspended]),
      [
        [false, true],
        [false, true],
      ],
    );
    const replace = (await build("  upgrade: {crds: CreateReplace}\n")).unit.objects.filter(
      (o) => o.id.kind === "CustomResourceDefinition",
    );
    assert.deepEqual(
      replace.map((o) => [o.prune, o.suspended]),
      [
        [false, false],
        [false, false],
      ],
    );
  });

  it("asks helm for no CRDs when the install policy is Skip", async () => {
    const { tools } = await build("  install: {crds: Skip}\n");
    assert.equal(tools.helmRequests[0]?.includeCRDs, false);
  });
});
