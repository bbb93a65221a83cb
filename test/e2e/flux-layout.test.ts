// End to end: the standard Flux v2 layout (bootstrap folder, Kustomizations two levels deep, a
// HelmRelease from a HelmRepository another Kustomization declares), a Kustomization reading a
// second git repository, and a chart folder, in one sync; Kustomizations applied as their
// serviceAccountName, refused by the cluster's RBAC where the account may not go.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ferryRoot } from "../../src/lib/paths";
import { ChartRepo, startChartRepo } from "../helpers/chart-repo";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";
import { RecordingServer, startGitHttpServer } from "../helpers/git-http-server";

interface K8sObject {
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
}

describe("Flux v2 layout", () => {
  const env = useE2E();
  let charts: ChartRepo;
  let gitServer: RecordingServer;

  before(async () => {
    charts = await startChartRepo(env().toolchain.bin("helm"), [
      { name: "webapp", version: "1.2.0" },
      { name: "keeper", version: "0.1.0" },
    ]);
    gitServer = await startGitHttpServer(path.join(env().dir, "git"));
  });
  after(async () => {
    await charts?.close();
    await gitServer?.close();
  });

  it("renders HelmReleases and follows Kustomizations wherever they are, and a sourceRef to another repository", async () => {
    const e = env();
    // The team's repository, served over git's smart HTTP on loopback.
    const team = await ConfigRepo.create(path.join(e.dir, "git", "team"), "flux-layout");
    await team
      .edit({
        "deploy/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
        "deploy/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-config}\ndata: {from: the team repository}\n",
      })
      .commitAll("The team's manifests");

    const repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "flux-layout", {
      CHART_REPO: charts.url,
      TEAM_REPO: `${gitServer.url}/team`,
    });
    await repo.commitStep("step1", "Flux v2 layout");
    // A chart folder in the cluster folder, as an Argo CD Helm application holds it.
    fs.cpSync(path.join(ferryRoot(), "test", "fixtures", "charts", "webapp"), path.join(repo.dir, "clusters", "dev", "guestbook"), {
      recursive: true,
    });
    await repo.commitAll("A chart folder");

    const sync = () => e.sync({ repo: repo.dir, path: "clusters/dev", extra: ["--allow-cross-namespace-refs"] });
    const first = await sync();
    assert.equal(first.code, 0, `${first.result.message}\n${first.stderr}`);

    // The HelmRelease two levels down (Kustomization -> Kustomize overlay -> base), patched by the
    // overlay, rendered from the HelmRepository the infrastructure Kustomization declares.
    const web = await e.getJson<K8sObject>("configmap", "webapp-webapp", "-n", "web");
    assert.equal(web.data?.greeting, "hello from dev");
    assert.ok(charts.requests.some((r) => r.includes("webapp-1.2.0.tgz")));
    // The Kustomization one level further down applied its objects.
    assert.equal((await e.getJson<K8sObject>("configmap", "platform-settings", "-n", "web")).data?.tier, "infrastructure");
    // The sourceRef'd repository was cloned and its path applied, in the targetNamespace.
    assert.equal((await e.getJson<K8sObject>("configmap", "team-config", "-n", "team")).data?.from, "the team repository");
    assert.ok(gitServer.requests.some((r) => r.path.startsWith("/team/info/refs")));
    // The chart folder: release named after the folder, in the default namespace.
    assert.equal((await e.getJson<K8sObject>("configmap", "guestbook-webapp", "-n", "default")).data?.greeting, "hello from the chart");
    // The bootstrap objects: gotk-components applied as manifests; Flux's own objects never applied.
    assert.ok(await e.exists("namespace", "flux-system"));
    const applied = first.result.objects.map((o) => o.object.split("/")[0]);
    for (const kind of ["HelmRelease", "Kustomization", "HelmRepository", "GitRepository"]) assert.ok(!applied.includes(kind), kind);

    // Converged: a second sync changes nothing.
    const second = await sync();
    assert.equal(second.code, 0, second.result.message);
    const { created = 0, updated = 0, deleted = 0, replaced = 0 } = second.result.changes ?? {};
    assert.deepEqual({ created, updated, deleted, replaced }, { created: 0, updated: 0, deleted: 0, replaced: 0 });
  });

  it("applies a Kustomization as its serviceAccountName, so the cluster's RBAC refuses what the account may not do", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "tenant-repo"), "tenant-accounts");
    const sync = () => e.sync({ repo: repo.dir, path: "clusters/dev", stack: "tenants" });
    const user = "system:serviceaccount:tenant:deployer";

    // The tenant's account may not create a ClusterRole: the API server's refusal names both, and
    // fails that unit only; the other unit applied as the account goes on.
    await repo.commitStep("step1", "A tenant with two Kustomizations applied as its account");
    const refused = await sync();
    assert.equal(refused.code, 1, "the run fails");
    const message = refused.result.message ?? "";
    assert.match(message, /ClusterRole\/tenant-admin/);
    assert.ok(message.includes(user), message);
    assert.equal(await e.exists("clusterrole", "tenant-admin"), false);
    assert.deepEqual(
      refused.result.failedUnits?.map((u) => u.unit),
      ["Kustomization/tenant/tenant-admin"],
      message,
    );
    assert.ok(await e.exists("configmap", "tenant-config", "-n", "tenant"), message);

    // The refused unit leaves Git: the run succeeds.
    await repo.commitStep("step2", "The tenant keeps to its namespace");
    const applied = await sync();
    assert.equal(applied.code, 0, `${applied.result.message}\n${applied.stderr}`);
    const config = await e.getJson<K8sObject>("configmap", "tenant-config", "-n", "tenant");
    assert.equal(config.data?.["applied-as"], "deployer");
    // Converged: the impersonating provider is as stable as the stack's own.
    const again = await sync();
    assert.equal(again.code, 0, again.result.message);
    const { created = 0, updated = 0, deleted: gone = 0 } = again.result.changes ?? {};
    assert.deepEqual({ created, updated, gone }, { created: 0, updated: 0, gone: 0 });

    // Moving a unit off its account changes the provider only: nothing is replaced or deleted.
    const apps = fs.readFileSync(path.join(repo.dir, "clusters/dev/tenant-apps.yaml"), "utf8");
    await repo
      .edit({ "clusters/dev/tenant-apps.yaml": apps.replace("  serviceAccountName: deployer\n", "") })
      .commitAll("Applied with ferry's rights");
    const moved = await sync();
    assert.equal(moved.code, 0, `${moved.result.message}\n${moved.stderr}`);
    const { deleted = 0, replaced = 0 } = moved.result.changes ?? {};
    assert.deepEqual({ deleted, replaced }, { deleted: 0, replaced: 0 });
    assert.ok(await e.exists("configmap", "tenant-config", "-n", "tenant"));
  });

  it("units isolated: a broken HelmRelease fails alone, what waits for it waits, the others apply, nothing is deleted", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "isolation-repo"), "isolation", { CHART_REPO: charts.url });
    const sync = () => e.sync({ repo: repo.dir, path: "clusters/dev", stack: "isolation" });
    const greeting = async (release: string) => (await e.getJson<K8sObject>("configmap", `${release}-webapp`, "-n", "iso")).data?.greeting;

    await repo.commitStep("step1", "Three releases");
    const first = await sync();
    assert.equal(first.code, 0, `${first.result.message}\n${first.stderr}`);

    // other asks for a chart version the repository does not have; after dependsOn other.
    await repo.commitStep("step2", "New greetings; other asks for a chart version that does not exist");
    const partial = await sync();
    assert.equal(partial.code, 1, partial.result.message);
    assert.equal(partial.result.reason, "BuildFailed", partial.result.message);
    assert.deepEqual(
      partial.result.failedUnits?.map((u) => [u.unit, u.reason]),
      [
        ["HelmRelease/iso/other", "BuildFailed"],
        ["HelmRelease/iso/after", "DependencyFailed"],
      ],
    );
    assert.match(partial.result.message ?? "", /clusters\/dev\/other\.yaml:\d+.*HelmRelease\/iso\/other/);
    assert.equal(await greeting("good"), "v2");
    // Neither deleted nor changed: the failed release's objects and those of the one that waits for it.
    assert.equal(await greeting("other"), "v1");
    assert.equal(await greeting("after"), "v1");
    assert.ok(await e.exists("deployment", "other-webapp", "-n", "iso"));
    const { deleted = 0 } = partial.result.changes ?? {};
    assert.equal(deleted, 0);

    // Fixed: everything catches up.
    await repo
      .edit({
        "clusters/dev/other.yaml": fs.readFileSync(path.join(repo.dir, "clusters/dev/other.yaml"), "utf8").replace('"9.x"', '"1.x"'),
      })
      .commitAll("other back on 1.x");
    const fixed = await sync();
    assert.equal(fixed.code, 0, `${fixed.result.message}\n${fixed.stderr}`);
    assert.deepEqual([await greeting("other"), await greeting("after")], ["v2", "v2"]);
  });

  it("a chart that keeps a generated password in a Secret (lookup) converges in one sync and keeps its password", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "keeper-repo"), "isolation", { CHART_REPO: charts.url });
    await repo.commitStep("step1", "Three releases");
    await repo
      .edit({
        "clusters/dev/good.yaml": undefined,
        "clusters/dev/other.yaml": undefined,
        "clusters/dev/after.yaml": undefined,
        "clusters/dev/keeper.yaml": [
          "apiVersion: helm.toolkit.fluxcd.io/v2",
          "kind: HelmRelease",
          "metadata: {name: vault, namespace: iso}",
          "spec:",
          "  interval: 5m",
          "  chart: {spec: {chart: keeper, version: 0.1.0, sourceRef: {kind: HelmRepository, name: charts}}}",
          "",
        ].join("\n"),
      })
      .commitAll("A release whose chart looks up its own Secret");
    const sync = () => e.sync({ repo: repo.dir, path: "clusters/dev", stack: "keeper" });
    const first = await sync();
    assert.equal(first.code, 0, `${first.result.message}\n${first.stderr}`);
    // The first render did not find the Secret; the run built again once it existed, and settled.
    assert.match(first.stderr, /render differently now that the objects their charts look up exist; applying again/);
    const password = (await e.getJson<{ data: Record<string, string> }>("secret", "vault-auth", "-n", "iso")).data.password;
    const second = await sync();
    assert.equal(second.code, 0, second.result.message);
    const { created = 0, updated = 0, deleted = 0, replaced = 0 } = second.result.changes ?? {};
    assert.deepEqual({ created, updated, deleted, replaced }, { created: 0, updated: 0, deleted: 0, replaced: 0 });
    assert.equal((await e.getJson<{ data: Record<string, string> }>("secret", "vault-auth", "-n", "iso")).data.password, password);
  });
});
