import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Hold,
  isExpired,
  LeaseRecord,
  liveReplicas,
  observe,
  overdueHolds,
  ownerOf,
  planStackLeases,
  replicaLeaseName,
  Sightings,
  stackLeaseName,
} from "../../src/agent/shard";

const LEASE = 3000;
const RENEW = 1000;
const DEADLINE = 2000;

const lease = (name: string, holder: string, rv: string, renewTime = `t${rv}`): LeaseRecord => ({
  name,
  holder,
  renewTime,
  resourceVersion: rv,
  transitions: 0,
});

/** An API server's leases: writes carry the resourceVersion they read, a stale one is a 409. */
class World {
  readonly leases = new Map<string, LeaseRecord & { stack?: string }>();
  private rv = 0;
  write(name: string, holder: string, expected: string | undefined, stack?: string): boolean {
    const current = this.leases.get(name);
    if ((current === undefined) !== (expected === undefined) || (current && current.resourceVersion !== expected)) return false; // 409
    const rv = String(++this.rv);
    this.leases.set(name, { ...lease(name, holder, rv), stack });
    return true;
  }
  remove(name: string, expected: string): boolean {
    if (this.leases.get(name)?.resourceVersion !== expected) return false;
    this.leases.delete(name);
    return true;
  }
}

/**
 * One replica driven by the pure decisions as StackLeases drives them: a tick every RENEW ms (list,
 * observe, renew membership, plan, act), a watchdog on the renew deadline, and workers that take
 * `stopMs` to end after onLost.
 */
class Replica {
  sightings: Sightings = new Map();
  readonly held = new Map<string, Hold>();
  readonly stopping = new Set<string>();
  /** Stacks whose worker runs (from acquire until its onLost has returned). */
  readonly running = new Set<string>();
  readonly stops: { stack: string; at: number; then: () => void }[] = [];
  partitioned = false;
  dead = false;
  nextTick: number;
  constructor(
    readonly id: string,
    private readonly world: World,
    start: number,
    private readonly stopMs = 300,
  ) {
    this.nextTick = start;
  }

  private onLost(stack: string, now: number, then: () => void): void {
    this.stops.push({ stack, at: now + this.stopMs, then: () => (this.running.delete(stack), then()) });
  }

  private lose(stack: string, now: number): void {
    this.held.delete(stack);
    this.stopping.add(stack);
    this.onLost(stack, now, () => this.stopping.delete(stack));
  }

  step(now: number, stacks: readonly string[]): void {
    if (this.dead) return;
    for (const s of this.stops.filter((x) => x.at <= now)) s.then();
    this.stops.splice(0, this.stops.length, ...this.stops.filter((x) => x.at > now));
    for (const stack of overdueHolds(this.held, now, DEADLINE)) this.lose(stack, now);
    if (now < this.nextTick) return;
    this.nextTick = now + RENEW;
    if (this.partitioned) return; // every call fails: only the watchdog acts
    const all = [...this.world.leases.values()];
    this.sightings = observe(this.sightings, all, now);
    const me = replicaLeaseName(this.id);
    this.world.write(me, this.id, this.world.leases.get(me)?.resourceVersion);
    const members = all.filter((l) => l.name.startsWith("replica.") && l.name !== me);
    const replicas = liveReplicas(members, this.sightings, now, this.id, LEASE);
    const byStack = new Map(all.filter((l) => l.stack !== undefined).map((l) => [l.stack!, l]));
    const plan = planStackLeases({
      identity: this.id,
      stacks,
      replicas,
      leases: byStack,
      sightings: this.sightings,
      held: this.held,
      stopping: this.stopping,
      now,
      leaseDurationMs: LEASE,
      renewDeadlineMs: DEADLINE,
    });
    for (const stack of plan.lost) this.lose(stack, now);
    for (const stack of plan.forget) this.held.delete(stack);
    for (const stack of plan.handOver) {
      this.held.set(stack, { ...this.held.get(stack)!, state: "handing-over" });
      this.onLost(stack, now, () => {
        const h = this.held.get(stack);
        if (h?.state === "handing-over") this.held.set(stack, { ...h, state: "handed-over" });
      });
    }
    for (const w of plan.acquire)
      if (this.world.write(stackLeaseName(w.stack), this.id, w.lease?.resourceVersion, w.stack)) {
        this.held.set(w.stack, { state: "running", renewedAt: now });
        this.running.add(w.stack);
      }
    for (const w of plan.renew)
      if (this.world.write(w.lease.name, this.id, w.lease.resourceVersion, w.stack))
        this.held.set(w.stack, { ...this.held.get(w.stack)!, renewedAt: now });
    for (const r of plan.release) {
      const ok = r.remove
        ? this.world.remove(r.lease.name, r.lease.resourceVersion)
        : this.world.write(r.lease.name, "", r.lease.resourceVersion, r.stack);
      if (ok) this.held.delete(r.stack);
    }
    for (const l of plan.collect) this.world.remove(l.name, l.resourceVersion);
  }
}

