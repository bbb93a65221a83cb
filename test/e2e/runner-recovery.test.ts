// End to end: a runner killed mid-update, and two runners on one stack.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { runChecked } from "../../src/lib/exec";
import { pulumiEnv } from "../../src/reconcile/pulumi-stack";
import { resolveSyncSettings } from "../../src/reconcile/stack-settings";
import { StackStatus } from "../../src/agent/stack-worker";
import { ConfigRepo } from "../helpers/config-repo";
import { E2E, eventually, useE2E } from "../helpers/e2e";
import { RunnerProcess, startRunner, writeRunnerConfig } from "../helpers/runner-process";

const configMaps = (ns: string, n: number, v: string) =>
  Array.from(
    { length: n },
    (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-${i}, namespace: ${ns}}\ndata: {v: "${v}"}\n`,
  ).join("---\n");

/** The stack's state as `pulumi stack export` shows it. */
async function exportState(
  e: E2E,
  repo: string,
  stack: string,
): Promise<{ resources: { urn: string; type: string }[]; pending_operations?: unknown[] }> {
  const settings = resolveSyncSettings({ stack, repo, path: "x", stacksDir: false }, e.env);
  const out = await runChecked(path.join(e.toolchain.pulumiRoot, "bin", "pulumi"), ["stack", "export", "--stack", stack], {
    cwd: settings.workDir,
    env: {
      ...e.env,
      ...pulumiEnv(settings.backendUrl, settings.pulumiEnv),
      PATH: `${path.join(e.toolchain.pulumiRoot, "bin")}:${e.env.PATH}`,
    },
  });
  return (JSON.parse(out.stdout) as { deployment: { resources: { urn: string; type: string }[]; pending_operations?: unknown[] } })
    .deployment;
}

function lockFiles(e: E2E, stack: string): string[] {
  const dir = path.join(e.env.FERRY_STATE_DIR!, "backend", ".pulumi", "locks", "organization", "ferry", stack);
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

describe("runner recovery", () => {
  const env = useE2E();
  const runners: RunnerProcess[] = [];
  after(async () => {
    for (const r of runners) await r.crash();
  });

  const start = async (name: string, repo: ConfigRepo, folder: string): Promise<RunnerProcess> => {
    const e = env();
    const file = path.join(e.dir, `${name}.yaml`);
    writeRunnerConfig(file, {
      listen: "127.0.0.1:0",
      retryDelay: "1s",
      maxRetryDelay: "3s",
      stacks: [
        {
          name: folder,
          repo: repo.dir,
          ref: "main",
          path: `clusters/${folder}`,
          kubeconfig: e.cluster.kubeconfig,
          pollInterval: "2s",
          driftInterval: "10m",
          watch: false,
        },
      ],
    });
    const r = await startRunner(file, e.env);
    runners.push(r);
    return r;
  };
  const status = async (r: RunnerProcess, name: string): Promise<StackStatus> =>
    (await (await fetch(`${r.url}/api/stacks/${name}`)).json()) as StackStatus;

  it("converges after kill -9 during an update: no lock left, nothing pending, nothing duplicated or lost", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "crash-repo"), "foundation");
    await repo.edit({ "clusters/crash/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: crash}\n" }).commitAll("Namespace");
    let runner = await start("crash-1", repo, "crash");
    await eventually("the first commit is applied", async () => (await status(runner, "crash")).condition === "Ready", 120_000);

    // Enough objects that the update is still under way when the runner is killed (the state is
    // written once, at its end: two hundred creates take some seconds).
    const sha = await repo.edit({ "clusters/crash/cms.yaml": configMaps("crash", 200, "1") }).commitAll("Two hundred ConfigMaps");
    await eventually("the update holds the stack's lock", async () => lockFiles(e, "crash").length > 0, 60_000);
    await eventually(
      "the update has created some objects",
      async () => (await e.getJson<{ items: unknown[] }>("configmap", "-n", "crash")).items.length > 3,
      60_000,
    );
    await runner.crash();
    assert.ok(lockFiles(e, "crash").length > 0, "the crash left the lock behind");

    runner = await start("crash-2", repo, "crash");
    let last: StackStatus | undefined;
    await eventually(
      "the stack converges at the new commit",
      async () => {
        last = await status(runner, "crash");
        return last.condition === "Ready" && last.lastAppliedRevision === sha;
      },
      180_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last status: ${JSON.stringify({ ...last, history: last?.history.slice(0, 2) })}`);
    });
    assert.deepEqual(lockFiles(e, "crash"), []);
    const state = await exportState(e, repo.dir, "crash");
    assert.equal(state.pending_operations?.length ?? 0, 0);
    const objects = state.resources.filter((r) => r.type.startsWith("kubernetes:") && !r.type.startsWith("pulumi:"));
    assert.equal(objects.length, 201, "200 ConfigMaps and the Namespace, each once");
    assert.equal(new Set(objects.map((r) => r.urn)).size, 201);
    const live = await e.getJson<{ items: { metadata: { name: string } }[] }>("configmap", "-n", "crash");
    assert.equal(live.items.filter((c) => c.metadata.name.startsWith("cm-")).length, 200);
  });

  it("ends an update cleanly on SIGTERM: the runner exits 0 and leaves no lock", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "term-repo"), "foundation");
    await repo.edit({ "clusters/term/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: term}\n" }).commitAll("Namespace");
    const runner = await start("term", repo, "term");
    await eventually("the first commit is applied", async () => (await status(runner, "term")).condition === "Ready", 120_000);
    await repo.edit({ "clusters/term/cms.yaml": configMaps("term", 40, "1") }).commitAll("Forty ConfigMaps");
    await eventually("the update holds the stack's lock", async () => lockFiles(e, "term").length > 0, 60_000);
    assert.equal(await runner.stop("SIGTERM"), 0);
    assert.deepEqual(lockFiles(e, "term"), []);
  });

  it("two runners on one stack never corrupt its state; one waits or backs off", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "twin-repo"), "foundation");
    await repo
      .edit({
        "clusters/twin/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: twin}\n",
        "clusters/twin/cms.yaml": configMaps("twin", 10, "1"),
      })
      .commitAll("Ten");
    const a = await start("twin-a", repo, "twin");
    const b = await start("twin-b", repo, "twin");
    const sha = await repo.edit({ "clusters/twin/cms.yaml": configMaps("twin", 10, "2") }).commitAll("Ten, v2");
    await eventually(
      "both runners see the stack applied at the new commit",
      async () => {
        const [sa, sb] = await Promise.all([status(a, "twin"), status(b, "twin")]);
        return [sa, sb].some((s) => s.lastAppliedRevision === sha) && [sa, sb].every((s) => s.condition !== "Reconciling");
      },
      180_000,
    );
    await a.stop();
    await b.stop();
    const state = await exportState(e, repo.dir, "twin");
    assert.equal(state.pending_operations?.length ?? 0, 0);
    const objects = state.resources.filter((r) => r.type.startsWith("kubernetes:"));
    assert.equal(new Set(objects.map((r) => r.urn)).size, objects.length);
    assert.equal(objects.length, 11);
    assert.deepEqual(lockFiles(e, "twin"), []);
    const live = await e.getJson<{ items: { data?: { v?: string } }[] }>("configmap", "-n", "twin");
    assert.ok(live.items.filter((c) => c.data?.v).every((c) => c.data?.v === "2"));
  });
});
