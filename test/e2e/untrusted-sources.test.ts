// End to end: a config repo's content is untrusted input. Its credentials go to its own URL only,
// and the URLs its content names are checked against the stack's policy before any request.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ferryRoot } from "../../src/lib/paths";
import { ReconcileResult } from "../../src/reconcile/reconcile-result";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";
import { RecordingServer, startGitHttpServer, startRecordingServer } from "../helpers/git-http-server";

const TOKEN = "ghs_e2eSecretToken0123456789";
const BASIC = `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString("base64")}`;

const helmRelease = (name: string, chart: string, extra = "") =>
  `apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: ${name}, namespace: default}\nspec:\n  chart: {spec: ${chart}}\n${extra}`;
const source = (kind: string, name: string, spec: string) =>
  `apiVersion: source.toolkit.fluxcd.io/v1\nkind: ${kind}\nmetadata: {name: ${name}, namespace: default}\nspec: ${spec}\n`;
const fromGitRepository = (name: string) => `{chart: charts/webapp, sourceRef: {kind: GitRepository, name: ${name}}}`;
const fromHelmRepository = (name: string) => `{chart: webapp, version: 1.0.0, sourceRef: {kind: HelmRepository, name: ${name}}}`;

describe("untrusted repo content", () => {
  const env = useE2E();
  /** Serves the config repo and, beside it, a repository whose name starts like it (`config-evil`). */
  let trusted: RecordingServer;
  /** An attacker's git server and plain HTTP server. */
  let attackerGit: RecordingServer;
  let attackerHttp: RecordingServer;
  let config: ConfigRepo;

  const sync = async (extra: readonly string[]) => {
    const e = env();
    const r = await e.ferry(
      [
        "sync",
        "--stack",
        "untrusted",
        "--repo",
        `${trusted.url}/config`,
        "--path",
        "clusters/dev",
        "--kubeconfig",
        e.cluster.kubeconfig,
        "-o",
        "json",
        ...extra,
      ],
      { FERRY_GIT_TOKEN: TOKEN, FERRY_LOG_FORMAT: "json" },
    );
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(TOKEN), "the token is never printed");
    return { ...r, result: JSON.parse(r.stdout) as ReconcileResult };
  };

  before(async () => {
    const e = env();
    const chartsRepo = async (dir: string) => {
      const repo = await ConfigRepo.create(dir, "helm");
      fs.cpSync(path.join(ferryRoot(), "test", "fixtures", "charts", "webapp"), path.join(dir, "charts", "webapp"), { recursive: true });
      await repo.commitAll("The webapp chart");
    };
    await chartsRepo(path.join(e.dir, "trusted", "config-evil"));
    await chartsRepo(path.join(e.dir, "attacker", "charts"));
    config = await ConfigRepo.create(path.join(e.dir, "trusted", "config"), "helm");
    trusted = await startGitHttpServer(path.join(e.dir, "trusted"));
    attackerGit = await startGitHttpServer(path.join(e.dir, "attacker"));
    attackerHttp = await startRecordingServer();
  });
  after(async () => {
    await Promise.all([trusted?.close(), attackerGit?.close(), attackerHttp?.close()]);
  });

  it("sends FERRY_GIT_TOKEN to the config repo only: chart.git and GitRepository URLs elsewhere get no Authorization", async () => {
    await config
      .edit({
        "clusters/dev/v1-git.yaml": [
          "apiVersion: helm.fluxcd.io/v1",
          "kind: HelmRelease",
          "metadata: {name: v1-git, namespace: default}",
          "spec:",
          `  chart: {git: "${attackerGit.url}/charts", ref: main, path: charts/webapp}`,
          "",
        ].join("\n"),
        "clusters/dev/v2-git.yaml": [
          source("GitRepository", "attacker", `{url: "${attackerGit.url}/charts", ref: {branch: main}}`),
          helmRelease("v2-git", fromGitRepository("attacker")),
        ].join("---\n"),
        // Same host and port as the config repo, a path that merely starts like it.
        "clusters/dev/lookalike.yaml": [
          source("GitRepository", "lookalike", `{url: "${trusted.url}/config-evil", ref: {branch: main}}`),
          helmRelease("lookalike", fromGitRepository("lookalike")),
        ].join("---\n"),
      })
      .commitAll("Charts from other git repositories");

    const { code, result, stderr } = await sync(["--local-addresses", "local-cluster"]);
    assert.equal(code, 0, `${result.message}\n${stderr}`);
    assert.ok(await env().exists("configmap", "default-v1-git-webapp", "-n", "default"));
    assert.ok(await env().exists("configmap", "v2-git-webapp", "-n", "default"));
    assert.ok(await env().exists("configmap", "lookalike-webapp", "-n", "default"));

    // The config repo got the token; the attacker's server and the look-alike path were fetched without it.
    const own = trusted.requests.filter((r) => r.path.startsWith("/config/"));
    const lookalike = trusted.requests.filter((r) => r.path.startsWith("/config-evil/"));
    assert.ok(own.length > 0 && own.every((r) => r.headers.authorization === BASIC));
    assert.ok(lookalike.length > 0, "the look-alike repository was fetched");
    assert.ok(attackerGit.requests.length > 0, "the attacker's repository was fetched");
    for (const r of [...lookalike, ...attackerGit.requests]) {
      assert.equal(r.headers.authorization, undefined, `${r.method} ${r.path} carried credentials`);
    }
    // Every outbound fetch is logged with the stack and the unit (a run that created objects builds
    // twice when charts read the cluster: see "settle").
    const logged = stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === "outbound fetch");
    assert.deepEqual(
      [...new Set(logged.map((l) => `${String(l.stack)} ${String(l.unit)} ${String(l.kind)}`))].sort(),
      ["HelmRelease/default/lookalike", "HelmRelease/default/v1-git", "HelmRelease/default/v2-git"].map((u) => `untrusted ${u} git`),
    );
  });

  it("refuses hosts outside allowedHosts, local paths and file:// as git URLs, and an optional externalSourceRef, before any request", async () => {
    const byName = attackerHttp.url.replace("127.0.0.1", "localhost");
    const evil = path.join(env().dir, "trusted", "config-evil");
    await config
      .edit({
        "clusters/dev/v1-git.yaml": undefined,
        "clusters/dev/v2-git.yaml": undefined,
        "clusters/dev/outside.yaml": [
          source("HelmRepository", "outside", `{url: "${byName}/charts"}`),
          helmRelease("outside", fromHelmRepository("outside")),
        ].join("---\n"),
        "clusters/dev/values-url.yaml": [
          "apiVersion: helm.fluxcd.io/v1",
          "kind: HelmRelease",
          "metadata: {name: values-url, namespace: default}",
          "spec:",
          `  chart: {git: "${trusted.url}/config-evil", ref: main, path: charts/webapp}`,
          `  valuesFrom: [{externalSourceRef: {url: "${byName}/latest/meta-data", optional: true}}]`,
          "",
        ].join("\n"),
        "clusters/dev/local-git.yaml": [
          "apiVersion: helm.fluxcd.io/v1",
          "kind: HelmRelease",
          "metadata: {name: local-git, namespace: default}",
          "spec:",
          `  chart: {git: "${evil}", ref: main, path: charts/webapp}`,
          "",
        ].join("\n"),
        "clusters/dev/file-git.yaml": [
          source("GitRepository", "file-git", `{url: "file://${evil}", ref: {branch: main}}`),
          helmRelease("file-git", fromGitRepository("file-git")),
        ].join("---\n"),
      })
      .commitAll("Sources the policy refuses");

    const { code, result } = await sync(["--allowed-host", "127.0.0.1", "--local-addresses", "local-cluster"]);
    assert.notEqual(code, 0);
    assert.equal(result.reason, "BuildFailed");
    const message = result.message ?? "";
    assert.match(
      message,
      /HelmRelease\/default\/outside: http:\/\/localhost:\d+\/charts names host localhost, which ferry:allowedHosts \(127\.0\.0\.1\) does not list; no request was made\n\s+fix: add "localhost" to ferry:allowedHosts/,
    );
    assert.match(message, /HelmRelease\/default\/values-url: http:\/\/localhost:\d+\/latest\/meta-data names host localhost/);
    assert.match(
      message,
      /HelmRelease\/default\/local-git: `spec\.chart\.git` "\/[^"]*config-evil" is a local path; .*\n\s+fix: use the repository's remote URL/,
    );
    assert.match(
      message,
      /HelmRelease\/default\/file-git: GitRepository\/default\/file-git: `spec\.url` "file:\/\/[^"]*" is a file:\/\/ URL/,
    );
    assert.deepEqual(attackerHttp.requests, [], "nothing reached the attacker's HTTP server");
    // The cluster keeps what the last good sync applied.
    assert.ok(await env().exists("configmap", "v2-git-webapp", "-n", "default"));
  });

  it("refuses loopback addresses when ferry:localAddresses is refuse, naming the setting, before any request", async () => {
    await config
      .edit({
        "clusters/dev/outside.yaml": undefined,
        "clusters/dev/values-url.yaml": undefined,
        "clusters/dev/local-git.yaml": undefined,
        "clusters/dev/file-git.yaml": undefined,
        "clusters/dev/loopback.yaml": [
          source("HelmRepository", "loopback", `{url: "${attackerHttp.url}/charts"}`),
          helmRelease("loopback", fromHelmRepository("loopback")),
        ].join("---\n"),
      })
      .commitAll("A chart repository on loopback");
    const evilBefore = trusted.requests.filter((r) => r.path.startsWith("/config-evil/")).length;
    const { code, result } = await sync(["--local-addresses", "refuse"]);
    assert.notEqual(code, 0);
    assert.equal(result.reason, "BuildFailed");
    const message = result.message ?? "";
    assert.match(
      message,
      /HelmRelease\/default\/loopback: http:\/\/127\.0\.0\.1:\d+\/charts reaches 127\.0\.0\.1 \(loopback\), which is refused because ferry:localAddresses is refuse; no request was made\n\s+fix: .*--local-addresses allow/,
    );
    assert.match(message, /HelmRelease\/default\/lookalike: http:\/\/127\.0\.0\.1:\d+\/config-evil reaches 127\.0\.0\.1 \(loopback\)/);
    assert.deepEqual(attackerHttp.requests, []);
    assert.equal(trusted.requests.filter((r) => r.path.startsWith("/config-evil/")).length, evilBefore);
  });
});
