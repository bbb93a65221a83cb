import { createHash } from "node:crypto";

/**
 * The decisions of sharding Stacks across agent replicas on coordination.k8s.io Leases, pure (no I/O,
 * no clock): who is alive, who should own a stack, and what to do with each stack lease this tick.
 * src/agent/stack-leases.ts reads the Leases, asks these functions, and writes what they say.
 *
 * Expiry is by local observation, as client-go's leader election does: a lease held by another
 * counts as expired only when its (holderIdentity, renewTime, resourceVersion) has not changed for
 * its leaseDurationSeconds on *our* clock since we first saw that version. Nobody's wall clock is
 * trusted, only the rate of each replica's own monotonic clock.
 */

/** A Lease as the shard decisions see it. */
export interface LeaseRecord {
  /** metadata.name. */
  readonly name: string;
  /** spec.holderIdentity; "" when free. */
  readonly holder: string;
  /** spec.renewTime as the server printed it ("" when unset). */
  readonly renewTime: string;
  readonly resourceVersion: string;
  /** spec.leaseDurationSeconds in ms, when set. */
  readonly durationMs?: number;
  /** spec.leaseTransitions (0 when unset). */
  readonly transitions: number;
}

/** When this replica first saw a lease's current version (local monotonic ms). */
export interface Sighting {
  readonly version: string;
  readonly since: number;
}

/** The sightings of every lease by name. */
export type Sightings = ReadonlyMap<string, Sighting>;

/** What a lease version is: a change of holder, renewal or any write makes a new one. */
function versionOf(lease: LeaseRecord): string {
  return `${lease.holder}\u0000${lease.renewTime}\u0000${lease.resourceVersion}`;
}

/** Records the leases seen now: a lease whose version changed (or is new) is seen since `now`; vanished leases are dropped. */
export function observe(previous: Sightings, leases: readonly LeaseRecord[], now: number): Map<string, Sighting> {
  const next = new Map<string, Sighting>();
  for (const lease of leases) {
    const version = versionOf(lease);
    const seen = previous.get(lease.name);
    next.set(lease.name, seen && seen.version === version ? seen : { version, since: now });
  }
  return next;
}

/** Whether a lease may be taken: free (no holder), or unchanged for its duration on our clock since we first saw it. */
export function isExpired(lease: LeaseRecord, sightings: Sightings, now: number, defaultDurationMs: number): boolean {
  if (lease.holder === "") return true;
  const seen = sightings.get(lease.name);
  // Not yet observed (observe() runs first in a tick, so this is a caller's slip): not expired.
  if (!seen || seen.version !== versionOf(lease)) return false;
  return now - seen.since >= (lease.durationMs ?? defaultDurationMs);
}

/** The name of a replica's membership lease. */
export function replicaLeaseName(identity: string): string {
  return `replica.${identity}`;
}

const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * The name of a stack's lease: `stack.<stackKey>`, or `stack.<sha256 prefix>` when the key is no
 * valid object name or too long (the key itself is kept in an annotation).
 */
export function stackLeaseName(stackKey: string): string {
  const plain = `stack.${stackKey}`;
  if (plain.length <= 253 && dnsSubdomain.test(plain)) return plain;
  return `stack.${createHash("sha256").update(stackKey).digest("hex").slice(0, 40)}`;
}

/**
 * The live replicas, sorted: the holders of membership leases that are not expired, and always
 * `self` (a replica that cannot renew its own leases stops its stacks by the renew deadline instead).
 */
export function liveReplicas(
  members: readonly LeaseRecord[],
  sightings: Sightings,
  now: number,
  self: string,
  defaultDurationMs: number,
): string[] {
  const live = new Set<string>([self]);
  for (const m of members) if (!isExpired(m, sightings, now, defaultDurationMs)) live.add(m.holder);
  return [...live].sort();
}

/**
 * The replica that should own a stack: rendezvous (highest-random-weight) hashing with sha256, so a
 * change from N to N±1 replicas moves only the ~1/N of the stacks the added or removed replica wins.
 */
export function ownerOf(stackKey: string, replicas: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = "";
  for (const r of replicas) {
    const weight = createHash("sha256").update(r).update("\u0000").update(stackKey).digest("hex");
    if (best === undefined || weight > bestWeight || (weight === bestWeight && r < best)) {
      best = r;
      bestWeight = weight;
    }
  }
  return best;
}

/**
 * A stack lease this replica holds: `running` (its worker runs), `handing-over` (onLost was
 * called for a rebalance or a deleted stack and the worker is stopping; the lease is still renewed
 * so nobody takes it meanwhile), `handed-over` (the worker stopped; release the lease now).
 */
