import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ownerOf } from "../../src/agent/shard";
import { LeasePort, StackLeases } from "../../src/agent/stack-leases";
import { createLogger } from "../../src/lib/log";

/** Polls until `check` holds, or fails after `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const log = createLogger({ test: "stack-leases" });
log.level = "silent";

/** Leases in memory with the API server's optimistic concurrency; `mode` makes every call fail or hang. */
class FakePort implements LeasePort {
  readonly leases = new Map<string, k8s.V1Lease>();
  /** The JSON bodies written, as client-node would send them. */
  readonly sent: string[] = [];
  mode: "ok" | "down" | "hang" = "ok";
  private rv = 0;

  private async gate(): Promise<void> {
    if (this.mode === "down") throw new Error("connect ECONNREFUSED");
    if (this.mode === "hang") {
      await new Promise((r) => setTimeout(r, 800));
      throw new Error("The operation was aborted due to timeout");
    }
  }
  private store(lease: k8s.V1Lease): k8s.V1Lease {
    this.sent.push(JSON.stringify(lease));
    const stored = JSON.parse(JSON.stringify(lease)) as k8s.V1Lease;
    stored.metadata!.resourceVersion = String(++this.rv);
    this.leases.set(stored.metadata!.name!, stored);
    return stored;
  }
  async list(): Promise<k8s.V1Lease[]> {
    await this.gate();
    return [...this.leases.values()].map((l) => JSON.parse(JSON.stringify(l)) as k8s.V1Lease);
  }
  async create(lease: k8s.V1Lease): Promise<k8s.V1Lease> {
    await this.gate();
    if (this.leases.has(lease.metadata!.name!)) throw new k8s.ApiException(409, "AlreadyExists", {}, {});
    return this.store(lease);
  }
  async replace(lease: k8s.V1Lease): Promise<k8s.V1Lease> {
    await this.gate();
    const current = this.leases.get(lease.metadata!.name!);
    if (!current) throw new k8s.ApiException(404, "NotFound", {}, {});
    if (current.metadata!.resourceVersion !== lease.metadata?.resourceVersion) throw new k8s.ApiException(409, "Conflict", {}, {});
    return this.store(lease);
  }
  async remove(name: string, resourceVersion: string): Promise<void> {
    await this.gate();
    const current = this.leases.get(name);
    if (!current) throw new k8s.ApiException(404, "NotFound", {}, {});
    if (current.metadata!.resourceVersion !== resourceVersion) throw new k8s.ApiException(409, "Conflict", {}, {});
    this.leases.delete(name);
  }
  /** Another replica's membership lease, renewed by the test. */
  renewMember(identity: string): void {
    const name = `replica.${identity}`;
    const current = this.leases.get(name);
    this.store({
      metadata: { name, labels: { "ferry.dev/lease": "replica" }, resourceVersion: current?.metadata?.resourceVersion },
      spec: { holderIdentity: identity, leaseDurationSeconds: 1, renewTime: new k8s.V1MicroTime() },
    });
  }
}

function leases(port: FakePort, stacks: string[], events: string[], onLost?: (stack: string) => Promise<void>): StackLeases {
  return new StackLeases({
    kubeConfig: new k8s.KubeConfig(),
    namespace: "ferry-system",
    identity: "a",
    leaseDurationMs: 1000,
    stacks: () => stacks,
    onAcquired: (s) => events.push(`acquired ${s}`),
    onLost: async (s) => {
      events.push(`lost ${s}`);
      await onLost?.(s);
      events.push(`stopped ${s}`);
    },
    log,
    port,
  });
}

