// End to end: a config repo (an unmerged branch is untrusted input) cannot make a run read files
// outside its checkout, or fetch remote Kustomize bases, whatever it names or links to.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { runChecked } from "../../src/lib/exec";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E, SyncRun } from "../helpers/e2e";

/** An HTTP server on loopback that records every request and serves files below a folder (a dumb git server). */
interface RecordingServer {
  readonly url: string;
  readonly requests: string[];
  close(): Promise<void>;
}

async function startServer(root: string | undefined): Promise<RecordingServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const file = root && path.join(root, decodeURIComponent((req.url ?? "/").split("?")[0]!));
    if (file && file.startsWith(root + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile()) {
      fs.createReadStream(file).pipe(res);
      return;
    }
    // What an attacker would serve as a remote base: an object to apply.
    res.writeHead(root ? 404 : 200).end(root ? "not found" : "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaked-remote}\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const leakedChart = (name: string, template: string) => ({
  "Chart.yaml": `apiVersion: v2\nname: ${name}\nversion: 0.1.0\n`,
  "templates/cm.yaml": template,
});

describe("confinement: a run reads only its checkout", () => {
  const env = useE2E();
  let outside: string;
  let attacker: RecordingServer;
  let gitServer: RecordingServer;
  let chartsUrl: string;

  const write = (root: string, files: Record<string, string>): void => {
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), text);
    }
  };

  /** A refused run: exit 1, BuildFailed, every expected text in the message, nothing leaked applied. */
  const assertRefused = async (run: SyncRun, expected: readonly string[]): Promise<void> => {
    assert.equal(run.code, 1, `${run.result.message}\n${run.stderr}`);
    assert.equal(run.result.reason, "BuildFailed", run.result.message);
    for (const text of expected)
      assert.ok(run.result.message?.includes(text), `expected ${JSON.stringify(text)} in:\n${run.result.message}`);
    assert.equal(run.result.changes, undefined);
    const leaked = await env().kubectl("get", "configmaps,secrets", "-A", "-o", "name");
    assert.doesNotMatch(leaked, /leaked|stolen/);
  };

  before(async () => {
    const e = env();
    // What the repo must not reach: files of this machine outside the checkout.
    outside = fs.realpathSync(e.dir) + "/outside";
    write(outside, {
      "kustomization.yaml": "resources: [cm.yaml]\n",
      "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaked-outside, namespace: default}\n",
      "token.txt": "s3cr3t-token",
      "chart/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
      "chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaked-subchart, namespace: default}\n",
    });
    attacker = await startServer(undefined);

    // A chart repository in git, served over HTTP on loopback, whose charts link outside.
    const src = path.join(e.dir, "charts-src");
    const charts = await ConfigRepo.create(src, "helm");
    write(
      path.join(src, "charts", "files"),
      leakedChart(
        "files",
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaked-files, namespace: default}\ndata: {token: {{ .Files.Get "token.txt" | quote }}}\n',
      ),
    );
    fs.symlinkSync(path.join(outside, "token.txt"), path.join(src, "charts", "files", "token.txt"));
    write(path.join(src, "charts", "parent"), leakedChart("parent", "# the subchart does the work\n"));
    fs.mkdirSync(path.join(src, "charts", "parent", "charts"));
    fs.symlinkSync(path.join(outside, "chart"), path.join(src, "charts", "parent", "charts", "sub"));
    await charts.commitAll("Charts that link outside the repository");
    const served = path.join(e.dir, "served");
    await runChecked("git", ["clone", "--quiet", "--bare", src, path.join(served, "charts.git")]);
    await runChecked("git", ["-C", path.join(served, "charts.git"), "update-server-info"]);
    gitServer = await startServer(served);
    chartsUrl = `${gitServer.url}/charts.git`;
  });
  after(async () => {
    await attacker?.close();
    await gitServer?.close();
  });

  it("refuses a relative Kustomize base that leaves the checkout", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "relative"), "kustomize");
    // From <state>/checkouts/relative/c/app, five levels up is the test's folder.
    await repo.edit({ "c/app/kustomization.yaml": "resources:\n  - ../../../../../outside\n" }).commitAll("Reach outside");
    const run = await e.sync({ repo: repo.dir, path: "c", stack: "relative" });
    await assertRefused(run, [
      'c/app/kustomization.yaml:2 names "../../../../../outside" (resources)',
      `which resolves to ${outside}, outside the checkout`,
    ]);
  });

  it("refuses a Kustomize base in another stack's checkout on the same machine", async () => {
    const e = env();
    const victim = await ConfigRepo.create(path.join(e.dir, "victim"), "kustomize");
    await victim
      .edit({
        "v/app/kustomization.yaml": "resources: [secret.yaml]\n",
        "v/app/secret.yaml":
          "apiVersion: v1\nkind: Secret\nmetadata: {name: victim-secret, namespace: default}\nstringData: {password: hunter2}\n",
      })
      .commitAll("The victim's Secret");
    const victimRun = await e.sync({ repo: victim.dir, path: "v", stack: "victim" });
    assert.equal(victimRun.code, 0, victimRun.result.message);

    const repo = await ConfigRepo.create(path.join(e.dir, "neighbour"), "kustomize");
    await repo
      .edit({ "a/k/kustomization.yaml": "namePrefix: stolen-\nresources:\n  - ../../../victim/v/app\n" })
      .commitAll("Read the victim's checkout");
    const run = await e.sync({ repo: repo.dir, path: "a", stack: "neighbour" });
    await assertRefused(run, [
      'a/k/kustomization.yaml:3 names "../../../victim/v/app" (resources)',
      `which resolves to ${path.join(fs.realpathSync(e.dir), "state", "checkouts", "victim", "v", "app")}, outside the checkout`,
    ]);
  });

  it("refuses a chart whose file read by .Files.Get is a symbolic link outside, and one whose subchart is", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "charts-config"), "helm");
    const release = (name: string) =>
      [
        "apiVersion: helm.fluxcd.io/v1",
        "kind: HelmRelease",
        `metadata: {name: ${name}, namespace: default}`,
        "spec:",
        `  chart: {git: ${chartsUrl}, ref: main, path: charts/${name}}`,
        "",
      ].join("\n");
    await repo.edit({ "c/files.yaml": release("files"), "c/parent.yaml": release("parent") }).commitAll("Releases of linking charts");
    const run = await e.sync({ repo: repo.dir, path: "c", stack: "charts" });
    await assertRefused(run, [
      `c/files.yaml:1 (document 1): HelmRelease/default/files: charts/files/token.txt is a symbolic link to ${outside}/token.txt, outside the checkout`,
      `c/parent.yaml:1 (document 1): HelmRelease/default/parent: charts/parent/charts/sub is a symbolic link to ${outside}/chart, outside the checkout`,
    ]);
    assert.doesNotMatch(JSON.stringify(run.result) + run.stderr, /s3cr3t-token/);
    assert.ok(gitServer.requests.length > 0, "the chart repository was cloned over HTTP");
  });

  it("refuses remote Kustomize bases before Kustomize runs: the server gets no request", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "remote"), "kustomize");
    await repo
      .edit({
        "r/app/kustomization.yaml": `resources:\n  - ${attacker.url}/remote.yaml\n  - ${attacker.url}/org/repo.git//app?ref=main\n`,
      })
      .commitAll("Remote bases");
    const run = await e.sync({ repo: repo.dir, path: "r", stack: "remote" });
    await assertRefused(run, [
      `r/app/kustomization.yaml:2 names "${attacker.url}/remote.yaml" (resources: http URL), a remote base, and remote bases are off`,
      `r/app/kustomization.yaml:3 names "${attacker.url}/org/repo.git//app?ref=main"`,
      "ferry:allowRemoteBases",
    ]);
    assert.deepEqual(attacker.requests, []);
  });
});
