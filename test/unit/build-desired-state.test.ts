import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { unitKey } from "../../src/desired-state/desired-state";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import { DesiredStateError, GuardError } from "../../src/desired-state/manifest-error";
import { sourcePolicy } from "../../src/desired-state/source-policy";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { OutboundRefusedError } from "../../src/render/outbound";
import { strictBuild } from "../helpers/assertions";
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
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base, namespace: apps}\ndata:\n  values.yaml: |\n    a: from-git\n    b: from-git\n    nested: {x: 1, z: 1}\n",
      "c/release.yaml": release(
        "app",
        chartRef +
          "  valuesFrom:\n" +
          "    - {kind: ConfigMap, name: base}\n" +
          "    - {kind: Secret, name: live}\n" +
          "    - {kind: Secret, name: live, valuesKey: token, targetPath: auth.token}\n" +
          "    - {kind: ConfigMap, name: absent, optional: true}\n" +
          "  values: {a: inline, nested: {z: 2}}\n",
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
    assert.deepEqual(tools.helmRequests[0]?.values, { a: "inline", b: "from-cluster", nested: { x: 1, z: 2 }, auth: { token: "t0k3n" } });
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
      strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools({ app: appChart }))),
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
    await assert.rejects(
      strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools())),
      GuardError,
    );
    const allowed = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools(), { allowEmpty: true });
    assert.equal(allowed.units.length, 0);
  });

  it("substitutes postBuild.substituteFrom variables (Git first, then the cluster; substitute wins) and masks Secret values", async () => {
    const repo = tempDir();
    const kustomization = (from: string) =>
      "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\nspec:\n  path: ./apps\n  prune: true\n  postBuild:\n" +
      `    substitute: {region: inline}\n    substituteFrom: ${from}\n`;
    writeFiles(repo, {
      "c/k.yaml": kustomization(
        "[{kind: ConfigMap, name: vars}, {kind: Secret, name: creds}, {kind: ConfigMap, name: gone, optional: true}]",
      ),
      "c/vars.yaml":
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vars, namespace: flux-system}\ndata: {cluster: prod, region: from-cm, token: from-cm}\n",
      "apps/cm.yaml":
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\ndata: {cluster: '${cluster}', region: '${region}', token: '${token}'}\n",
    });
    const live = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "creds", namespace: "flux-system" },
      data: { token: Buffer.from("s3cr3t-token\n").toString("base64") },
    };
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools({}, [live]));
    const unit = state.units.find((u) => u.kind === "Kustomization")!;
    assert.deepEqual(unit.objects[0]?.object.data, { cluster: "prod", region: "inline", token: "s3cr3t-token" });
    assert.equal(unit.objects[0]?.sensitive, true);
    assert.ok(state.sensitive?.includes("s3cr3t-token"));

    writeFiles(repo, { "c/k.yaml": kustomization("[{kind: Secret, name: absent}]") });
    await assert.rejects(
      strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools())),
      /Kustomization\/flux-system\/apps: Secret\/flux-system\/absent \(postBuild\.substituteFrom\) is neither in the repository nor in the cluster; add it, or mark the entry `optional: true`/,
    );
  });
});

