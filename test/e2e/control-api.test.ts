// End to end: the runner's control API wants a bearer token and refuses other sites; a YAML alias bomb
// is refused at build time with its file and line.
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { StackStatus } from "../../src/agent/stack-worker";
import { freePort } from "../../src/lib/net";
import { aliasBomb } from "../helpers/alias-bomb";
import { ConfigRepo } from "../helpers/config-repo";
import { eventually, useE2E } from "../helpers/e2e";
import { RunnerProcess, startRunner, writeRunnerConfig } from "../helpers/runner-process";

const TOKEN = "e2e-control-api-token-0123456789";
const settings = (value: string) =>
  `apiVersion: v1\nkind: Namespace\nmetadata: {name: api}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: api}\ndata: {value: "${value}"}\n`;

describe("control API and bounded input", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  let runner: RunnerProcess | undefined;
  let webhooksUrl = "";
  const shas: string[] = [];

  const value = async () => (await env().getJson<{ data: { value: string } }>("configmap", "settings", "-n", "api")).data.value;
  const status = async (): Promise<StackStatus> => (await (await fetch(`${runner!.url}/api/stacks/dev`)).json()) as StackStatus;
  const resume = (headers: Record<string, string>, body?: string) =>
    fetch(`${runner!.url}/api/stacks/dev/resume`, { method: "POST", headers, body });

  before(async () => {
    const e = env();
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "foundation");
    // A good release is applied, a bad one is committed, and an incident rollback pins the good one.
    shas.push(await repo.edit({ "clusters/dev/settings.yaml": settings("good") }).commitAll("Settings good"));
    const synced = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(synced.code, 0, synced.result.message);
    shas.push(await repo.edit({ "clusters/dev/settings.yaml": settings("bad") }).commitAll("Settings bad"));
    const kubeArgs = ["--stack", "dev", "--repo", repo.dir, "--path", "clusters/dev", "--kubeconfig", e.cluster.kubeconfig];
    const rollback = await e.ferry(["rollback", ...kubeArgs, "--to", shas[0]!, "--by", "oncall"]);
    assert.equal(rollback.code, 0, `${rollback.stdout}\n${rollback.stderr}`);
    assert.equal(await value(), "good");
    const config = path.join(e.dir, "ferry.yaml");
    writeRunnerConfig(config, {
      listen: `127.0.0.1:${await freePort()}`,
      apiListen: `127.0.0.1:${await freePort()}`,
      retryDelay: "1s",
      stacks: [
        {
          name: "dev",
          repo: repo.dir,
          ref: "main",
          path: "clusters/dev",
          kubeconfig: e.cluster.kubeconfig,
          pollInterval: "1s",
          driftInterval: "10m",
          watch: false,
        },
      ],
    });
    runner = await startRunner(config, { ...e.env, FERRY_API_TOKEN: TOKEN });
    webhooksUrl = /webhooks on (http:\/\/\S+)/.exec(runner.output())?.[1] ?? "";
    await eventually(
      "the runner applied the pinned commit",
      async () => {
        const st = await status();
        return st.condition === "Ready" && st.history.length >= 1;
      },
      90_000,
    );
    assert.equal((await status()).pinned?.revision, shas[0]);
  });
  after(async () => {
    await runner?.stop();
  });

  it("refuses an anonymous resume (401) and a cross-origin one (403); the pin stays", async () => {
    const anonymous = await resume({});
    assert.equal(anonymous.status, 401);
    assert.match(((await anonymous.json()) as { error: string }).error, /bearer token.*FERRY_API_TOKEN/);
    const wrong = await resume({ Authorization: "Bearer not-the-token-000000000" });
    assert.equal(wrong.status, 401);
    // What a web page could send: its own Origin, a "simple" text/plain body.
    const crossSite = await resume({ Authorization: `Bearer ${TOKEN}`, Origin: "http://evil.example" });
    assert.equal(crossSite.status, 403);
    const simplePost = await resume({ Authorization: `Bearer ${TOKEN}`, "Content-Type": "text/plain" }, "resume");
    assert.equal(simplePost.status, 415);
    // The API does not listen on the webhook address (ferry resume with the token: rollback.test.ts).
    assert.equal((await fetch(`${webhooksUrl}/api/stacks/dev`)).status, 404);
    const cli = await env().ferry(["suspend", "dev", "--server", runner!.url], { FERRY_API_TOKEN: "", FERRY_API_TOKEN_FILE: "" });
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /missing or wrong bearer token/);

    const st = await status();
    assert.equal(st.pinned?.revision, shas[0]);
    assert.equal(st.mode, "enforce");
    assert.equal(await value(), "good");
    assert.ok(!runner!.output().includes(TOKEN), "the runner never prints its token");
    await runner!.stop();
    runner = undefined;
  });

  it("refuses a YAML alias bomb at build time, naming its file and line, and applies nothing", async () => {
    const e = env();
    await repo.edit({ "clusters/bomb/bomb.yaml": aliasBomb() }).commitAll("A manifest that expands to billions of nodes");
    const r = await e.sync({ repo: repo.dir, path: "clusters/bomb", stack: "bomb" });
    assert.equal(r.code, 1, r.result.message);
    assert.equal(r.result.reason, "BuildFailed");
    assert.match(r.result.message ?? "", /clusters\/bomb\/bomb\.yaml:10:10 .*YAML aliases expand this document by more than 1 MiB/);
    assert.equal(await e.exists("configmap", "bomb", "-n", "default"), false);
  });
});
