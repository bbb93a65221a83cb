import { DesiredObject, DesiredUnit, SourceObject, unitKey } from "./desired-state";
import { formatLocation, ManifestError } from "./manifest-error";
import { displayName, resourceName } from "./object-id";

/** Annotation Flux v1 users put on objects in Git: "true" skips the object, "sync_only" applies but never prunes. */
export const FLUX_IGNORE = "fluxcd.io/ignore";
/** Annotation of Flux v2: "disabled" means never prune the object. */
export const KUSTOMIZE_PRUNE = "kustomize.toolkit.fluxcd.io/prune";

/** Drops objects marked `fluxcd.io/ignore: "true"` and marks never-prune ones. Pure. */
export function applyIgnoreRules<T extends SourceObject>(objects: readonly T[]): T[] {
  return objects.flatMap((o) => {
    const annotations = o.object.metadata.annotations ?? {};
    const ignore = String(annotations[FLUX_IGNORE] ?? "").toLowerCase();
    if (ignore === "true") return [];
    const neverPrune = ignore === "sync_only" || String(annotations[KUSTOMIZE_PRUNE] ?? "").toLowerCase() === "disabled";
    return [neverPrune ? { ...o, prune: false } : o];
  });
}

/** Every object defined more than once across units, as errors naming both places. Pure. */
export function findDuplicates(units: readonly DesiredUnit[]): ManifestError[] {
  const seen = new Map<string, { o: DesiredObject; unit: DesiredUnit }>();
  const errors: ManifestError[] = [];
  for (const unit of units) {
    for (const o of unit.objects) {
      const key = resourceName(o.id);
      const first = seen.get(key);
      if (!first) {
        seen.set(key, { o, unit });
        continue;
      }
      const where = (u: DesiredUnit, d: DesiredObject): string =>
        u.kind === "ManifestFile" ? formatLocation(d.location) : `${unitKey(u)} (${formatLocation(d.location)})`;
      errors.push(
        new ManifestError(
          o.location,
          `${displayName(o.id)} is defined twice: by ${where(unit, o)} and by ${where(first.unit, first.o)}`,
          "keep one definition and remove the other",
        ),
      );
    }
  }
  return errors;
}
