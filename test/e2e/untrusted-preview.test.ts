// End to end: a pull request that tries to read Secrets through `ferry preview` (the PR comment) gets nothing.
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { PreviewReport } from "../../src/reconcile/preview-report";
import { ChartRepo, startChartRepo } from "../helpers/chart-repo";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";

const TEAM_B_VALUE = "team-b-db-password-7f3a91";
const TEAM_A_VALUE = "team-a-db-password-c4e8d2";
/** Every form of a Secret's value a preview could show: as is, base64 (as `kubectl get secret` and the chart's b64enc), hex. */
const forms = (v: string) => [v, Buffer.from(v).toString("base64"), Buffer.from(v).toString("hex")];

const namespaces =
  "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-b}\n";
const loot = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loot, namespace: team-b}\ndata: {stolen: nothing yet}\n";
const charts = (url: string) =>
  `apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts, namespace: team-b}\nspec: {url: "${url}"}\n`;
/** The attacker's release in team-b: values from a Secret, the chart writes `.Values.stolen` into ConfigMap team-b/loot. */
const stealSameNamespace = (extraValues = "") =>
  "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: steal, namespace: team-b}\nspec:\n" +
  "  chart: {spec: {chart: stolen, version: 0.1.0, sourceRef: {kind: HelmRepository, name: charts}}}\n" +
  "  valuesFrom: [{kind: Secret, name: db}]\n" +
  extraValues;
/** The same, reaching into another team's namespace with Flux v1's secretKeyRef namespace. */
const stealOtherNamespace = (url: string) =>
  "apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata: {name: steal, namespace: team-b}\nspec:\n" +
  `  chart: {repository: "${url}", name: stolen, version: 0.1.0}\n` +
  "  valuesFrom: [{secretKeyRef: {name: db, namespace: team-a}}]\n";

describe("an untrusted pull request previewed", () => {
  const env = useE2E();
  let chartRepo: ChartRepo;
  let repo: ConfigRepo;

  const preview = (ref: string, output: string) => {
    const e = env();
    return e.ferry([
      "preview",
      ...["--stack", "dev", "--ref", ref, "--repo", repo.dir, "--path", "clusters/dev", "--kubeconfig", e.cluster.kubeconfig, "-o", output],
    ]);
  };
  const assertHidden = (what: string, text: string, values: readonly string[]) => {
    for (const v of values.flatMap(forms)) assert.ok(!text.includes(v), `${what} shows the Secret's value (${v}):\n${text}`);
  };
  const branch = async (name: string, files: Record<string, string | undefined>) => {
    await repo.checkout(name, true);
    await repo.edit(files).commitAll(`PR: ${name}`);
    await repo.checkout("main");
  };

  before(async () => {
    const e = env();
    chartRepo = await startChartRepo(e.toolchain.bin("helm"), [{ name: "stolen" }]);
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "foundation");
    await repo
      .edit({
        "clusters/dev/namespaces.yaml": namespaces,
        "clusters/dev/loot.yaml": loot,
        "clusters/dev/charts.yaml": charts(chartRepo.url),
      })
      .commitAll("Two teams");
    const { code, result } = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(code, 0, result.message);
    // Each team's Secret lives only in the cluster.
    for (const [ns, value] of [
      ["team-a", TEAM_A_VALUE],
      ["team-b", TEAM_B_VALUE],
    ]) {
      await e.kubectl("create", "secret", "generic", "db", "-n", ns!, `--from-literal=values.yaml=stolen: ${value}\n`);
    }
    // The release takes the ConfigMap over from Git's own file: an update, whose fields a preview shows.
    const takeOver = { "clusters/dev/loot.yaml": undefined };
    await branch("steal-same-namespace", { ...takeOver, "clusters/dev/steal.yaml": stealSameNamespace() });
    await branch("steal-other-namespace", { ...takeOver, "clusters/dev/steal.yaml": stealOtherNamespace(chartRepo.url) });
    await branch("steal-by-failing", { ...takeOver, "clusters/dev/steal.yaml": stealSameNamespace("  values: {failWithValue: true}\n") });
  });
  after(async () => chartRepo?.close());

  it("shows the ConfigMap a chart renders from a Secret with its field paths and no value, in Markdown and JSON", async () => {
    const markdown = await preview("steal-same-namespace", "markdown");
    assert.equal(markdown.code, 1, markdown.stdout + markdown.stderr);
    assert.match(markdown.stdout, /ConfigMap\/team-b\/loot/);
    assert.match(markdown.stdout, /\+ data\.stolen: \[secret\]/);
    assertHidden("the PR comment", markdown.stdout + markdown.stderr, [TEAM_B_VALUE]);

    const json = await preview("steal-same-namespace", "json");
    assert.equal(json.code, 1, json.stderr);
    assertHidden("the JSON preview", json.stdout + json.stderr, [TEAM_B_VALUE]);
    const report = JSON.parse(json.stdout) as PreviewReport;
    const update = report.objects.find((o) => o.object === "ConfigMap/team-b/loot");
    assert.deepEqual(
      update?.fields.map((f) => [f.path, f.new]),
      [
        ["data.encoded", "[secret]"],
        ["data.stolen", "[secret]"],
      ],
    );
  });

  it("refuses a valuesFrom Secret of another team's namespace by name, exit 2, without reading it", async () => {
    const r = await preview("steal-other-namespace", "markdown");
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /clusters\/dev\/steal\.yaml:1 \(document 1\): HelmRelease\/team-b\/steal: valuesFrom Secret\/team-a\/db is in another namespace/,
    );
    assert.match(r.stdout, /ferry:allowCrossNamespaceRefs \(or --allow-cross-namespace-refs\)/);
    assertHidden("the preview", r.stdout + r.stderr, [TEAM_A_VALUE]);
  });

  it("withholds helm's message when a chart fails with a value it read from a Secret", async () => {
    const r = await preview("steal-by-failing", "markdown");
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /helm template failed at stolen\/templates\/configmap\.yaml:\d+:\d+; helm's message is withheld/);
    assertHidden("the failed preview", r.stdout + r.stderr, [TEAM_B_VALUE]);
  });

  it("once merged, applies the value (as Flux would) but shows it in neither the sync's output nor the stack's state", async () => {
    const e = env();
    await repo
      .edit({ "clusters/dev/loot.yaml": undefined, "clusters/dev/steal.yaml": stealSameNamespace() })
      .commitAll("Merge the release");
    const { code, result, stderr } = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(code, 0, result.message);
    assertHidden("the sync", JSON.stringify(result) + stderr, [TEAM_B_VALUE]);
    const live = await e.getJson<{ data: Record<string, string> }>("configmap", "loot", "-n", "team-b");
    assert.equal(live.data.stolen, TEAM_B_VALUE);
    assertHidden("the stack's state", await e.pulumi("dev", ["stack", "export"]), [TEAM_B_VALUE]);
  });
});