describe("buildDesiredState: chart source credentials and outbound refusals", () => {
  const secret = (name: string, namespace: string, data: Record<string, string>) =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: ${namespace}}\nstringData: ${JSON.stringify(data)}\n`;
  const helmRepo = (secretRef: string) =>
    `apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts, namespace: apps}\nspec: {url: https://charts.example.com, secretRef: ${secretRef}}\n`;
  const gitRepo = (secretRef: string) =>
    `apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: charts, namespace: apps}\nspec: {url: "https://git.example.com/charts", ref: {branch: main}${secretRef ? `, secretRef: ${secretRef}` : ""}}\n`;
  const gitChart = "  chart: {spec: {chart: charts/app, sourceRef: {kind: GitRepository, name: charts}}}\n";

  it("passes a HelmRepository's own secretRef credentials to helm, from the Secret declared in Git", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": helmRepo("{name: repo-creds}"),
      "c/secret.yaml": secret("repo-creds", "apps", { username: "robot", password: "hunter2" }),
      "c/release.yaml": release("app", chartRef),
    });
    const tools = new FakeRenderTools({ app: appChart });
    await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    assert.deepEqual(tools.helmRequests[0]?.auth, { username: "robot", password: "hunter2" });
    assert.equal(tools.helmRequests[0]?.unit, "HelmRelease/apps/app");
    assert.equal(tools.helmRequests[0]?.repo, "https://charts.example.com");
  });

  it("reads a GitRepository's secretRef from the live cluster when Git does not declare it, and passes nothing without one", async () => {
    const repo = tempDir();
    writeFiles(repo, { "c/source.yaml": gitRepo("{name: git-creds}"), "c/release.yaml": release("app", gitChart) });
    const live = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "git-creds", namespace: "apps" },
      data: {
        identity: Buffer.from("KEY").toString("base64"),
        known_hosts: Buffer.from("git.example.com ssh-ed25519 AAAA").toString("base64"),
      },
    };
    const tools = new FakeRenderTools({}, [live]);
    await assert.rejects(strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools)), /no git in unit tests/);
    assert.deepEqual(tools.gitRequests[0]?.request, {
      unit: "HelmRelease/apps/app",
      auth: { username: undefined, password: undefined, identity: "KEY", knownHosts: "git.example.com ssh-ed25519 AAAA" },
    });

    writeFiles(repo, { "c/source.yaml": gitRepo("") });
    const bare = new FakeRenderTools();
    await assert.rejects(strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), bare)), /no git in unit tests/);
    assert.deepEqual(bare.gitRequests[0]?.request, { unit: "HelmRelease/apps/app", auth: undefined });
  });

  it("refuses a secretRef in another namespace by name unless cross-namespace refs are allowed, and names a missing Secret", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/source.yaml": helmRepo("{name: creds, namespace: team-b}"),
      "c/secret.yaml": secret("creds", "team-b", { username: "u", password: "p" }),
      "c/release.yaml": release("app", chartRef),
    });
    await assert.rejects(
      strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools({ app: appChart }))),
      /HelmRelease\/apps\/app: HelmRepository\/apps\/charts `spec\.secretRef` names Secret\/team-b\/creds, in another namespace than the source's; refused\n\s+fix: .*ferry:allowCrossNamespaceRefs/,
    );
    const allowed = new FakeRenderTools({ app: appChart });
    await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), allowed, {
      policy: sourcePolicy({ allowCrossNamespaceRefs: true }),
    });
    assert.deepEqual(allowed.helmRequests[0]?.auth, { username: "u", password: "p" });

    writeFiles(repo, { "c/source.yaml": helmRepo("{name: nowhere}") });
    await assert.rejects(
      strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools({ app: appChart }))),
      /HelmRelease\/apps\/app: Secret\/apps\/nowhere \(`spec\.secretRef` of HelmRepository\/apps\/charts\) is neither in the repository nor in the cluster/,
    );
  });

  it("never skips an externalSourceRef the policy refuses, even when it is optional; hides credentials in its URL", async () => {
    const repo = tempDir();
    const v1 = (url: string, optional: boolean) =>
      `apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata: {name: app, namespace: apps}\nspec:\n  chart: {repository: "https://charts.example.com", name: app, version: 1.0.0}\n  valuesFrom: [{externalSourceRef: {url: "${url}", optional: ${optional}}}]\n`;
    writeFiles(repo, { "c/release.yaml": v1("http://169.254.169.254/latest/meta-data", true) });
    const tools = new FakeRenderTools({ app: appChart });
    tools.fetcher = (url, unit) => Promise.reject(new OutboundRefusedError(`${unit}: ${url} refused`));
    await assert.rejects(
      strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools)),
      /HelmRelease\/apps\/app: http:\/\/169\.254\.169\.254\/latest\/meta-data refused/,
    );

    writeFiles(repo, { "c/release.yaml": v1("https://user:s3cret@values.example.com/v.yaml", false) });
    tools.fetcher = () => Promise.reject(new Error("HTTP 404"));
    await assert.rejects(strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools)), (err: unknown) => {
      assert.match(String(err), /cannot fetch values from https:\/\/\*\*\*@values\.example\.com\/v\.yaml: HTTP 404/);
      assert.doesNotMatch(String(err), /s3cret/);
      return true;
    });
  });
});