export interface Hold {
  readonly state: "running" | "handing-over" | "handed-over";
  /** Local monotonic ms at which the last successful write of the lease was *sent*. */
  readonly renewedAt: number;
}

/** What one tick knows. */
export interface StackLeaseInput {
  readonly identity: string;
  /** The stack keys that exist now. */
  readonly stacks: readonly string[];
  /** liveReplicas() of this tick. */
  readonly replicas: readonly string[];
  /** The stack leases read this tick, by stack key. */
  readonly leases: ReadonlyMap<string, LeaseRecord>;
  readonly sightings: Sightings;
  /** The stack leases this replica holds, by stack key. */
  readonly held: ReadonlyMap<string, Hold>;
  /** Stacks lost without a hand-over whose onLost has not returned yet: not taken again until it has. */
  readonly stopping: ReadonlySet<string>;
  readonly now: number;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
}

/** A lease to write: create it when `lease` is undefined, else update that version. */
export interface LeaseWrite {
  readonly stack: string;
  readonly lease?: LeaseRecord;
}

/** What to do with the stack leases this tick. */
export interface StackLeasePlan {
  /** Take these leases (create, or update a free, expired or already-ours version), then start their workers. */
  readonly acquire: readonly LeaseWrite[];
  /** Renew these held leases (running and handing-over). */
  readonly renew: readonly (LeaseWrite & { readonly lease: LeaseRecord })[];
  /** Start the hand-over of these running stacks (rebalance, or the stack is gone): call onLost, keep renewing. */
  readonly handOver: readonly string[];
  /** Release these handed-over leases: clear the holder, or delete the lease when the stack is gone. */
  readonly release: readonly { readonly stack: string; readonly lease: LeaseRecord; readonly remove: boolean }[];
  /** These holds are gone without our consent (taken, deleted, or not renewed by the deadline): call onLost at once. */
  readonly lost: readonly string[];
  /** Holds to drop silently: released already (e.g. a release that timed out but went through). */
  readonly forget: readonly string[];
  /** Leases of stacks that no longer exist, free or expired, that this replica should delete. */
  readonly collect: readonly LeaseRecord[];
}

/** The held stacks whose last successful renewal was sent `renewDeadlineMs` ago or longer: stop them now. */
export function overdueHolds(held: ReadonlyMap<string, Hold>, now: number, renewDeadlineMs: number): string[] {
  return [...held].filter(([, h]) => now - h.renewedAt >= renewDeadlineMs).map(([stack]) => stack);
}

/** Decides, for every stack lease, whether this replica acquires, renews, hands over, releases, or has lost it. */
export function planStackLeases(input: StackLeaseInput): StackLeasePlan {
  const { identity, held, leases, sightings, now } = input;
  const exists = new Set(input.stacks);
  const plan = {
    acquire: [] as LeaseWrite[],
    renew: [] as (LeaseWrite & { lease: LeaseRecord })[],
    handOver: [] as string[],
    release: [] as { stack: string; lease: LeaseRecord; remove: boolean }[],
    lost: [] as string[],
    forget: [] as string[],
    collect: [] as LeaseRecord[],
  };
  const overdue = new Set(overdueHolds(held, now, input.renewDeadlineMs));
  const keys = new Set<string>([...input.stacks, ...held.keys(), ...leases.keys()]);
  for (const stack of [...keys].sort()) {
    const lease = leases.get(stack);
    const hold = held.get(stack);
    const owner = ownerOf(stack, input.replicas);
    if (hold) {
      if (!lease || lease.holder !== identity) {
        // Someone took or deleted it; a release of ours that went through looks the same.
        (hold.state === "handed-over" ? plan.forget : plan.lost).push(stack);
      } else if (overdue.has(stack)) {
        plan.lost.push(stack);
      } else if (hold.state === "handed-over") {
        plan.release.push({ stack, lease, remove: !exists.has(stack) });
      } else {
        if (hold.state === "running" && (!exists.has(stack) || owner !== identity)) plan.handOver.push(stack);
        plan.renew.push({ stack, lease });
      }
      continue;
    }
    if (owner !== identity) continue;
    if (exists.has(stack)) {
      if (input.stopping.has(stack)) continue;
      if (!lease) plan.acquire.push({ stack });
      else if (lease.holder === identity || isExpired(lease, sightings, now, input.leaseDurationMs)) plan.acquire.push({ stack, lease });
    } else if (lease && (lease.holder === identity || isExpired(lease, sightings, now, input.leaseDurationMs))) {
      plan.collect.push(lease);
    }
  }
  return plan;
}
