import { DesiredObject } from "../desired-state/desired-state";
import { ObjectId, resourceName } from "../desired-state/object-id";
import { StackSnapshot } from "./ports";

/**
 * Which state entries the program takes over under the URN its identity gives (resource name ->
 * the URN the state holds it under): an object declared now whose state entry has another URN — a
 * stack made by an earlier ferry, whose URNs depended on the file or chart that declared them. An
 * entry already at its URN needs nothing. When the state holds one object under several old URNs,
 * one is taken over; the identity guard then refuses to let the engine delete the others. Pure.
 */
export function adoptions(
  desired: readonly DesiredObject[],
  snapshot: StackSnapshot,
  urnOf: (id: ObjectId) => string,
): Record<string, string> {
  const byIdentity = new Map<string, string[]>();
  for (const m of snapshot.objects) {
    const key = resourceName(m.id);
    byIdentity.set(key, [...(byIdentity.get(key) ?? []), m.urn]);
  }
  const adopt: Record<string, string> = {};
  for (const o of desired) {
    const key = resourceName(o.id);
    const urns = byIdentity.get(key) ?? [];
    if (urns.length === 0 || urns.includes(urnOf(o.id))) continue;
    adopt[key] = urns[0]!;
  }
  return adopt;
}