const stacks = Array.from({ length: 9 }, (_, i) => `team.app-${i}`);

/** Runs the replicas in 50 ms steps until `until`, checking after each step that no stack runs twice. */
function simulate(replicas: readonly Replica[], from: number, until: number, list: readonly string[] = stacks): number {
  for (let now = from; now <= until; now += 50) {
    for (const r of replicas) r.step(now, list);
    for (const s of list) {
      const on = replicas.filter((r) => !r.dead && r.running.has(s)).map((r) => r.id);
      assert.ok(on.length <= 1, `at ${now} ms ${s} runs on ${on.join(" and ")}`);
    }
  }
  return until;
}

const runningOn = (replicas: readonly Replica[]) =>
  new Map(stacks.map((s) => [s, replicas.filter((r) => !r.dead && r.running.has(s)).map((r) => r.id)]));

const asHashed = (replicas: readonly Replica[]) => {
  const live = replicas.filter((r) => !r.dead && !r.partitioned).map((r) => r.id);
  return new Map(stacks.map((s) => [s, [ownerOf(s, live)!]]));
};

describe("shard: rendezvous hashing", () => {
  it("gives each key one owner, the same whatever the order of the replicas", () => {
    assert.equal(ownerOf("a.b", ["x", "y", "z"]), ownerOf("a.b", ["z", "x", "y"]));
    assert.equal(ownerOf("a.b", []), undefined);
  });

  it("moves only the keys the added replica wins when a fifth joins (about a fifth of them)", () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `ns-${i % 7}.stack-${i}`);
    const four = ["r1", "r2", "r3", "r4"];
    const moved = keys.filter((k) => ownerOf(k, four) !== ownerOf(k, [...four, "r5"]));
    assert.ok(moved.every((k) => ownerOf(k, [...four, "r5"]) === "r5"));
    assert.ok(moved.length > 140 && moved.length < 260, `${moved.length} of 1000 moved`);
  });
});

describe("shard: expiry by local observation", () => {
  it("treats a free lease as expired at once and a held one only after its duration unchanged on our clock", () => {
    assert.equal(isExpired(lease("l", "", "1"), new Map(), 0, LEASE), true);
    let seen = observe(new Map(), [lease("l", "b", "1")], 10_000);
    assert.equal(isExpired(lease("l", "b", "1"), seen, 12_999, LEASE), false);
    assert.equal(isExpired(lease("l", "b", "1"), seen, 13_000, LEASE), true);
    // A renewal (new version) restarts the count, whatever its renewTime says.
    seen = observe(seen, [lease("l", "b", "2", "1970-01-01T00:00:00.000000Z")], 12_000);
    assert.equal(isExpired(lease("l", "b", "2"), seen, 14_999, LEASE), false);
    // A lease seen for the first time is not expired, however old its renewTime.
    assert.equal(isExpired(lease("m", "b", "7"), observe(seen, [lease("m", "b", "7")], 50_000), 50_000, LEASE), false);
  });

  it("counts a replica live while its membership lease moves, and always counts itself", () => {
    const members = [lease("replica.b", "b", "1"), lease("replica.c", "c", "1")];
    const seen = observe(new Map(), members, 0);
    assert.deepEqual(liveReplicas(members, seen, 1000, "a", LEASE), ["a", "b", "c"]);
    const later = observe(seen, [lease("replica.b", "b", "2"), lease("replica.c", "c", "1")], 2000);
    assert.deepEqual(liveReplicas([lease("replica.b", "b", "2"), members[1]!], later, 3000, "a", LEASE), ["a", "b"]);
  });

  it("names stack leases after the key, or a hash when the key is no valid name", () => {
    assert.equal(stackLeaseName("team-a.web"), "stack.team-a.web");
    assert.match(stackLeaseName("Team_A.web"), /^stack\.[0-9a-f]{40}$/);
    assert.match(stackLeaseName(`ns.${"x".repeat(250)}`), /^stack\.[0-9a-f]{40}$/);
  });
});

