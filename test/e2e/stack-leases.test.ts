// End to end: agent replicas share nine stacks through coordination.k8s.io Leases on the real API server.
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { ownerOf } from "../../src/agent/shard";
import { eventually, useE2E } from "../helpers/e2e";
import type { MemberEvent } from "../helpers/lease-member";

const e2e = useE2E();
const namespace = "ferry-system";
const leaseMs = 4000;
const stacks = Array.from({ length: 9 }, (_, i) => `team-${i % 3}.app-${i}`);

/** A lease-member process and what it printed. */
interface Member {
  readonly identity: string;
  readonly child: ChildProcess;
  readonly events: MemberEvent[];
  stderr: string;
  killedAt?: number;
  readonly exited: Promise<void>;
}

function startMember(kubeconfig: string, identity: string): Member {
  const script = path.join(__dirname, "..", "helpers", "lease-member.js");
  const child = spawn(process.execPath, [script, kubeconfig, namespace, identity, String(leaseMs), stacks.join(",")], {
    env: { ...process.env, FERRY_LOG_FORMAT: "json", FERRY_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const member: Member = {
    identity,
    child,
    events: [],
    stderr: "",
    exited: new Promise((resolve) => child.once("exit", () => resolve())),
  };
  createInterface({ input: child.stdout! }).on("line", (line) => member.events.push(JSON.parse(line) as MemberEvent));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (member.stderr += d));
  return member;
}

/** The stacks a member holds now, by its printed events (none once it was killed). */
function holding(m: Member): Set<string> {
  const held = new Set<string>();
  if (m.killedAt !== undefined) return held;
  for (const e of m.events) {
    if (e.event === "acquired") held.add(e.stack!);
    if (e.event === "lost") held.delete(e.stack!);
  }
  return held;
}

/** Each stack's owners among the members, by their printed events. */
function owners(members: readonly Member[]): Map<string, string[]> {
  const map = new Map<string, string[]>(stacks.map((s) => [s, []]));
  for (const m of members) for (const s of holding(m)) map.get(s)!.push(m.identity);
  return map;
}

/** Whether every stack is held by exactly the member rendezvous hashing names among `live`. */
function assignedAsHashed(members: readonly Member[], live: readonly string[]): boolean {
  return [...owners(members)].every(([stack, who]) => who.length === 1 && who[0] === ownerOf(stack, live));
}

test("nine stacks over three replicas: one owner each, failover after kill -9 within 2x the lease, a fourth takes a share, never two holders at once", async () => {
  const e = e2e();
  await e.kubectl("create", "namespace", namespace);
  const members: Member[] = [];
  const explain = () =>
    JSON.stringify(Object.fromEntries(owners(members))) + "\n" + members.map((m) => `${m.identity}: ${m.stderr.slice(-2000)}`).join("\n");
  try {
    for (const id of ["agent-a", "agent-b", "agent-c"]) members.push(startMember(e.cluster.kubeconfig, id));
    const ids = () => members.filter((m) => m.killedAt === undefined).map((m) => m.identity);

    // 1. Three replicas: each stack is held by exactly one, the one rendezvous hashing picks.
    await eventually(
      "each stack is held by the replica hashing picks among three",
      async () => assignedAsHashed(members, ids()),
      30_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${explain()}`));
    const leases = await e.getJson<{ items: { metadata: { name: string }; spec: { holderIdentity?: string; renewTime?: string } }[] }>(
      "leases",
      "-n",
      namespace,
      "-l",
      "ferry.dev/lease=stack",
    );
    for (const [stack, [who]] of owners(members)) {
      const lease = leases.items.find((l) => l.metadata.name === `stack.${stack}`);
      assert.equal(lease?.spec.holderIdentity, who, `Lease/stack.${stack} names its holder`);
      // MicroTime: the server kept microsecond precision (client-node must send a V1MicroTime, not a Date).
      assert.match(lease?.spec.renewTime ?? "", /\.\d{6}Z$/);
    }

    // 2. kill -9 of the replica with the most stacks: the others hold its stacks within 2x the lease duration.
    const victim = [...members].sort((x, y) => holding(y).size - holding(x).size)[0]!;
    const orphans = [...holding(victim)];
    assert.ok(orphans.length > 0, `${victim.identity} holds stacks`);
    victim.child.kill("SIGKILL");
    victim.killedAt = Date.now();
    await victim.exited;
    await eventually(
      `the stacks of ${victim.identity} (${orphans.join(", ")}) are held by the other replicas`,
      async () => assignedAsHashed(members, ids()),
      2 * leaseMs + 2000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${explain()}`));
    const takenAt = Math.max(
      ...orphans.map((s) =>
        Math.min(
          ...members.flatMap((m) =>
            m.events.filter((ev) => ev.event === "acquired" && ev.stack === s && ev.at > victim.killedAt!).map((ev) => ev.at),
          ),
        ),
      ),
    );
    const failoverMs = takenAt - victim.killedAt;
    process.stderr.write(`# failover of ${orphans.length} stacks after kill -9: ${failoverMs} ms (lease ${leaseMs} ms)\n`);
    assert.ok(failoverMs <= 2 * leaseMs, `failover took ${failoverMs} ms, more than 2x the lease duration`);

    // 3. A fourth replica takes its share (and only the stacks hashing moves to it change hands).
    members.push(startMember(e.cluster.kubeconfig, "agent-d"));
    await eventually("agent-d holds its share and every stack has one holder", async () => assignedAsHashed(members, ids()), 30_000).catch(
      (err: Error) => assert.fail(`${err.message}\n${explain()}`),
    );
    assert.ok(holding(members[3]!).size > 0, "agent-d holds stacks");
  } finally {
    // SIGTERM: each member hands its stacks back (onLost, then release) and prints "lost" for each.
    for (const m of members) if (m.killedAt === undefined) m.child.kill("SIGTERM");
    await Promise.all(members.map((m) => m.exited));
  }

  // 4. From the printed intervals: no stack was ever held by two members at overlapping times.
  const end = Date.now();
  for (const stack of stacks) {
    const intervals: { who: string; from: number; to: number }[] = [];
    for (const m of members) {
      let from: number | undefined;
      for (const ev of m.events.filter((x) => x.stack === stack)) {
        if (ev.event === "acquired") from = ev.at;
        if (ev.event === "lost" && from !== undefined) {
          intervals.push({ who: m.identity, from, to: ev.at });
          from = undefined;
        }
      }
      if (from !== undefined) intervals.push({ who: m.identity, from, to: m.killedAt ?? end });
    }
    intervals.sort((x, y) => x.from - y.from);
    for (let i = 1; i < intervals.length; i++) {
      const [prev, next] = [intervals[i - 1]!, intervals[i]!];
      assert.ok(prev.to <= next.from, `${stack}: ${prev.who} held it until ${prev.to}, ${next.who} from ${next.from}`);
    }
  }
  // Every lease was handed back on SIGTERM: none is held any more.
  const left = await e.getJson<{ items: { metadata: { name: string }; spec: { holderIdentity?: string } }[] }>("leases", "-n", namespace);
  const held = left.items.filter((l) => l.metadata.name.startsWith("stack.") && l.spec.holderIdentity);
  assert.deepEqual(held, [], "the replicas stopped with SIGTERM released their leases (the killed one's were taken over)");
});
