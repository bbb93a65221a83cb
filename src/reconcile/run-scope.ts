import { DesiredObject } from "../desired-state/desired-state";
import { ObjectId, resourceName } from "../desired-state/object-id";
import { withoutProviderAnnotations } from "../desired-state/provider-annotations";
import { sameData } from "./dry-run";
import { Observed, StackSnapshot } from "./ports";

/**
 * What an update reads and writes:
 * - full: every object, refreshed from the cluster first (`pulumi up --refresh`);
 * - targets: only these objects (URNs), refreshed and updated, plus the stack's own frame (its
 *   outputs, providers); `dependents`: also what depends on them (a heal of a deleted Namespace);
 * - none: nothing differs from what the last update applied; the engine is not run.
 */
export type RunScope =
  | { readonly kind: "full" }
  | {
      readonly kind: "targets";
      /** Entries of the state; `creates`: of objects the state does not hold yet. */
      readonly urns: readonly string[];
      readonly creates: readonly string[];
      readonly dependents: boolean;
    }
  | { readonly kind: "none" };

/** The desired objects an update creates or changes: not in the state, or declared otherwise than the state recorded. Pure. */
export function changedObjects(desired: readonly DesiredObject[], snapshot: StackSnapshot): DesiredObject[] {
  const recorded = new Map(snapshot.objects.map((m) => [resourceName(m.id), m.inputs]));
  return desired.filter((o) => {
    const inputs = recorded.get(resourceName(o.id));
    return !inputs || !sameData(withoutProviderAnnotations(inputs), o.object);
  });
}

/** A kind to list (API version, kind, namespace). */
export interface ObservedKind {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string;
}

/** How a kind that could not be listed is named (`apps/v1/Deployment in web`). Pure. */
export function kindName(k: ObservedKind): string {
  return `${k.apiVersion}/${k.kind}${k.namespace !== undefined ? ` in ${k.namespace}` : ""}`;
}

/** The kinds (API version, kind, namespace) to list to see whether the declared objects the state holds changed live. Pure. */
export function observedKinds(desired: readonly DesiredObject[], snapshot: StackSnapshot): ObservedKind[] {
  const managed = new Set(snapshot.objects.map((m) => resourceName(m.id)));
  const kinds = new Map<string, ObservedKind>();
  for (const d of desired) {
    if (!managed.has(resourceName(d.id))) continue;
    const k = { apiVersion: d.object.apiVersion, kind: d.id.kind, ...(d.id.namespace !== undefined ? { namespace: d.id.namespace } : {}) };
    kinds.set(kindName(k), k);
  }
  return [...kinds.values()];
}

/**
 * The declared objects the state holds that changed in the cluster since the engine last read or
 * wrote them: gone, a new generation (a spec change), or — for kinds without generations — a new
 * resourceVersion. A controller's status writes move a resourceVersion too: such an object is only
 * refreshed and found equal. Objects of kinds that could not be listed count as changed. Pure.
 */
export function changedLive(
  desired: readonly DesiredObject[],
  snapshot: StackSnapshot,
  live: { readonly seen: ReadonlyMap<string, Observed>; readonly unlisted: readonly string[] },
): ObjectId[] {
  const recorded = new Map(snapshot.objects.map((m) => [resourceName(m.id), m.observed]));
  const unlisted = new Set(live.unlisted);
  return desired
    .filter((d) => {
      const rn = resourceName(d.id);
      if (!recorded.has(rn)) return false; // a create: already a change
      if (unlisted.has(kindName({ apiVersion: d.object.apiVersion, kind: d.id.kind, namespace: d.id.namespace }))) return true;
      const now = live.seen.get(rn);
      const then = recorded.get(rn);
      if (!now) return true;
      if (!then) return true;
      if (then.generation !== undefined && now.generation !== undefined) return then.generation !== now.generation;
      return then.resourceVersion !== now.resourceVersion;
    })
    .map((d) => d.id);
}

/** What {@link changedScope} decides from. */
export interface ChangedScopeInput {
  readonly snapshot: StackSnapshot;
  readonly desired: readonly DesiredObject[];
  /** Resource name -> URN of an earlier ferry the program takes over as an alias. */
  readonly adopt: Readonly<Record<string, string>>;
  /** Objects the live view saw drift from what ferry applied. */
  readonly drifted: readonly ObjectId[];
  /**
   * Units are held back, and the program registers the state entries no unit declares as they are
   * (kept): such a run is full (the engine refuses a targeted update that registers them: "Duplicate
   * resource URN").
   */
  readonly keptUndeclared: boolean;
  /** The cluster is not the one the last update applied to (rebuilt, its etcd lost, or another). */
  readonly clusterChanged: boolean;
  /** The stack's outputs (a pin, hook digests) differ from what the state recorded. */
  readonly outputsChanged: boolean;
  readonly urnOf: (id: ObjectId) => string;
}

/**
 * The scope of a run that applies only what changed: the objects whose desired state differs from
 * what the last update applied (new ones included), the drifted ones, and the state entries Git no
 * longer declares. A stack with an empty state, or whose entries are being taken over from other
 * URNs, is updated whole. Pure.
 */
export function changedScope(o: ChangedScopeInput): { scope: RunScope; why: string } {
  if (o.snapshot.objects.length === 0) return { scope: { kind: "full" }, why: "the stack manages no object yet" };
  if (o.keptUndeclared) return { scope: { kind: "full" }, why: "units are held back: every object is kept or applied" };
  if (o.clusterChanged)
    return { scope: { kind: "full" }, why: "the cluster is not the one the last update applied to (its kube-system Namespace is new)" };
  if (Object.keys(o.adopt).length > 0)
    return { scope: { kind: "full" }, why: "state entries of an earlier ferry are taken over under their new names" };
  const declared = new Map(o.desired.map((d) => [o.urnOf(d.id), d]));
  const urns = new Set(changedObjects(o.desired, o.snapshot).map((d) => o.urnOf(d.id)));
  const changed = urns.size;
  for (const id of o.drifted) if (declared.has(o.urnOf(id))) urns.add(o.urnOf(id));
  const drifted = urns.size - changed;
  let deleted = 0;
  for (const m of o.snapshot.objects) {
    if (declared.has(m.urn) || urns.has(m.urn)) continue;
    urns.add(m.urn);
    deleted++;
  }
  if (urns.size === 0 && !o.outputsChanged) return { scope: { kind: "none" }, why: "nothing differs from what the last update applied" };
  const parts = [`${changed} changed`, `${drifted} drifted`, `${deleted} removed from Git`];
  const inState = new Set(o.snapshot.objects.map((m) => m.urn));
  return {
    scope: {
      kind: "targets",
      urns: [...urns].filter((u) => inState.has(u)),
      creates: [...urns].filter((u) => !inState.has(u)),
      dependents: false,
    },
    why: `${parts.join(", ")} of ${o.desired.length} objects`,
  };
}
