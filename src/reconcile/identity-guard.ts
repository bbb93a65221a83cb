import { DesiredObject } from "../desired-state/desired-state";
import { formatLocation } from "../desired-state/manifest-error";
import { displayName, resourceName } from "../desired-state/object-id";
import { isKubernetesObject } from "./change-summary";
import { EngineStep, StackSnapshot } from "./ports";

/**
 * The last line of defence: the engine's plan may not delete a live object whose identity the same
 * run's desired state declares (two state entries for one object, an identity resolved another way,
 * an engine surprise). Returns the refusal, naming the object, where Git declares it and the state
 * entry the engine would delete; undefined when the plan deletes no declared object. Pure.
 */
export function declaredDeletes(
  planned: readonly EngineStep[],
  snapshot: StackSnapshot,
  desired: readonly DesiredObject[],
): string | undefined {
  const declared = new Map(desired.map((o) => [resourceName(o.id), o]));
  const stateIds = new Map(snapshot.objects.map((m) => [m.urn, m.id]));
  const problems: string[] = [];
  for (const step of planned) {
    if (step.op !== "delete" || !isKubernetesObject(step.type)) continue;
    const id = stateIds.get(step.urn);
    const still = id && declared.get(resourceName(id));
    if (!id || !still) continue;
    problems.push(
      `${displayName(id)}: the engine planned to delete it (state entry ${step.urn}), but ${formatLocation(still.location)} still declares it`,
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
