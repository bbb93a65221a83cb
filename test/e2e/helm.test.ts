// End to end: HelmReleases of three API versions rendered from a real chart repository on loopback.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ferryRoot } from "../../src/lib/paths";
import { after, before, describe, it } from "node:test";
import { ChartRepo, startChartRepo } from "../helpers/chart-repo";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";
import { startGitHttpServer } from "../helpers/git-http-server";

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string; uid: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: Record<string, unknown> & { replicas?: number };
}

describe("HelmRelease", () => {
  const env = useE2E();
  let charts: ChartRepo;
  let repo: ConfigRepo;
  // The layered release reads a Secret of another namespace (ops): a single-tenant setup that lowers the wall.
  const sync = (...extra: string[]) =>
    env().sync({ repo: repo.dir, path: "clusters/dev", extra: ["--allow-cross-namespace-refs", ...extra] });

  before(async () => {
    charts = await startChartRepo(env().toolchain.bin("helm"), [
      { name: "webapp", version: "1.0.0" },
      { name: "webapp", version: "1.1.0" },
      { name: "widgets" },
      { name: "platform" },
      { name: "modern" },
      { name: "hooked" },
    ]);
    repo = await ConfigRepo.create(path.join(env().dir, "config-repo"), "helm", { CHART_REPO: charts.url });
  });
  after(async () => charts?.close());

  it("renders the same release in all three API versions, values from Git and the cluster, CRDs and subcharts, in one sync", async () => {
    const e = env();
    // A Secret that exists only in the cluster, read for valuesFrom.
    await e.kubectl("create", "namespace", "ops");
    await e.kubectl(
      "create",
      "secret",
      "generic",
      "layered-secret-values",
      "-n",
      "ops",
      "--from-literal=values.yaml=color: red\nextraConfig:\n  source: secret\n",
    );
    await repo.commitStep("step1", "Add the releases");
    const { code, result, stderr } = await sync();
    assert.equal(code, 0, `${result.message}\n${stderr}`);

    // The same objects whichever API version the HelmRelease is written in.
    const shape = async (ns: string) => {
      const list = await e.getJson<{ items: K8sObject[] }>(
        "configmap,deployment,service",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/instance=web",
      );
      return list.items.map((o) => `${o.kind}/${o.metadata.name} ${JSON.stringify(o.data ?? o.spec?.replicas ?? "")}`).sort();
    };
    const a = await shape("team-a");
    assert.deepEqual(a, [
      'ConfigMap/web-webapp {"color":"blue","greeting":"hello from the chart"}',
      "Deployment/web-webapp 2",
      'Service/web-webapp ""',
    ]);
    assert.deepEqual(await shape("team-b"), a);
    assert.deepEqual(await shape("team-c"), a);

    // valuesFrom in order (ConfigMap from Git, then the cluster-only Secret), inline values last.
    const layered = await e.getJson<K8sObject>("configmap", "layered-webapp", "-n", "apps");
    assert.deepEqual(layered.data, { greeting: "inline wins", color: "red", source: "secret" });

    // The chart's CRD and a custom resource from Git arrived in the same run.
    assert.ok(await e.exists("crd", "widgets.example.com"));
    assert.ok(await e.exists("widgets.example.com", "widgets-default", "-n", "crds-demo"));
    assert.ok(await e.exists("widgets.example.com", "extra", "-n", "crds-demo"));

    // The umbrella chart rendered its subchart too, with the parent's values.
    const metrics = await e.getJson<K8sObject>("configmap", "apps-platform-metrics", "-n", "apps");
    assert.equal(metrics.data?.interval, "15s");
  });

  it("heals a chart's Deployment deleted and ConfigMap edited by hand", async () => {
    const e = env();
    await e.kubectl("delete", "deployment", "web-webapp", "-n", "team-a", "--wait=true");
    await e.kubectl("patch", "configmap", "web-webapp", "-n", "team-b", "--type=merge", "-p", '{"data":{"color":"hacked"}}');
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.ok(await e.exists("deployment", "web-webapp", "-n", "team-a"));
    assert.equal((await e.getJson<K8sObject>("configmap", "web-webapp", "-n", "team-b")).data?.color, "blue");
  });

  it("upgrades the objects in place when the chart version is bumped in Git", async () => {
    const e = env();
    const before = await e.getJson<K8sObject>("deployment", "web-webapp", "-n", "team-c");
    assert.equal(before.metadata.labels?.["helm.sh/chart"], "webapp-1.0.0");
    await repo.commitStep("step2", "Upgrade webapp to 1.1.0 in team-c");
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    const after = await e.getJson<K8sObject>("deployment", "web-webapp", "-n", "team-c");
    assert.equal(after.metadata.labels?.["helm.sh/chart"], "webapp-1.1.0");
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.equal(result.changes?.replaced, 0);
    assert.ok((result.changes?.updated ?? 0) >= 3);
  });

  it("applies a HelmRelease's postRenderers and commonMetadata to the chart's objects", async () => {
    const e = env();
    const other = await ConfigRepo.create(path.join(e.dir, "post-render-config"), "helm");
    await other
      .edit({
        "c/source.yaml": `apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts, namespace: default}\nspec: {url: "${charts.url}"}\n`,
        // The corpus' shape: a post-renderer deleting an object of the chart, and a JSON 6902 patch.
        "c/release.yaml": [
          "apiVersion: helm.toolkit.fluxcd.io/v2",
          "kind: HelmRelease",
          "metadata: {name: post, namespace: default}",
          "spec:",
          "  interval: 50m",
          "  install: {remediation: {retries: 3}}",
          "  chart: {spec: {chart: webapp, version: 1.0.0, sourceRef: {kind: HelmRepository, name: charts}}}",
          "  commonMetadata: {labels: {team: platform}}",
          "  postRenderers:",
          "    - kustomize:",
          "        patches:",
          "          - patch: |",
          "              $patch: delete",
          "              apiVersion: v1",
          "              kind: Service",
          "              metadata: {name: post-webapp, namespace: default}",
          "          - target: {kind: Deployment}",
          "            patch: |",
          "              - op: replace",
          "                path: /spec/replicas",
          "                value: 4",
          "",
        ].join("\n"),
      })
      .commitAll("A release with post-renderers");
    const { code, result } = await e.sync({ repo: other.dir, path: "c", stack: "post-render" });
    assert.equal(code, 0, result.message);
    const deploy = await e.getJson<K8sObject>("deployment", "post-webapp", "-n", "default");
    assert.equal(deploy.spec?.replicas, 4);
    assert.equal(deploy.metadata.labels?.team, "platform");
    assert.equal(await e.exists("service", "post-webapp", "-n", "default"), false);
  });

  it("renders a chart from another git repository, cloned at the ref", async () => {
    const e = env();
    const chartsRepo = await ConfigRepo.create(path.join(e.dir, "charts-git"), "helm");
    fs.cpSync(path.join(ferryRoot(), "test", "fixtures", "charts", "webapp"), path.join(chartsRepo.dir, "charts", "webapp"), {
      recursive: true,
    });
    await chartsRepo.commitAll("Add the webapp chart");
    // Repo content may name remote git repositories only: the charts repo is served over git's smart HTTP on loopback.
    const gitServer = await startGitHttpServer(e.dir);
    try {
      const other = await ConfigRepo.create(path.join(e.dir, "git-chart-config"), "helm");
      await other
        .edit({
          "c/release.yaml": [
            "apiVersion: helm.fluxcd.io/v1",
            "kind: HelmRelease",
            "metadata: {name: from-git, namespace: default}",
            "spec:",
            `  chart: {git: "${gitServer.url}/charts-git", ref: main, path: charts/webapp}`,
            "  values: {greeting: from a git chart}",
            "",
          ].join("\n"),
        })
        .commitAll("A release from a git chart");
      const { code, result } = await e.sync({ repo: other.dir, path: "c", stack: "git-chart" });
      assert.equal(code, 0, result.message);
      const cm = await e.getJson<K8sObject>("configmap", "default-from-git-webapp", "-n", "default");
      assert.equal(cm.data?.greeting, "from a git chart");
      assert.ok(gitServer.requests.some((r) => r.path.startsWith("/charts-git/info/refs")));
    } finally {
      await gitServer.close();
    }
  });

  it("removes every object of a HelmRelease removed from Git", async () => {
    const e = env();
    await repo.commitStep("step3", "Remove the team-a release");
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.deepEqual(result.objects.map((o) => `${o.change} ${o.object}`).sort(), [
      "deleted ConfigMap/team-a/web-webapp",
      "deleted Deployment/team-a/web-webapp",
      "deleted Service/team-a/web-webapp",
    ]);
    assert.equal(await e.exists("deployment", "web-webapp", "-n", "team-a"), false);
    assert.ok(await e.exists("deployment", "web-webapp", "-n", "team-b"));
  });

  it("renders real-world charts as helm-controller does: kubeVersion and capabilities, hooks run not managed, dependencies built; a second sync changes nothing", async () => {
    const e = env();
    const gitServer = await startGitHttpServer(e.dir);
    try {
      const real = await ConfigRepo.create(path.join(e.dir, "helm-real"), "helm");
      // An umbrella chart in the repo whose dependencies are not vendored: one from the chart repository, one from a folder.
      for (const chart of ["umbrella", "configmaps"]) {
        fs.cpSync(path.join(ferryRoot(), "test", "fixtures", "charts", chart), path.join(real.dir, "charts", chart), { recursive: true });
      }
      const chartYaml = path.join(real.dir, "charts", "umbrella", "Chart.yaml");
      fs.writeFileSync(chartYaml, fs.readFileSync(chartYaml, "utf8").replace("${CHART_REPO}", charts.url));
      const v2 = (name: string, chart: string, version: string) =>
        [
          "apiVersion: helm.toolkit.fluxcd.io/v2",
          "kind: HelmRelease",
          `metadata: {name: ${name}, namespace: real}`,
          "spec:",
          "  interval: 10m",
          `  chart: {spec: {chart: ${chart}, version: "${version}", sourceRef: {kind: HelmRepository, name: local}}}`,
          "",
        ].join("\n");
      await real
        .edit({
          "clusters/dev/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: real}\n",
          "clusters/dev/repository.yaml": [
            "apiVersion: source.toolkit.fluxcd.io/v1",
            "kind: HelmRepository",
            "metadata: {name: local, namespace: real}",
            `spec: {interval: 10m, url: "${charts.url}"}`,
            "",
          ].join("\n"),
          "clusters/dev/modern.yaml": v2("modern", "modern", "6.x"),
          "clusters/dev/hooked.yaml": v2("hooked", "hooked", "0.1.0"),
          "clusters/dev/umbrella.yaml": [
            "apiVersion: helm.fluxcd.io/v1",
            "kind: HelmRelease",
            "metadata: {name: umbrella, namespace: real}",
            "spec:",
            "  releaseName: umbrella",
            `  chart: {git: "${gitServer.url}/helm-real", ref: main, path: charts/umbrella}`,
            "",
          ].join("\n"),
        })
        .commitAll("Real-world charts");
      const first = await e.sync({ repo: real.dir, path: "clusters/dev", stack: "real" });
      assert.equal(first.code, 0, `${first.result.message}\n${first.stderr}`);

      // kubeVersion ">=1.30.0-0" renders, for this cluster's version and APIs, by a helm that knows its own version.
      const server = JSON.parse(await e.kubectl("version", "-o", "json")) as { serverVersion: { gitVersion: string } };
      const caps = await e.getJson<K8sObject>("configmap", "modern-capabilities", "-n", "real");
      assert.deepEqual(caps.data, {
        greeting: "hello",
        kubeVersion: server.serverVersion.gitVersion,
        helmVersion: "v3.19.0",
        hpa: "autoscaling/v2",
        // Served APIs include custom ones: the chart sees the Widget CRD an earlier test installed.
        widgets: String(await e.exists("crd", "widgets.example.com")),
      });

      // The pre-install Job ran to completion before the release's objects; the post-install hook
      // stays (before-hook-creation), the preflight hook is gone (hook-succeeded); the test Pod never ran.
      const job = await e.getJson<{ status?: { succeeded?: number } }>("job", "hooked-migrate", "-n", "real");
      assert.equal(job.status?.succeeded, 1);
      assert.ok(await e.exists("configmap", "hooked-installed", "-n", "real"));
      assert.equal(await e.exists("configmap", "hooked-preflight", "-n", "real"), false);
      const pods = await e.getJson<{ items: K8sObject[] }>("pods", "-n", "real");
      assert.deepEqual(
        pods.items.filter((p) => p.metadata.name.includes("-test-")),
        [],
      );
      // Hooks are not managed objects.
      const managed = first.result.objects.map((o) => o.object);
      assert.ok(managed.includes("ConfigMap/real/hooked-config"), managed.join(", "));
      assert.deepEqual(
        managed.filter((o) => /migrate|installed|preflight|-test-/.test(o)),
        [],
      );

      // The umbrella chart's dependencies were built (in a scratch copy: the checkout has no charts/ written).
      assert.equal((await e.getJson<K8sObject>("configmap", "umbrella-umbrella", "-n", "real")).data?.dependencies, "2");
      assert.equal((await e.getJson<K8sObject>("configmap", "umbrella-webapp", "-n", "real")).data?.greeting, "from the umbrella");
      assert.equal((await e.getJson<K8sObject>("configmap", "umbrella-extra", "-n", "real")).data?.source, "file dependency");

      // Converged: a second sync changes nothing and runs no hook.
      const jobUid = (await e.getJson<K8sObject>("job", "hooked-migrate", "-n", "real")).metadata.uid;
      const second = await e.sync({ repo: real.dir, path: "clusters/dev", stack: "real" });
      assert.equal(second.code, 0, second.result.message);
      assert.deepEqual(second.result.objects, []);
      assert.equal(second.result.changes?.created, 0);
      assert.equal(second.result.changes?.updated, 0);
      assert.equal((await e.getJson<K8sObject>("job", "hooked-migrate", "-n", "real")).metadata.uid, jobUid);
    } finally {
      await gitServer.close();
    }
  });
});
