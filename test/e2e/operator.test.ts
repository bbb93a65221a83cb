// End to end: `ferry operator` replicas keep Stack objects (ferry.dev/v1alpha1), sharing them through
// Leases. The replicas are local processes that authenticate as a pod would: with their
// ServiceAccount's token, under the chart's RBAC.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { runChecked } from "../../src/lib/exec";
import { ferryRoot } from "../../src/lib/paths";
import { ConfigRepo } from "../helpers/config-repo";
import { E2E, eventually, useE2E } from "../helpers/e2e";
import { RunnerProcess, startAgent } from "../helpers/runner-process";
import { serviceAccountKubeconfig } from "../helpers/service-account";

const NS = "ferry-system";
const LEASE = "6s";
const LEASE_MS = 6000;
const PASSPHRASE_SECRET = "ferry-state";
const API_TOKEN = "static-api-token-for-the-operator-tests";

interface StackStatusView {
  metadata: { name: string; generation: number; annotations?: Record<string, string> };
  spec: { suspend?: boolean };
  status?: {
    owner?: string;
    observedGeneration?: number;
    lastAppliedRevision?: string;
    conditions?: { type: string; status: string; reason: string }[];
    history?: { trigger: string; startedAt: string; result: string }[];
  };
}

const cm = (n: string, v: string) =>
  `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: ${n}}\ndata: {value: "${v}"}\n`;

const stackObject = (name: string, repo: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "ferry.dev/v1alpha1",
  kind: "Stack",
  metadata: { name, namespace: NS },
  spec: { repo, ref: "main", path: `clusters/${name}`, interval: "5s", passphraseSecretRef: { name: PASSPHRASE_SECRET }, ...extra },
});

/** `kubectl wait --for=condition=Ready stack/<name>`: returns once the Stack is Ready (kstatus). */
async function kubectlWaitReady(e: E2E, name: string): Promise<void> {
  await runChecked(e.toolchain.bin("kubectl"), [
    "--kubeconfig",
    e.cluster.kubeconfig,
    "wait",
    "--for=condition=Ready",
    `stack/${name}`,
    "-n",
    NS,
    "--timeout=120s",
  ]);
}

/** The intervals of runs each replica logged, per stack (a killed replica's open run ends when it was killed). */
function runIntervals(
  logs: Map<string, { text: string; killedAt?: number }>,
): Map<string, { replica: string; start: number; end: number }[]> {
  const out = new Map<string, { replica: string; start: number; end: number }[]>();
  for (const [replica, { text, killedAt }] of logs) {
    const open = new Map<string, number>();
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      const l = JSON.parse(line) as { stack?: string; phase?: string; msg?: string; time: number };
      if (!l.stack) continue;
      if (l.phase === "start" && l.msg === "reconcile started") open.set(l.stack, l.time);
      if (l.phase === "done" && open.has(l.stack)) {
        out.set(l.stack, [...(out.get(l.stack) ?? []), { replica, start: open.get(l.stack)!, end: l.time }]);
        open.delete(l.stack);
      }
    }
    for (const [stack, start] of open) out.set(stack, [...(out.get(stack) ?? []), { replica, start, end: killedAt ?? Date.now() }]);
  }
  return out;
}

