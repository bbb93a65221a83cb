// End to end: the reconcile pipeline's promises: one run per stack at a time, a server-side dry run
// before anything is applied, and the whole history of a long-lived stack.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { HistoryEntry } from "../../src/reconcile/history";
import { fixtureRepo, ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";
import { ferrySync, TimedSyncRun } from "../helpers/ferry-sync";
import { addStackUpdates } from "../helpers/stack-updates";

interface Live {
  metadata: { name: string; uid: string; resourceVersion: string };
  data?: Record<string, string>;
}

const configMap = (name: string, data: Record<string, string>): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: default\ndata:\n${Object.entries(data)
    .map(([k, v]) => `  ${k}: "${v}"\n`)
    .join("")}`;

/** Updates made through the pulumi CLI to give the history stack more than 60 updates. */
const FILLERS = 59;

describe("the reconcile pipeline", () => {
  const env = useE2E();
  let repo: ConfigRepo;

  const sync = (stack: string, extra: readonly string[] = []) =>
    ferrySync(env(), { repo: repo.dir, path: `clusters/${stack}`, stack, extra });
  const stackArgs = (stack: string) => [
    "--stack",
    stack,
    "--repo",
    repo.dir,
    "--path",
    `clusters/${stack}`,
    "--kubeconfig",
    env().cluster.kubeconfig,
  ];
  const history = async (stack: string): Promise<HistoryEntry[]> => {
    const r = await env().ferry(["history", ...stackArgs(stack), "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as HistoryEntry[];
  };
  const liveData = async (name: string) => (await env().getJson<Live>("configmap", name, "-n", "default")).data;
  /** The data of a ConfigMap as the stack's Pulumi state records it (`pulumi stack export`). */
  const stateData = async (stack: string, name: string) => {
    const exported = JSON.parse(await env().pulumi(stack, ["stack", "export"])) as {
      deployment: { resources?: { type: string; outputs?: { metadata?: { name?: string }; data?: Record<string, string> } }[] };
    };
    const entries = (exported.deployment.resources ?? []).filter(
      (r) => r.type.startsWith("kubernetes:core/v1:ConfigMap") && r.outputs?.metadata?.name === name,
    );
    assert.equal(entries.length, 1, `one state entry of ConfigMap ${name}: ${JSON.stringify(entries)}`);
    return entries[0]!.outputs?.data;
  };

  before(async () => {
    repo = await ConfigRepo.create(path.join(env().dir, "config-repo"), "pipeline");
    await repo.commitStep("step1", "Three cluster folders");
  });

  it("runs one sync of a stack at a time: two syncs of different refs started together leave the cluster, the state and the history on the commit of the last to succeed", async () => {
    // Two branches whose ConfigMap differs; the stack does not exist yet, so both runs also race to create it.
    const branches = ["blue", "green"];
    const shas: string[] = [];
    for (const branch of branches) {
      await repo.checkout("main");
      await repo.checkout(branch, true);
      shas.push(await repo.edit({ "clusters/race/race.yaml": configMap("race", { value: branch }) }).commitAll(`Race: ${branch}`));
    }
    await repo.checkout("main");

    const runs: TimedSyncRun[] = await Promise.all(branches.map((b) => sync("race", ["--ref", b])));
    runs.forEach((r, i) => {
      assert.ok(
        r.code === 0 || r.result.reason === "Locked",
        `${branches[i]}: exit ${r.code}, ${r.result.reason}: ${r.result.message}\n${r.stderr.slice(-1500)}`,
      );
      if (r.code === 0) assert.equal(r.result.revision?.sha, shas[i], `the run of ${branches[i]} applied its own commit`);
    });
    const succeeded = runs.map((r, i) => ({ r, i })).filter(({ r }) => r.code === 0);
    assert.ok(succeeded.length > 0, "one of the two runs succeeds");
    const last = succeeded.sort((a, b) => a.r.endedAt - b.r.endedAt).at(-1)!.i;

    const newest = (await history("race")).find((h) => h.result === "succeeded");
    assert.deepEqual(
      { live: (await liveData("race"))?.value, state: (await stateData("race", "race"))?.value, history: newest?.sha },
      { live: branches[last], state: branches[last], history: shas[last] },
      `runs: ${JSON.stringify(runs.map((r) => ({ code: r.code, reason: r.result.reason, sha: r.result.revision?.sha, endedAt: r.endedAt })))}`,
    );
  });

  it("refuses a commit the API server rejects in a server-side dry run, naming the Deployment's file and line, and applies nothing", async () => {
    const e = env();
    const first = await sync("dry-run");
    assert.equal(first.code, 0, first.result.message);
    const edited = await e.getJson<Live>("configmap", "edited", "-n", "default");
    const removed = await e.getJson<Live>("configmap", "removed", "-n", "default");

    // One commit: edits `edited`, deletes `removed`, adds the Deployment `rejected` as the second document of app.yaml.
    await repo.commitStep("step2", "Edit a ConfigMap, remove another, add a Deployment the API server rejects");
    const { code, result, stderr } = await sync("dry-run");
    assert.equal(code, 1, `${JSON.stringify(result.objects)}\n${stderr.slice(-2000)}`);
    assert.equal(result.reason, "DryRunFailed", result.message);
    const message = result.message ?? "";
    assert.match(message, /Deployment\/default\/rejected/);
    const lines = fs.readFileSync(path.join(fixtureRepo("pipeline"), "step2", "clusters", "dry-run", "app.yaml"), "utf8").split("\n");
    const documentStart = lines.indexOf("---") + 2; // 1-based line after the separator
    const named = [...message.matchAll(/clusters\/dry-run\/app\.yaml:(\d+)/g)].map((m) => Number(m[1]));
    assert.ok(
      named.some((line) => line >= documentStart && line <= lines.length),
      `the message names app.yaml at a line of the Deployment (${documentStart}..${lines.length}): ${message}`,
    );

    const editedAfter = await e.getJson<Live>("configmap", "edited", "-n", "default");
    assert.deepEqual(editedAfter.data, { version: "1" });
    assert.equal(editedAfter.metadata.resourceVersion, edited.metadata.resourceVersion);
    const removedAfter = await e.getJson<Live>("configmap", "removed", "-n", "default");
    assert.equal(removedAfter.metadata.resourceVersion, removed.metadata.resourceVersion);
    assert.equal(await e.exists("deployment", "rejected", "-n", "default"), false);
  });

  it("lists every update of a stack with more than 60, with stable versions, and rolls back to an early commit by SHA and by VERSION", async (t) => {
    const e = env();
    const shas: string[] = [];
    let deployed: TimedSyncRun | undefined;
    for (const n of ["1", "2"]) {
      shas.push(await repo.edit({ "clusters/history/history.yaml": configMap("history", { commit: n }) }).commitAll(`History ${n}`));
      deployed = await sync("history");
      assert.equal(deployed.code, 0, deployed.result.message);
    }
    // The rest of the history: 59 real updates of the same stack through the pulumi CLI (an inline
    // program targeting only a marker, see addStackUpdates; well under a second each instead of a
    // ferry sync's several), recording the deployed commit like a ferry run would.
    const revision = deployed!.result.revision!;
    const started = Date.now();
    await addStackUpdates(e, "history", FILLERS, {
      message: (i) => `a pulumi up outside ferry, ${i + 1} of ${FILLERS}`,
      env: {
        PULUMI_GIT_HEAD: revision.sha,
        PULUMI_GIT_HEAD_NAME: revision.ref,
        PULUMI_GIT_AUTHOR: revision.author,
        PULUMI_GIT_AUTHOR_EMAIL: revision.authorEmail,
      },
    });
    t.diagnostic(`${FILLERS} updates through the pulumi CLI took ${((Date.now() - started) / 1000).toFixed(1)}s`);
    const listed = await history("history");
    assert.ok(listed.length > 60, `ferry history lists all ${shas.length + FILLERS} updates, not ${listed.length}`);
    const versions = listed.map((h) => h.version);
    versions.slice(1).forEach((v, i) => assert.ok(v < versions[i]!, `versions strictly decrease, newest first: ${versions.join(" ")}`));
    assert.deepEqual(
      (await history("history")).map((h) => h.version),
      versions,
      "a second call gives the same versions",
    );
    // Newest first even among updates that started in the same second (the record keeps seconds only).
    const fillers = listed.flatMap((h) => /outside ferry, (\d+) of \d+/.exec(h.subject ?? "")?.[1] ?? []).map(Number);
    assert.deepEqual(
      fillers,
      Array.from({ length: FILLERS }, (_, i) => FILLERS - i),
      "the updates outside ferry, newest first",
    );
    const early = shas.map((sha) => listed.find((h) => h.sha === sha && h.run === "sync" && h.result === "succeeded"));
    assert.ok(early.every(Boolean), `the first ferry syncs are listed: ${JSON.stringify(listed.slice(-5))}`);

    const bySha = await e.ferry(["rollback", ...stackArgs("history"), "--to", shas[0]!]);
    assert.equal(bySha.code, 0, `${bySha.stdout}\n${bySha.stderr}`);
    assert.equal((await liveData("history"))?.commit, "1");

    const byVersion = await e.ferry(["rollback", ...stackArgs("history"), "--to", String(early[1]!.version)]);
    assert.equal(byVersion.code, 0, `${byVersion.stdout}\n${byVersion.stderr}`);
    assert.equal((await liveData("history"))?.commit, "2");

    // The numbers stay as the history grows: every update listed before keeps its version.
    const later = await history("history");
    assert.equal(later.length, listed.length + 2);
    assert.deepEqual(
      later.slice(2).map((h) => [h.version, h.startedAt, h.subject]),
      listed.map((h) => [h.version, h.startedAt, h.subject]),
    );
  });
});
