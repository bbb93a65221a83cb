// End to end: HelmReleases whose charts come from a real OCI registry on loopback (the toolchain's
// CNCF Distribution, plain HTTP, basic auth): one through a HelmRepository of type oci (two Flux
// Kustomizations down, as in the standard Flux v2 layout), one through
// an OCIRepository and `spec.chartRef`; and a Flux Kustomization whose sourceRef is an OCIRepository
// (a `flux push artifact`-style artifact pushed with plain distribution API calls).
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";
import { OciRegistry, startOciRegistry } from "../helpers/oci-registry";

interface ConfigMap {
  metadata: { labels?: Record<string, string> };
  data?: Record<string, string>;
}

const USER = "ferry-puller";
const PASSWORD = "oci-pa55word-never-printed";

describe("OCI charts", () => {
  const env = useE2E();
  let registry: OciRegistry;
  let repo: ConfigRepo;
  const sync = () => env().sync({ repo: repo.dir, path: "clusters/dev" });

  before(async () => {
    const e = env();
    registry = await startOciRegistry(e.toolchain.bin("registry"), e.toolchain.bin("helm"), { username: USER, password: PASSWORD });
    for (const version of ["1.0.0", "1.1.0", "2.0.0"]) await registry.push({ name: "webapp", version });
    for (const version of ["1.0.0", "1.2.0", "2.0.0"]) {
      await registry.pushArtifact("manifests/app", version, {
        "deploy/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [configmap.yaml]\n",
        "deploy/configmap.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-artifact}\ndata: {version: "${version}"}\n`,
      });
    }
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "oci", {
      REGISTRY: registry.host,
      REGISTRY_USER: USER,
      REGISTRY_PASSWORD: PASSWORD,
      REGISTRY_AUTH: Buffer.from(`${USER}:${PASSWORD}`).toString("base64"),
    });
  });
  after(async () => registry?.close());

  it("renders a chart from a HelmRepository of type oci (two Kustomizations down) and one from an OCIRepository with chartRef, with the sources' logins", async () => {
    const e = env();
    await repo.commitStep("step1", "Charts from an OCI registry");
    const { code, result, stderr } = await sync();
    assert.equal(code, 0, `${result.message}\n${stderr}`);
    assert.doesNotMatch(JSON.stringify(result) + stderr, new RegExp(PASSWORD), "the registry password is never printed");

    const a = await e.getJson<ConfigMap>("configmap", "web-webapp", "-n", "oci-a");
    assert.equal(a.data?.greeting, "from a HelmRepository of type oci");
    assert.equal(a.metadata.labels?.["helm.sh/chart"], "webapp-1.0.0", "the version the HelmRelease pins");
    const b = await e.getJson<ConfigMap>("configmap", "web-webapp", "-n", "oci-b");
    assert.equal(b.data?.greeting, "from an OCIRepository");
    assert.equal(b.metadata.labels?.["helm.sh/chart"], "webapp-1.1.0", "the newest version in the OCIRepository's semver range");
    assert.ok(await e.exists("deployment", "web-webapp", "-n", "oci-b"));
  });

  /** An OCIRepository `latest` (its spec's other fields given) and a HelmRelease of its chart. */
  const latestRelease = (spec: string) =>
    [
      "apiVersion: source.toolkit.fluxcd.io/v1",
      "kind: OCIRepository",
      "metadata: {name: latest, namespace: oci-b}",
      `spec: {url: "oci://${registry.host}/charts/webapp", ${spec}}`,
      "---",
      "apiVersion: helm.toolkit.fluxcd.io/v2",
      "kind: HelmRelease",
      "metadata: {name: latest, namespace: oci-b}",
      "spec: {chartRef: {kind: OCIRepository, name: latest}}",
      "",
    ].join("\n");

  it("refuses by name what it cannot honour: a tag that is not a chart version, a registry without insecure on plain HTTP", async () => {
    repo.edit({ "clusters/dev/latest.yaml": latestRelease("insecure: true, ref: {tag: latest}") });
    await repo.commitAll("A chart by the latest tag");
    let run = await sync();
    assert.notEqual(run.code, 0);
    assert.match(run.result.message ?? "", /OCIRepository\/oci-b\/latest: `spec\.ref\.tag` is "latest", which is not a chart version/);

    // Without `insecure: true` helm speaks https to the plain-HTTP registry, and fails.
    repo.edit({ "clusters/dev/latest.yaml": latestRelease("ref: {tag: 1.0.0}") });
    await repo.commitAll("Not insecure");
    run = await sync();
    assert.notEqual(run.code, 0);
    assert.match(`${run.result.message}\n${run.stderr}`, /HelmRelease\/oci-b\/latest[\s\S]*HTTP response to HTTPS client/);
    // The releases that were there stay.
    assert.ok(await env().exists("configmap", "web-webapp", "-n", "oci-a"));
  });

  it("applies a Kustomization's path from an OCIRepository artifact (newest tag in range, the source's login), and a second sync changes nothing", async () => {
    const e = env();
    await repo.commitStep("step2", "A Kustomization from an OCI artifact");
    const first = await sync();
    assert.equal(first.code, 0, `${first.result.message}\n${first.stderr}`);
    assert.doesNotMatch(JSON.stringify(first.result) + first.stderr, new RegExp(PASSWORD), "the registry password is never printed");
    const cm = await e.getJson<ConfigMap>("configmap", "from-artifact", "-n", "oci-c");
    assert.equal(cm.data?.version, "1.2.0", "the newest tag in the OCIRepository's semver range");

    const second = await sync();
    assert.equal(second.code, 0, `${second.result.message}\n${second.stderr}`);
    const { created = 0, updated = 0, deleted = 0, replaced = 0 } = second.result.changes ?? {};
    assert.deepEqual(
      { created, updated, deleted, replaced },
      { created: 0, updated: 0, deleted: 0, replaced: 0 },
      JSON.stringify(second.result),
    );
  });
});
