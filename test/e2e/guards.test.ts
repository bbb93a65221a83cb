// End to end: a bad commit never costs a good object.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ChartRepo, startChartRepo } from "../helpers/chart-repo";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";

const SECRET = "sup3r-s3cret-value-7f3a";

const helmRelease = (name: string, chart: Record<string, string>) =>
  [
    "apiVersion: helm.fluxcd.io/v1",
    "kind: HelmRelease",
    "metadata:",
    `  name: ${name}`,
    "  namespace: guarded",
    "spec:",
    "  chart:",
    ...Object.entries(chart).map(([k, v]) => `    ${k}: ${v}`),
    "",
  ].join("\n");

describe("guards", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  let charts: ChartRepo;
  let good: string;
  const sync = (...extra: string[]) => env().sync({ repo: repo.dir, path: "clusters/dev", extra });
  /** Every object of the namespace with uid and resourceVersion: any change shows. */
  const snapshot = async (): Promise<string> => {
    const list = await env().getJson<{ items: { kind: string; metadata: { name: string; uid: string; resourceVersion: string } }[] }>(
      "configmap,secret,deployment,service",
      "-n",
      "guarded",
    );
    return JSON.stringify(list.items.map((o) => [o.kind, o.metadata.name, o.metadata.uid, o.metadata.resourceVersion]).sort());
  };

  before(async () => {
    charts = await startChartRepo(env().toolchain.bin("helm"), [{ name: "webapp", version: "1.0.0" }]);
    repo = await ConfigRepo.create(path.join(env().dir, "config-repo"), "guards");
    await repo.commitStep("step1", "A good commit");
    const first = await sync();
    assert.equal(first.code, 0, first.result.message);
    good = await snapshot();
  });
  after(async () => charts?.close());

  it("keeps Secret data out of the output and encrypted in the state", async () => {
    const again = await sync();
    assert.equal(again.code, 0);
    assert.ok(!JSON.stringify(again.result).includes(SECRET));
    assert.ok(!again.stderr.includes(SECRET));
    const backend = path.join(env().env.FERRY_STATE_DIR!, "backend");
    const stateFiles = fs
      .readdirSync(backend, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith(".json"));
    assert.ok(stateFiles.length > 0);
    for (const f of stateFiles)
      assert.ok(!fs.readFileSync(path.join(backend, f), "utf8").includes(SECRET), `${f} holds the secret in plain text`);
  });

  it("refuses a chart that does not render, naming the HelmRelease, its file and line", async () => {
    await repo
      .edit({ "clusters/dev/web.yaml": helmRelease("web", { repository: charts.url, name: "webapp", version: "9.9.9" }) })
      .commitAll("Bad chart version");
    const { code, result } = await sync();
    assert.notEqual(code, 0);
    assert.equal(result.reason, "BuildFailed");
    assert.match(result.message ?? "", /clusters\/dev\/web\.yaml:1 \(document 1\): HelmRelease\/guarded\/web: .*9\.9\.9/);
    assert.equal(await snapshot(), good);
  });

  it("refuses an object defined twice, by a file and by a chart, naming both", async () => {
    await repo
      .edit({
        "clusters/dev/web.yaml": helmRelease("web", { repository: charts.url, name: "webapp", version: "1.0.0" }),
        "clusters/dev/dup.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guarded-web-webapp\n  namespace: guarded\n",
      })
      .commitAll("Duplicate ConfigMap");
    const { code, result } = await sync();
    assert.notEqual(code, 0);
    assert.equal(result.reason, "BuildFailed");
    assert.match(
      result.message ?? "",
      /ConfigMap\/guarded\/guarded-web-webapp is defined twice: by .*HelmRelease\/guarded\/web.* and by clusters\/dev\/dup\.yaml:1/,
    );
    assert.equal(await snapshot(), good);
  });

  it("refuses a chart path that leaves the checkout", async () => {
    await repo
      .edit({
        "clusters/dev/dup.yaml": undefined,
        "clusters/dev/web.yaml": helmRelease("web", { git: repo.dir, path: "../../../etc", ref: "main" }),
      })
      .commitAll("Chart path escaping the repo");
    const { code, result } = await sync();
    assert.notEqual(code, 0);
    assert.match(result.message ?? "", /HelmRelease\/guarded\/web: `spec.chart.path` "..\/..\/..\/etc" leaves the repository/);
    assert.equal(await snapshot(), good);
  });

  it("refuses a change that would delete more than half of the managed objects, unless allowed for that run", async () => {
    await repo
      .edit({
        "clusters/dev/web.yaml": undefined,
        "clusters/dev/cm-1.yaml": undefined,
        "clusters/dev/cm-2.yaml": undefined,
        "clusters/dev/cm-3.yaml": undefined,
        "clusters/dev/cm-4.yaml": undefined,
      })
      .commitAll("Delete most ConfigMaps");
    const refused = await sync();
    assert.notEqual(refused.code, 0);
    assert.equal(refused.result.reason, "GuardRefused");
    assert.match(refused.result.message ?? "", /would delete 4 of the 6 objects ferry manages \(67%, more than the 50% allowed\)/);
    assert.equal(await snapshot(), good);

    const allowed = await sync("--allow-prune");
    assert.equal(allowed.code, 0, allowed.result.message);
    assert.equal(allowed.result.changes?.deleted, 4);
  });
});
