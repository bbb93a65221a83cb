import { DesiredObject } from "../desired-state/desired-state";
import { formatLocation } from "../desired-state/manifest-error";
import { displayName, resourceName } from "../desired-state/object-id";
import { StackSnapshot } from "./ports";

/**
 * The last line of defence: no run may delete a live object whose identity the same run's desired
 * state declares (two state entries for one object, an identity resolved another way, an engine
 * surprise). Given the state entries a run would delete, returns the refusal, naming each object,
 * where Git declares it and the state entry; undefined when none of them is declared. Pure.
 */
export function declaredDeletes(
  deleting: readonly string[],
  snapshot: StackSnapshot,
  desired: readonly DesiredObject[],
): string | undefined {
  const declared = new Map(desired.map((o) => [resourceName(o.id), o]));
  const stateIds = new Map(snapshot.objects.map((m) => [m.urn, m.id]));
  const problems: string[] = [];
  for (const urn of deleting) {
    const id = stateIds.get(urn);
    const still = id && declared.get(resourceName(id));
    if (!id || !still) continue;
    problems.push(
      `${displayName(id)}: the engine would delete it (state entry ${urn}), but ${formatLocation(still.location)} still declares it`,
    );
  }
  if (problems.length === 0) return undefined;
  return (
    `refusing to delete ${problems.length === 1 ? "an object" : `${problems.length} objects`} that Git still declares; nothing was applied:\n` +
    problems.map((p) => `- ${p}`).join("\n") +
    `\n  fix: the stack's state holds ${problems.length === 1 ? "that object" : "those objects"} twice; drop the stale entry from the state ` +
    "without touching the cluster (`pulumi state delete '<urn>'` in the stack's workspace), then sync again"
  );
}