describe("shard: planning the stack leases", () => {
  it("a 409 settles a race for a free lease: only one replica runs the stack", () => {
    // b does not see c yet and c does not see b: each believes it should own the stack.
    const world = new World();
    world.write(stackLeaseName("t.s"), "", undefined, "t.s");
    const free = world.leases.get(stackLeaseName("t.s"))!;
    const plans = ["b", "c"].map((id) =>
      planStackLeases({
        identity: id,
        stacks: ["t.s"],
        replicas: [id],
        leases: new Map([["t.s", free]]),
        sightings: observe(new Map(), [free], 0),
        held: new Map(),
        stopping: new Set(),
        now: 0,
        leaseDurationMs: LEASE,
        renewDeadlineMs: DEADLINE,
      }),
    );
    assert.deepEqual(
      plans.map((p) => p.acquire.map((w) => w.lease?.resourceVersion)),
      [[free.resourceVersion], [free.resourceVersion]],
    );
    const won = ["b", "c"].map((id, i) => world.write(free.name, id, plans[i]!.acquire[0]!.lease?.resourceVersion, "t.s"));
    assert.deepEqual(won, [true, false]);
    assert.equal(world.leases.get(free.name)?.holder, "b");
  });

  it("waits for a lease held by a live replica even when hashing names this one", () => {
    const held = lease(stackLeaseName("t.s"), "b", "5");
    const plan = planStackLeases({
      identity: "a",
      stacks: ["t.s"],
      replicas: ["a"],
      leases: new Map([["t.s", held]]),
      sightings: observe(new Map(), [held], 0),
      held: new Map(),
      stopping: new Set(),
      now: LEASE - 1,
      leaseDurationMs: LEASE,
      renewDeadlineMs: DEADLINE,
    });
    assert.deepEqual(plan.acquire, []);
  });

  it("does not take a stack again while the worker it lost is still stopping", () => {
    const plan = planStackLeases({
      identity: "a",
      stacks: ["t.s"],
      replicas: ["a"],
      leases: new Map(),
      sightings: new Map(),
      held: new Map(),
      stopping: new Set(["t.s"]),
      now: 0,
      leaseDurationMs: LEASE,
      renewDeadlineMs: DEADLINE,
    });
    assert.deepEqual(plan.acquire, []);
  });

  it("hands over a deleted stack, then deletes its lease", () => {
    const mine = lease(stackLeaseName("t.gone"), "a", "3");
    const input = {
      identity: "a",
      stacks: [],
      replicas: ["a"],
      leases: new Map([["t.gone", mine]]),
      sightings: observe(new Map(), [mine], 0),
      stopping: new Set<string>(),
      now: 100,
      leaseDurationMs: LEASE,
      renewDeadlineMs: DEADLINE,
    };
    const first = planStackLeases({ ...input, held: new Map([["t.gone", { state: "running", renewedAt: 0 }]]) });
    assert.deepEqual(first.handOver, ["t.gone"]);
    assert.deepEqual(
      first.renew.map((w) => w.stack),
      ["t.gone"],
    );
    const then = planStackLeases({ ...input, held: new Map([["t.gone", { state: "handed-over", renewedAt: 0 }]]) });
    assert.deepEqual(then.release, [{ stack: "t.gone", lease: mine, remove: true }]);
  });
});

describe("shard: replicas over time", () => {
  it("three replicas share nine stacks; after one dies the others hold its stacks within 2x the lease duration", () => {
    const world = new World();
    const rs = ["a", "b", "c"].map((id, i) => new Replica(id, world, i * 100));
    const t = simulate(rs, 0, 8000);
    assert.deepEqual(runningOn(rs), asHashed(rs));
    const victim = rs.find((r) => r.running.size > 0)!;
    victim.dead = true;
    simulate(rs, t + 50, t + 2 * LEASE);
    assert.deepEqual(runningOn(rs), asHashed(rs));
    assert.equal(
      [...runningOn(rs).values()].every((on) => !on.includes(victim.id)),
      true,
    );
  });

  it("a fourth replica takes its share through hand-overs that keep the lease until the worker stopped", () => {
    const world = new World();
    // Workers take longer to stop than a lease lasts: the lease must stay held (renewed) meanwhile.
    const rs = ["a", "b", "c"].map((id, i) => new Replica(id, world, i * 100, 2 * LEASE));
    let t = simulate(rs, 0, 8000);
    const before = asHashed(rs);
    rs.push(new Replica("d", world, t + 50, 2 * LEASE));
    t = simulate(rs, t + 50, t + 20_000);
    assert.deepEqual(runningOn(rs), asHashed(rs));
    const moved = stacks.filter((s) => asHashed(rs).get(s)![0] !== before.get(s)![0]);
    assert.ok(moved.length > 0 && moved.every((s) => asHashed(rs).get(s)![0] === "d"), `moved: ${moved.join(", ")}`);
  });

  it("a partitioned replica stops its stacks by the renew deadline, before the others may take them", () => {
    const world = new World();
    // Stopping takes 500 ms: within the third of the lease duration between renew deadline and expiry.
    const rs = ["a", "b", "c"].map((id, i) => new Replica(id, world, i * 100, 500));
    let t = simulate(rs, 0, 8000);
    const cut = rs.find((r) => r.running.size > 0)!;
    const had = [...cut.running];
    cut.partitioned = true;
    // simulate() asserts at every 50 ms step that no stack runs on two replicas.
    t = simulate(rs, t + 50, t + DEADLINE + 600);
    assert.equal(cut.running.size, 0, `${cut.id} stopped ${had.join(", ")}`);
    t = simulate(rs, t + 50, t + 2 * LEASE);
    assert.deepEqual(runningOn(rs), asHashed(rs));
    // The partition heals: it rejoins and gets its share back.
    cut.partitioned = false;
    simulate(rs, t + 50, t + 20_000);
    assert.deepEqual(runningOn(rs), asHashed(rs));
  });
});
