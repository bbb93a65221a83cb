import type { EngineOp, EngineStep } from "./ports";

/** How one Kubernetes object changed in an update. */
export type ObjectChange = "created" | "updated" | "replaced" | "deleted" | "unchanged";

/** Counts of object changes in one run. */
export interface ChangeCounts {
  readonly created: number;
  readonly updated: number;
  readonly replaced: number;
  readonly deleted: number;
  readonly unchanged: number;
}

/** One step of an update, as the engine reported it. */
export type StepEvent = Pick<EngineStep, "op" | "urn" | "type">;

/** Whether a resource type is a Kubernetes object (not a provider or a ferry component). */
export function isKubernetesObject(type: string): boolean {
  return type.startsWith("kubernetes:") && !type.startsWith("pulumi:providers:");
}

/** Maps an engine operation to what happened to the object, or undefined for steps that change nothing visible. */
export function changeOf(op: EngineOp): ObjectChange | undefined {
  switch (op) {
    case "create":
    case "import":
      return "created";
    case "update":
      return "updated";
    case "replace": // one per replacement; its create-replacement and delete-replaced steps are not counted
      return "replaced";
    case "delete":
      return "deleted";
    case "same":
      return "unchanged";
    default:
      return undefined; // refresh, read, delete-replaced, discard...
  }
}

/** The resource name part of a URN (`...::apps/Deployment/demo/web`). */
export function urnName(urn: string): string {
  const i = urn.lastIndexOf("::");
  return i < 0 ? urn : urn.slice(i + 2);
}

/** `Deployment/demo/web` from the resource name `apps/Deployment/demo/web`. */
export function objectDisplayName(urn: string): string {
  const name = urnName(urn);
  const slash = name.indexOf("/");
  return slash < 0 ? name : name.slice(slash + 1);
}

/** Counts the changes of Kubernetes objects in a list of completed steps, once per object. Pure. */
export function countChanges(steps: readonly StepEvent[]): ChangeCounts {
  const counts = { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 0 };
  const net = new Map<string, ObjectChange | undefined>();
  for (const s of steps) {
    if (!isKubernetesObject(s.type)) continue;
    const change = changeOf(s.op);
    if (change) net.set(s.urn, netChange(net.get(s.urn), change));
  }
  for (const change of net.values()) if (change) counts[change]++;
  return counts;
}

/** What an object went through over the steps of a run (one update, or two when it settles): created stays created. */
function netChange(before: ObjectChange | undefined, now: ObjectChange): ObjectChange | undefined {
  if (before === undefined) return now;
  if (now === "deleted") return before === "created" ? undefined : "deleted";
  if (before === "created" || before === "deleted") return before;
  const rank: Record<ObjectChange, number> = { unchanged: 0, updated: 1, replaced: 2, created: 3, deleted: 3 };
  return rank[now] > rank[before] ? now : before;
}

/** Whether a run changed (or, previewed, would change) any object. Pure. */
export function hasChanges(c: ChangeCounts): boolean {
  return c.created + c.updated + c.replaced + c.deleted > 0;
}

/** `2 created, 1 updated, 0 deleted, 5 unchanged` */
export function formatCounts(c: ChangeCounts): string {
  const parts = [`${c.created} created`, `${c.updated} updated`];
  if (c.replaced) parts.push(`${c.replaced} replaced`);
  parts.push(`${c.deleted} deleted`, `${c.unchanged} unchanged`);
  return parts.join(", ");
}