describe("ferry operator", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  let agentKubeconfig: string;
  const replicas = new Map<string, RunnerProcess>();
  const killedAt = new Map<string, number>();
  const stacks = Array.from({ length: 9 }, (_, i) => `s${i + 1}`);

  const getStack = (e: E2E, name: string) => e.getJson<StackStatusView>("stack", name, "-n", NS);
  const startReplica = async (e: E2E, name: string): Promise<RunnerProcess> => {
    const agent = await startAgent(
      [
        "operator",
        "--namespace",
        NS,
        "--identity",
        name,
        "--kubeconfig",
        agentKubeconfig,
        "--listen",
        "127.0.0.1:0",
        "--lease-duration",
        LEASE,
        "--max-parallel",
        "2",
      ],
      {
        ...e.env,
        FERRY_API_TOKEN: API_TOKEN,
        PULUMI_CONFIG_PASSPHRASE: undefined,
        PULUMI_BACKEND_URL: `file://${path.join(e.dir, "shared-backend")}`,
      },
    );
    replicas.set(name, agent);
    return agent;
  };

  before(async () => {
    const e = env();
    fs.mkdirSync(path.join(e.dir, "shared-backend"), { recursive: true });
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "foundation");
    repo.edit(Object.fromEntries(stacks.map((s) => [`clusters/${s}/app.yaml`, cm(`app-${s}`, "v1")])));
    await repo.commitAll("Nine clusters");
    await e.kubectl("create", "namespace", NS);
    // The chart's objects: the CRD, ferry's ServiceAccount and least-privilege RBAC, the manager.
    const chart = path.join(e.dir, "chart.yaml");
    const rendered = await runChecked(e.toolchain.bin("helm"), [
      "template",
      "ferry",
      path.join(ferryRoot(), "charts", "ferry"),
      "--namespace",
      NS,
      "--include-crds",
      "--set",
      `secretNames={${PASSPHRASE_SECRET}}`,
    ]);
    fs.writeFileSync(chart, rendered.stdout);
    await e.kubectl("apply", "-f", chart);
    await e.kubectl("wait", "--for=condition=Established", "crd/stacks.ferry.dev", "--timeout=30s");
    await e.kubectl("create", "secret", "generic", PASSPHRASE_SECRET, "-n", NS, "--from-literal=passphrase=operator-e2e-passphrase");
    await e.kubectl("create", "secret", "generic", "not-for-ferry", "-n", NS, "--from-literal=password=hunter2");
    agentKubeconfig = await serviceAccountKubeconfig(e, "ferry", NS, e.dir);
  });

  after(async () => {
    await Promise.all([...replicas.values()].map((r) => r.crash()));
  });

  it("a Stack applied with kubectl is reconciled and turns Ready; kubectl wait returns", async () => {
    const e = env();
    await startReplica(e, "r1");
    const file = path.join(e.dir, "s1.yaml");
    fs.writeFileSync(file, JSON.stringify(stackObject("s1", repo.dir)));
    await e.kubectl("apply", "-f", file);
    await kubectlWaitReady(e, "s1");
    const s1 = await getStack(e, "s1");
    assert.equal(s1.status?.owner, "r1");
    assert.equal(s1.status?.observedGeneration, s1.metadata.generation);
    assert.equal(s1.status?.lastAppliedRevision?.length, 40);
    assert.equal((await e.getJson<{ data: Record<string, string> }>("configmap", "settings", "-n", "app-s1")).data.value, "v1");
    const table = await e.kubectl("get", "stacks", "-n", NS);
    assert.match(table, /NAME\s+READY\s+STATUS\s+REVISION\s+OBJECTS\s+SUSPENDED\s+AGE/);
    assert.match(table, /s1\s+True\s+Applied revision [0-9a-f]{40}/);
    const events = await e.kubectl("get", "events", "-n", NS, "--field-selector", "involvedObject.name=s1,involvedObject.kind=Stack");
    assert.match(events, /ReconciliationSucceeded/);
  });

  it("the requestedAt annotation runs the stack now; a spec change is followed and observed", async () => {
    const e = env();
    const runs = (await getStack(e, "s1")).status?.history?.length ?? 0;
    const at = new Date().toISOString();
    await e.kubectl("annotate", "stack", "s1", "-n", NS, `reconcile.ferry.dev/requestedAt=${at}`, "--overwrite");
    await eventually("the request is handled by a manual run", async () => {
      const st = await getStack(e, "s1");
      return (
        (st.status as { lastHandledReconcileAt?: string } | undefined)?.lastHandledReconcileAt === at &&
        st.status?.history?.[0]?.trigger === "manual" &&
        (st.status.history.length ?? 0) > runs
      );
    });
    repo.edit({ "clusters/s1-next/app.yaml": cm("app-s1", "v2") });
    await repo.commitAll("s1 moves to another folder");
    await e.kubectl("patch", "stack", "s1", "-n", NS, "--type", "merge", "-p", JSON.stringify({ spec: { path: "clusters/s1-next" } }));
    await kubectlWaitReady(e, "s1");
    await eventually(
      "the new folder is applied",
      async () => (await e.getJson<{ data: Record<string, string> }>("configmap", "settings", "-n", "app-s1")).data.value === "v2",
    );
    const st = await getStack(e, "s1");
    assert.equal(st.status?.observedGeneration, st.metadata.generation);
  });

  it("a Stack naming a Secret ferry was not pointed at is Stalled, and the message names the fix", async () => {
    const e = env();
    const file = path.join(e.dir, "bad.yaml");
    fs.writeFileSync(
      file,
      JSON.stringify(stackObject("bad", repo.dir, { passphraseSecretRef: { name: "not-for-ferry", key: "password" } })),
    );
    await e.kubectl("apply", "-f", file);
    await eventually("the Stack is Stalled with SecretForbidden", async () => {
      const c = (await getStack(e, "bad")).status?.conditions ?? [];
      return (
        c.some((x) => x.type === "Stalled" && x.status === "True" && x.reason === "SecretForbidden") &&
        c.some((x) => x.type === "Ready" && x.status === "False")
      );
    });
    const events = await e.kubectl("get", "events", "-n", NS, "--field-selector", "involvedObject.name=bad,involvedObject.kind=Stack");
    assert.match(events, /SecretForbidden.*add it to the chart's secretNames/);
    await e.kubectl("delete", "stack", "bad", "-n", NS);
  });

  it("the agent's own identity cannot read a Secret no Stack names (the RBAC is least privilege)", async () => {
    const e = env();
    const denied = await runChecked(e.toolchain.bin("kubectl"), [
      "--kubeconfig",
      agentKubeconfig,
      "get",
      "secret",
      "not-for-ferry",
      "-n",
      NS,
    ]).then(
      () => undefined,
      (err: Error) => err.message,
    );
    assert.match(denied ?? "", /Forbidden.*cannot get resource "secrets"/s);
  });

  it("three replicas share nine stacks; a killed replica's stacks move within 2x the lease; a fourth takes a share; never two runs at once", async () => {
    const e = env();
    await startReplica(e, "r2");
    await startReplica(e, "r3");
    for (const s of stacks.slice(1)) {
      const file = path.join(e.dir, `${s}.yaml`);
      fs.writeFileSync(file, JSON.stringify(stackObject(s, repo.dir)));
      await e.kubectl("apply", "-f", file);
    }
    const owners = async (): Promise<Map<string, string | undefined>> => {
      const list = await e.getJson<{ items: StackStatusView[] }>("stacks", "-n", NS);
      return new Map(
        list.items.map((i) => [
          i.metadata.name,
          i.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? i.status.owner : undefined,
        ]),
      );
    };
    await eventually(
      "all nine stacks Ready",
      async () => [...(await owners()).values()].filter((o) => o !== undefined).length === 9,
      240_000,
    ).catch(async (err: Error) => {
      const table = await e.kubectl("get", "stacks", "-n", NS, "-o", "wide");
      const logs = [...replicas].map(([n, r]) => `--- ${n}\n${r.output().split("\n").slice(-40).join("\n")}`).join("\n");
      throw new Error(`${err.message}\n${table}\n${logs}`);
    });
    const before = await owners();
    const byReplica = (m: Map<string, string | undefined>, r: string) => [...m].filter(([, o]) => o === r).map(([s]) => s);
    for (const r of ["r1", "r2", "r3"])
      assert.ok(byReplica(before, r).length > 0, `replica ${r} keeps no stack: ${JSON.stringify([...before])}`);
    const victim = [...before.values()].find((o) => o && byReplica(before, o).length > 0)!;
    const moved = byReplica(before, victim);
    const killed = Date.now();
    killedAt.set(victim, killed);
    await replicas.get(victim)!.crash();
    await eventually(
      `the stacks of ${victim} are run again by the others`,
      async () => {
        const list = await e.getJson<{ items: StackStatusView[] }>("stacks", "-n", NS);
        return list.items
          .filter((i) => moved.includes(i.metadata.name))
          .every(
            (i) =>
              i.status?.owner !== victim &&
              i.status?.history?.[0] &&
              Date.parse(i.status.history[0].startedAt) > killed &&
              i.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
          );
      },
      120_000,
    );
    // When each survivor took a stack over, started its run and finished it, by the survivors' own logs.
    const after = (msg: string, stack: string): number | undefined =>
      [...replicas]
        .filter(([name]) => name !== victim)
        .flatMap(([, r]) => r.output().split("\n"))
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { stack?: string; msg?: string; time: number })
        .filter((l) => l.stack === `${NS}.${stack}` && l.msg === msg && l.time > killed)
        .map((l) => l.time - killed)
        .sort((a, b) => a - b)[0];
    const taken = moved.map((s) => ({
      stack: s,
      owned: after("this replica keeps the stack", s)!,
      started: after("reconcile started", s)!,
      done: after("reconcile succeeded", s)!,
    }));
    process.stderr.write(`# failover after kill -9 of ${victim} (lease ${LEASE_MS} ms): ${JSON.stringify(taken)}\n`);
    for (const t of taken) {
      assert.ok(
        t.owned !== undefined && t.started !== undefined && t.done !== undefined,
        `${t.stack} was not taken over and run: ${JSON.stringify(t)}`,
      );
      assert.ok(t.owned <= 2 * LEASE_MS, `${t.stack} was taken over ${t.owned} ms after the kill (2x lease = ${2 * LEASE_MS} ms)`);
    }

    await startReplica(e, "r4");
    await eventually("the fourth replica keeps a share", async () => byReplica(await owners(), "r4").length > 0, 90_000);

    const logs = new Map([...replicas].map(([name, r]) => [name, { text: r.output(), killedAt: killedAt.get(name) }]));
    const intervals = runIntervals(logs);
    let runs = 0;
    for (const [stack, list] of intervals) {
      const sorted = [...list].sort((a, b) => a.start - b.start);
      runs += sorted.length;
      for (let i = 1; i < sorted.length; i++)
        assert.ok(
          sorted[i]!.start >= sorted[i - 1]!.end,
          `${stack}: a run on ${sorted[i]!.replica} started before the run on ${sorted[i - 1]!.replica} ended`,
        );
    }
    assert.ok(runs >= 9 + moved.length, `only ${runs} runs logged`);
  });

  it("suspend through the API: 401 without a token, 403 for an identity not allowed to change the stack, 202 with one that is", async () => {
    const e = env();
    const owner = (await getStack(e, "s1")).status!.owner!;
    const url = replicas.get(owner)!.url;
    const suspend = (token?: string) =>
      fetch(`${url}/api/stacks/${NS}.s1/suspend`, { method: "POST", headers: token ? { Authorization: `Bearer ${token}` } : {} });
    assert.equal((await suspend()).status, 401);
    await e.kubectl("create", "serviceaccount", "intruder", "-n", NS);
    const intruder = (await e.kubectl("create", "token", "intruder", "-n", NS)).trim();
    const refused = await suspend(intruder);
    assert.equal(refused.status, 403, await refused.text());
    assert.notEqual((await getStack(e, "s1")).spec.suspend, true);
    await e.kubectl("create", "serviceaccount", "operator-admin", "-n", NS);
    await e.kubectl("create", "role", "stack-admin", "-n", NS, "--verb=patch", "--resource=stacks.ferry.dev");
    await e.kubectl("create", "rolebinding", "stack-admin", "-n", NS, "--role=stack-admin", `--serviceaccount=${NS}:operator-admin`);
    const admin = (await e.kubectl("create", "token", "operator-admin", "-n", NS)).trim();
    assert.equal((await suspend(admin)).status, 202);
    await eventually("spec.suspend is set on the Stack", async () => (await getStack(e, "s1")).spec.suspend === true);
    // Resumed: the choice is kept on the object again, and a run after the resume shows on the status.
    const resumed = Date.now();
    const resume = await fetch(`${url}/api/stacks/${NS}.s1/resume`, { method: "POST", headers: { Authorization: `Bearer ${admin}` } });
    assert.equal(resume.status, 202);
    await eventually(
      "the resumed Stack ran and is Ready",
      async () => {
        const st = await getStack(e, "s1");
        const run = st.status?.history?.[0];
        return (
          st.spec.suspend === false &&
          // manual, or start when the fourth replica's rebalancing moved the stack meanwhile
          (run?.trigger === "manual" || run?.trigger === "start") &&
          Date.parse(run.startedAt) >= resumed - 1000 &&
          (st.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false)
        );
      },
      60_000,
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}\n${JSON.stringify((await getStack(e, "s1")).status, null, 1)}\n${replicas.get(owner)!.output().split("\n").slice(-15).join("\n")}`,
      );
    });
  });
});
