import * as k8s from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { Logger } from "../lib/log";
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
} from "./shard";

/**
 * High availability and sharding of Stacks across agent replicas on coordination.k8s.io Leases.
 *
 * Each replica holds a membership Lease `replica.<identity>` (label `ferry.dev/lease=replica`) and
 * renews it every `renewIntervalMs`; the live replicas are the holders of membership leases seen to
 * move within the lease duration. Each stack goes to one of them by rendezvous hashing
 * (src/agent/shard.ts), and a replica runs a stack only while it holds the stack's Lease
 * `stack.<namespace>.<name>` (label `ferry.dev/lease=stack`): that lease is the exclusion, the
 * hashing only says who should try to take it. Every write carries the resourceVersion read in the
 * same tick, so two replicas racing for a free lease cannot both win (the loser gets a 409).
 *
 * Why never two runs of one stack at once: another replica takes a lease held by us only after it
 * has seen the lease unchanged for the lease duration on its own clock (by local observation, as
 * client-go's leader election does; nobody's wall clock is trusted). We, in turn, call onLost for a
 * stack as soon as the time since we *sent* our last successful renewal reaches `renewDeadlineMs`
 * (default 2/3 of the lease duration), from a watchdog timer that does not wait for the API. That
 * renewal reached the server no earlier than we sent it, so others cannot see it expire before
 * `renewDeadlineMs` + the remaining third of the duration: a partitioned or stalled replica stops its
 * runs (onLost must cancel the run and return within that third) before anybody may start them. On
 * a rebalance (another live replica should own a stack, or the stack is gone) we call onLost first,
 * keep renewing until it returns, and only then release the lease, so the hand-over has no overlap.
 * stop() hands every stack over the same way (its membership lease loses its holder at once, so
 * the others count it gone). The Pulumi backend's own lock stays a second line of defence.
 *
 * Cost: one list and one write per held stack every renew interval (16 writes in flight at most,
 * renewals first). A replica takes new stacks only while its tick is within half a renew interval,
 * so it never holds more than it can renew before the deadline; the rest wait for more replicas. The assumption, as in client-go, is
 * that the replicas' clocks run at about the same rate.
 */

/** What StackLeases needs. */
export interface StackLeasesOptions {
  readonly kubeConfig: k8s.KubeConfig;
  /** The namespace of the leases (the agent's own). */
  readonly namespace: string;
  /** This replica's name (the pod name): unique among live replicas. */
  readonly identity: string;
  /** How long a lease outlives its last renewal. */
  readonly leaseDurationMs: number;
  /** @default leaseDurationMs / 3 */
  readonly renewIntervalMs?: number;
  /** How long after its last successful renewal a held stack is given up without the API. @default leaseDurationMs * 2 / 3 */
  readonly renewDeadlineMs?: number;
  /** The stack keys (`<namespace>.<name>`) that exist now. */
  stacks(): readonly string[];
  /** Start the stack's worker: this replica holds its lease now. */
  onAcquired(stack: string): void;
  /** Stop the stack's worker and resolve when its current run has ended. */
  onLost(stack: string): Promise<void>;
  readonly log: Logger;
  /** The leases' API (tests pass a fake). @default the CoordinationV1Api of kubeConfig */
  readonly port?: LeasePort;
  /** A monotonic clock in ms. @default performance.now */
  readonly clock?: () => number;
}

/** The Lease calls StackLeases makes, in its namespace; failures are the client's ApiException (409 on a stale resourceVersion). */
export interface LeasePort {
  list(labelSelector: string): Promise<k8s.V1Lease[]>;
  create(lease: k8s.V1Lease): Promise<k8s.V1Lease>;
  replace(lease: k8s.V1Lease): Promise<k8s.V1Lease>;
  /** Deletes the lease if it is still at `resourceVersion`. */
  remove(name: string, resourceVersion: string): Promise<void>;
}

const leaseLabel = "ferry.dev/lease";
const stackAnnotation = "ferry.dev/stack";

interface Settings {
  readonly leaseDurationMs: number;
  readonly renewIntervalMs: number;
  readonly renewDeadlineMs: number;
  readonly requestTimeoutMs: number;
}