describe("stack leases (over a fake lease API)", () => {
  it("takes its stacks on start with microsecond renew times, and hands them back on stop", async () => {
    const port = new FakePort();
    const events: string[] = [];
    const l = leases(port, ["t.x", "t.y"], events);
    await l.start();
    assert.deepEqual([...l.owned()].sort(), ["t.x", "t.y"]);
    assert.deepEqual(events.sort(), ["acquired t.x", "acquired t.y"]);
    assert.equal(port.leases.get("stack.t.x")?.spec?.holderIdentity, "a");
    assert.equal(port.leases.get("stack.t.x")?.metadata?.annotations?.["ferry.dev/stack"], "t.x");
    // The API server's MicroTime wants six fractional digits: a plain Date would send three.
    for (const body of port.sent) assert.match(body, /"renewTime":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"/);
    await l.stop();
    assert.deepEqual(events.slice(2).sort(), ["lost t.x", "lost t.y", "stopped t.x", "stopped t.y"]);
    assert.equal(port.leases.get("stack.t.x")?.spec?.holderIdentity, undefined);
    assert.equal(port.leases.has("replica.a"), false);
  });

  it("hands a stack to a new replica only after onLost returned, renewing the lease meanwhile", async () => {
    const port = new FakePort();
    const events: string[] = [];
    const stack = ["t.0", "t.1", "t.2", "t.3", "t.4", "t.5"].find((s) => ownerOf(s, ["a", "b"]) === "b")!;
    let finish: () => void = () => undefined;
    const l = leases(port, [stack], events, () => new Promise<void>((r) => (finish = r)));
    await l.start();
    const b = setInterval(() => port.renewMember("b"), 200);
    try {
      port.renewMember("b");
      await eventually("the hand-over starts", async () => events.includes(`lost ${stack}`), 5000);
      const rv = port.leases.get(`stack.${stack}`)?.metadata?.resourceVersion;
      // Longer than the lease lasts: still held by a, and renewed.
      await new Promise((r) => setTimeout(r, 1200));
      assert.equal(port.leases.get(`stack.${stack}`)?.spec?.holderIdentity, "a");
      assert.notEqual(port.leases.get(`stack.${stack}`)?.metadata?.resourceVersion, rv);
      finish();
      await eventually("the lease is released", async () => port.leases.get(`stack.${stack}`)?.spec?.holderIdentity === undefined, 5000);
      assert.deepEqual(l.owned(), new Set());
      assert.equal(port.leases.get(`stack.${stack}`)?.spec?.leaseTransitions, 0);
    } finally {
      clearInterval(b);
      await l.stop();
    }
  });

  it("keeps renewing on stop until onLost returned, then releases", async () => {
    const port = new FakePort();
    const events: string[] = [];
    let finish: () => void = () => undefined;
    const l = leases(port, ["t.x"], events, () => new Promise<void>((r) => (finish = r)));
    await l.start();
    const stopped = l.stop();
    await eventually("onLost is called", async () => events.includes("lost t.x"), 3000);
    // Others see at once that a is leaving: its membership lease has no holder any more.
    await eventually(
      "the membership lease is released",
      async () => port.leases.get("replica.a")?.spec?.holderIdentity === undefined,
      3000,
    );
    const rv = port.leases.get("stack.t.x")?.metadata?.resourceVersion;
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(port.leases.get("stack.t.x")?.spec?.holderIdentity, "a");
    assert.notEqual(port.leases.get("stack.t.x")?.metadata?.resourceVersion, rv);
    finish();
    await stopped;
    assert.equal(port.leases.get("stack.t.x")?.spec?.holderIdentity, undefined);
    assert.equal(port.leases.has("replica.a"), false);
  });

  it("stops its stacks by the renew deadline when the API server stops answering, without waiting for it", async () => {
    const port = new FakePort();
    const events: string[] = [];
    const l = leases(port, ["t.x"], events);
    await l.start();
    port.mode = "hang";
    const cut = Date.now();
    await eventually("onLost is called", async () => events.includes("lost t.x"), 3000);
    // The last renewal was sent at most one renew interval (333 ms) before the cut; the deadline is 667 ms after it.
    const after = Date.now() - cut;
    assert.ok(after < 1000, `onLost after ${after} ms, the lease (1000 ms) may have expired for others`);
    assert.deepEqual(l.owned(), new Set());
    port.mode = "ok";
    // The API is back and nobody took the lease: the stack is taken again.
    await eventually("it takes the stack again", async () => events.filter((e) => e === "acquired t.x").length === 2, 5000);
    await l.stop();
  });

  it("fails to start with the namespace and what to check when the leases cannot be read", async () => {
    const port = new FakePort();
    port.mode = "down";
    await assert.rejects(leases(port, ["t.x"], []).start(), /stack leases of a: cannot read or write the Leases in namespace ferry-system/);
  });
});
