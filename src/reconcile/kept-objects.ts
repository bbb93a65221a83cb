import { allObjects } from "../desired-state/desired-state";
import { KubeObject, ObjectId } from "../desired-state/object-id";
import { KeptObject, ProgramInput } from "../desired-state/program-input";
import { withoutProviderAnnotations } from "../desired-state/provider-annotations";
import { StackSnapshot } from "./ports";

/**
 * While some unit failed, the state entries the program does not register — the failed units'
 * objects, and anything else Git may have dropped — are registered as the state recorded them, every
 * change ignored: the update neither changes nor deletes them (Flux leaves a failed Kustomization's
 * inventory alone). `unreadable`: entries without recorded inputs, which could only be deleted. Pure.
 */
export function keptObjects(
  snapshot: StackSnapshot,
  input: ProgramInput,
  urnOf: (id: ObjectId) => string,
): { keep: KeptObject[]; unreadable: string[] } {
  const registered = new Set([...allObjects(input.state).map((o) => urnOf(o.id)), ...Object.values(input.adopt)]);
  const keep: KeptObject[] = [];
  const unreadable: string[] = [];
  for (const m of snapshot.objects) {
    if (registered.has(m.urn)) continue;
    if (!m.inputs) {
      unreadable.push(m.urn);
      continue;
    }
    keep.push({
      id: m.id,
      object: withoutProviderAnnotations(m.inputs) as unknown as KubeObject,
      sensitive: m.secret === true,
      ...(m.urn !== urnOf(m.id) ? { urn: m.urn } : {}),
    });
  }
  return { keep, unreadable };
}