/** The one place for StackLeases' defaults; rejects settings that would break the exclusion. */
function settingsOf(o: StackLeasesOptions): Settings {
  const leaseDurationMs = o.leaseDurationMs;
  const renewIntervalMs = o.renewIntervalMs ?? Math.round(leaseDurationMs / 3);
  const renewDeadlineMs = o.renewDeadlineMs ?? Math.round((leaseDurationMs * 2) / 3);
  if (!(leaseDurationMs >= 1000))
    throw new Error(`stack leases: the lease duration is ${leaseDurationMs} ms; give at least 1s (e.g. --lease-duration 15s)`);
  if (!(renewIntervalMs > 0 && renewIntervalMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs))
    throw new Error(
      `stack leases: need 0 < renew interval (${renewIntervalMs} ms) < renew deadline (${renewDeadlineMs} ms) < lease duration (${leaseDurationMs} ms)`,
    );
  return { leaseDurationMs, renewIntervalMs, renewDeadlineMs, requestTimeoutMs: Math.max(500, Math.round(renewDeadlineMs / 2)) };
}

/** The CoordinationV1Api behind a LeasePort, each request bounded by `timeoutMs` so a hung API cannot stall a tick. */
export function kubeLeasePort(kc: k8s.KubeConfig, namespace: string, timeoutMs: number): LeasePort {
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  // The object-parameter API takes the Observable form of middleware (its Promise form is for the other API style).
  const options = (): k8s.ConfigurationOptions<k8s.ObservableMiddleware> => ({
    middleware: [
      {
        pre: (ctx) => {
          ctx.setSignal(AbortSignal.timeout(timeoutMs));
          return new k8s.Observable(Promise.resolve(ctx));
        },
        post: (ctx) => new k8s.Observable(Promise.resolve(ctx)),
      },
    ],
    middlewareMergeStrategy: "append",
  });
  return {
    list: async (labelSelector) => (await api.listNamespacedLease({ namespace, labelSelector }, options())).items,
    create: (body) => api.createNamespacedLease({ namespace, body }, options()),
    replace: (body) => api.replaceNamespacedLease({ namespace, name: body.metadata?.name ?? "", body }, options()),
    remove: async (name, resourceVersion) => {
      await api.deleteNamespacedLease({ namespace, name, body: { preconditions: { resourceVersion } } }, options());
    },
  };
}

/** The server's text of a MicroTime field (client-node hands it back as a string or a Date). */
function timeText(t: unknown): string {
  if (t instanceof Date) return t.toISOString();
  return typeof t === "string" ? t : "";
}

function recordOf(lease: k8s.V1Lease): LeaseRecord {
  const seconds = lease.spec?.leaseDurationSeconds;
  return {
    name: lease.metadata?.name ?? "",
    holder: lease.spec?.holderIdentity ?? "",
    renewTime: timeText(lease.spec?.renewTime),
    resourceVersion: lease.metadata?.resourceVersion ?? "",
    durationMs: seconds === undefined ? undefined : seconds * 1000,
    transitions: lease.spec?.leaseTransitions ?? 0,
  };
}

/** At most this many lease writes at once: renewing hundreds of stacks must not trip the API server's max-in-flight limit. */
const writesInFlight = 16;

/** Runs the tasks, at most `limit` at a time, in order. */
async function inParallel(limit: number, tasks: readonly (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

function conflictOrGone(err: unknown): boolean {
  return err instanceof k8s.ApiException && (err.code === 409 || err.code === 404);
}

function describe(err: unknown): string {
  if (err instanceof k8s.ApiException) return `HTTP ${err.code}`;
  return err instanceof Error ? err.message : String(err);
}

/** Shares the Stacks among the agent replicas: every stack runs on exactly one live replica, the holder of its Lease. */
export class StackLeases {
  private readonly settings: Settings;
  private readonly port: LeasePort;
  private readonly clock: () => number;
  private readonly memberName: string;
  private sightings: Sightings = new Map();
  private readonly held = new Map<string, Hold>();
  /** onLost calls in flight, by stack (hand-overs and losses). */
  private readonly pending = new Map<string, Promise<void>>();
  /** Stacks lost without a hand-over whose onLost has not returned. */
  private readonly stopping = new Set<string>();
  private live: readonly string[] = [];
  private loop?: Promise<void>;
  private stopped = false;
  /** stop() was called: hand every stack over, take none. */
  private leaving = false;
  private tickStarted = 0;
  private wake?: () => void;
  private watchdog?: NodeJS.Timeout;

  constructor(private readonly o: StackLeasesOptions) {
    this.settings = settingsOf(o);
    this.port = o.port ?? kubeLeasePort(o.kubeConfig, o.namespace, this.settings.requestTimeoutMs);
    this.clock = o.clock ?? (() => performance.now());
    this.memberName = replicaLeaseName(o.identity);
  }

  /** Joins the replicas and takes this replica's share; resolves after the first tick. */
  async start(): Promise<void> {
    if (this.loop) throw new Error(`stack leases of ${this.o.identity}: already started`);
    try {
      await this.tick();
    } catch (err) {
      throw new Error(
        `stack leases of ${this.o.identity}: cannot read or write the Leases in namespace ${this.o.namespace} (${describe(err)}); check the API server and that the agent may get, list, create, update and delete leases there`,
        { cause: err },
      );
    }
    const { renewIntervalMs, leaseDurationMs, renewDeadlineMs } = this.settings;
    this.watchdog = setInterval(
      () => this.enforceDeadline(),
      Math.max(50, Math.min(renewIntervalMs, leaseDurationMs - renewDeadlineMs) / 2),
    );
    this.loop = this.run();
  }

  /**
   * Leaves: onLost for every owned stack, releases every lease, deletes the membership lease. The
   * leases stay renewed while onLost waits for the runs, so nobody takes a stack before its run ended.
   */
  async stop(): Promise<void> {
    if (!this.loop) return;
    // 1. Hand everything over through the ticks (renewals go on; the watchdog still guards the deadline).
    this.leaving = true;
    this.wake?.();
    while (this.held.size > 0 || this.pending.size > 0) await new Promise((r) => setTimeout(r, 50));
    // 2. Then stop ticking and remove the membership lease.
    this.stopped = true;
    this.wake?.();
    if (this.watchdog) clearInterval(this.watchdog);
    await this.loop;
    try {
      const member = (await this.port.list(leaseLabel)).find((l) => l.metadata?.name === this.memberName);
      if (member?.metadata?.resourceVersion) await this.port.remove(this.memberName, member.metadata.resourceVersion);
    } catch (err) {
      if (!conflictOrGone(err)) this.o.log.warn({ err: describe(err) }, `stack leases: cannot delete Lease/${this.memberName}; it expires`);
    }
  }

  /** The stacks whose lease this replica holds (including those being handed over). */
  owned(): ReadonlySet<string> {
    return new Set(this.held.keys());
  }

  /** The live replicas as of the last tick, sorted. */
  replicas(): readonly string[] {
    return this.live;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // One tick every renew interval from the start of the last (not from its end): a slow tick must not stretch the period.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, this.tickStarted + this.settings.renewIntervalMs - this.clock()));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (this.stopped) return;
      try {
        await this.tick();
      } catch (err) {
        this.o.log.warn({ err: describe(err) }, "stack leases: tick failed");
      }
    }
  }

  /** Stops every held stack whose renewals have failed past the deadline, without waiting for the API. */
  private enforceDeadline(): void {
    for (const stack of overdueHolds(this.held, this.clock(), this.settings.renewDeadlineMs)) {
      this.o.log.warn(
        { stack },
        `stack ${stack}: its lease was not renewed for ${this.settings.renewDeadlineMs} ms (API server unreachable?); stopping its runs before another replica may take it`,
      );
      this.lose(stack);
    }
  }

  private lose(stack: string): void {
    this.held.delete(stack);
    this.stopping.add(stack);
    void this.callOnLost(stack).finally(() => this.stopping.delete(stack));
  }

  private callOnLost(stack: string): Promise<void> {
    const running = this.pending.get(stack);
    if (running) return running;
    const p = (async () => {
      try {
        await this.o.onLost(stack);
      } catch (err) {
        this.o.log.error({ stack, err: describe(err) }, `stack ${stack}: stopping its worker failed`);
      } finally {
        this.pending.delete(stack);
      }
    })();
    this.pending.set(stack, p);
    return p;
  }

  private leaseBody(stack: string | undefined, name: string, base: k8s.V1Lease | undefined, holder: string | undefined): k8s.V1Lease {
    const now = new k8s.V1MicroTime(Date.now());
    const previous = base?.spec;
    const handover = (previous?.holderIdentity ?? "") !== holder;
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        ...base?.metadata,
        name,
        namespace: this.o.namespace,
        labels: { ...base?.metadata?.labels, [leaseLabel]: stack === undefined ? "replica" : "stack" },
        ...(stack === undefined ? {} : { annotations: { ...base?.metadata?.annotations, [stackAnnotation]: stack } }),
      },
      spec: {
        holderIdentity: holder,
        leaseDurationSeconds: Math.ceil(this.settings.leaseDurationMs / 1000),
        acquireTime: handover || !previous?.acquireTime ? now : previous.acquireTime,
        renewTime: now,
        leaseTransitions: base ? (previous?.leaseTransitions ?? 0) + (handover && holder !== undefined ? 1 : 0) : 0,
      },
    };
  }

  private async tick(): Promise<void> {
    const started = this.clock();
    this.tickStarted = started;
    const all = await this.port.list(leaseLabel);
    // Seen when the answer arrived, not when it was asked: a later `since` only delays expiry (the safe side).
    const now = this.clock();
    const records = all.map(recordOf);
    this.sightings = observe(this.sightings, records, now);
    const byName = new Map(all.map((l) => [l.metadata?.name ?? "", l]));

    // 1. Membership: renew ours, see who else is alive, collect the leases of replicas long gone.
    await this.renewMembership(byName.get(this.memberName));
    const members = all.filter((l) => l.metadata?.labels?.[leaseLabel] === "replica" && l.metadata.name !== this.memberName).map(recordOf);
    const live = liveReplicas(members, this.sightings, now, this.o.identity, this.settings.leaseDurationMs);
    if (live.join() !== this.live.join()) this.o.log.info({ replicas: live }, `stack leases: ${live.length} live replica(s)`);
    this.live = live;
    const dead = members.filter(
      (m) => isExpired(m, this.sightings, now, this.settings.leaseDurationMs) && ownerOf(m.name, live) === this.o.identity,
    );

    // 2. Stacks: decide from what this tick read.
    const stackLeases = new Map<string, LeaseRecord>();
    const stackObjects = new Map<string, k8s.V1Lease>();
    for (const l of all) {
      const stack = l.metadata?.annotations?.[stackAnnotation];
      if (l.metadata?.labels?.[leaseLabel] !== "stack" || stack === undefined) continue;
      stackLeases.set(stack, recordOf(l));
      stackObjects.set(stack, l);
    }
    const plan = planStackLeases({
      identity: this.o.identity,
      stacks: this.o.stacks(),
      // Leaving: nothing hashes to us any more, so every stack is handed over and none taken.
      replicas: this.leaving ? live.filter((r) => r !== this.o.identity) : live,
      leases: stackLeases,
      sightings: this.sightings,
      held: this.held,
      stopping: this.stopping,
      now,
      leaseDurationMs: this.settings.leaseDurationMs,
      renewDeadlineMs: this.settings.renewDeadlineMs,
    });

    // 3. Act: losses first (stop at once), then the writes, all in parallel.
    for (const stack of plan.lost) {
      this.o.log.warn({ stack }, `stack ${stack}: lost its lease (taken, deleted, or not renewed in time); stopping its runs`);
      this.lose(stack);
    }
    for (const stack of plan.forget) this.held.delete(stack);
    for (const stack of plan.handOver) this.handOver(stack);
    // Renewals first. New stacks only while the tick is within half a renew interval: a replica
    // takes no more stacks than it can renew in time (else the first it took would pass the renew
    // deadline before the tick ends); the others are taken on later ticks, or stay for more replicas.
    let deferred = 0;
    const budget = this.settings.renewIntervalMs / 2;
    await inParallel(writesInFlight, [
      ...plan.renew.map((w) => () => this.renew(w.stack, stackObjects.get(w.stack))),
      ...plan.release.map((r) => () => this.release(r.stack, stackObjects.get(r.stack), r.remove)),
      ...plan.acquire.map((w) => async () => {
        if (this.clock() - started < budget) await this.acquire(w.stack, w.lease && stackObjects.get(w.stack));
        else deferred++;
      }),
      ...[...plan.collect, ...dead].map((r) => () => this.remove(r)),
    ]);
    if (deferred > 0)
      this.o.log.warn(
        { deferred, held: this.held.size, tickMs: Math.round(this.clock() - started) },
        `stack leases: ${deferred} stack(s) left for the next tick: lease writes fill half the renew interval (${this.settings.renewIntervalMs} ms) at ${this.held.size} held; add replicas or lengthen the lease duration if this persists`,
      );
  }

  private async renewMembership(current: k8s.V1Lease | undefined): Promise<void> {
    // Leaving: a membership lease without holder tells the others at once that we are gone.
    if (this.leaving && (current?.spec?.holderIdentity ?? "") === "") return;
    const body = this.leaseBody(undefined, this.memberName, current, this.leaving ? undefined : this.o.identity);
    try {
      await (current ? this.port.replace(body) : this.port.create(body));
    } catch (err) {
      // A 409 is a write of ours racing a read; the next tick retries. Others drop us after the lease duration.
      this.o.log.warn({ err: describe(err) }, `stack leases: cannot renew Lease/${this.memberName} in ${this.o.namespace}`);
    }
  }

  private handOver(stack: string): void {
    const hold = this.held.get(stack);
    if (!hold) return;
    this.o.log.info({ stack }, `stack ${stack}: handing over (another replica should own it, or it is gone)`);
    this.held.set(stack, { ...hold, state: "handing-over" });
    void this.callOnLost(stack).then(() => {
      const h = this.held.get(stack);
      if (h?.state === "handing-over") this.held.set(stack, { ...h, state: "handed-over" });
      // Release now rather than a renew interval later.
      this.wake?.();
    });
  }

  private async acquire(stack: string, current: k8s.V1Lease | undefined): Promise<void> {
    const sent = this.clock();
    const body = this.leaseBody(stack, stackLeaseName(stack), current, this.o.identity);
    try {
      await (current ? this.port.replace(body) : this.port.create(body));
    } catch (err) {
      if (!conflictOrGone(err)) this.o.log.warn({ stack, err: describe(err) }, `stack ${stack}: cannot take its lease`);
      return; // 409: another replica won this race.
    }
    if (this.held.has(stack)) return;
    this.held.set(stack, { state: "running", renewedAt: sent });
    this.o.log.info({ stack }, `stack ${stack}: acquired`);
    this.o.onAcquired(stack);
  }

  private async renew(stack: string, current: k8s.V1Lease | undefined): Promise<void> {
    const sent = this.clock();
    try {
      await this.port.replace(this.leaseBody(stack, stackLeaseName(stack), current, this.o.identity));
    } catch (err) {
      // A 409 means a write we did not make; the next tick reads it and decides.
      this.o.log.warn({ stack, err: describe(err) }, `stack ${stack}: cannot renew its lease`);
      return;
    }
    const hold = this.held.get(stack);
    if (hold) this.held.set(stack, { ...hold, renewedAt: sent });
  }

  private async release(stack: string, current: k8s.V1Lease | undefined, remove: boolean): Promise<void> {
    try {
      if (remove && current?.metadata?.resourceVersion) await this.port.remove(stackLeaseName(stack), current.metadata.resourceVersion);
      else await this.port.replace(this.leaseBody(stack, stackLeaseName(stack), current, undefined));
    } catch (err) {
      const gone = err instanceof k8s.ApiException && err.code === 404;
      if (!gone) {
        // On a 409 the next tick reads the lease again (and forgets the hold if the release did go through).
        if (!conflictOrGone(err)) this.o.log.warn({ stack, err: describe(err) }, `stack ${stack}: cannot release its lease`);
        return;
      }
    }
    this.held.delete(stack);
    this.o.log.info({ stack }, `stack ${stack}: released`);
  }

  private async remove(lease: LeaseRecord): Promise<void> {
    try {
      await this.port.remove(lease.name, lease.resourceVersion);
    } catch (err) {
      if (!conflictOrGone(err)) this.o.log.warn({ err: describe(err) }, `stack leases: cannot delete the stale Lease/${lease.name}`);
    }
  }
}
