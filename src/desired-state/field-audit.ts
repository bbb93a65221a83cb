import { fieldError, FieldPath, ObjectContext } from "./manifest-schema";
import { isMapping } from "./yaml-data";

/**
 * What ferry does with one field of a Flux object: reads it (`supported`), accepts it because it
 * only tunes what Flux's controllers do and has nothing to act on in ferry (`meaningless`, with the
 * reason), refuses it when set (`refused`, unless `allowed` accepts the value), or audits the fields
 * of the mapping it holds (`fields`).
 */
export type FieldRule =
  | { readonly rule: "supported" }
  | { readonly rule: "meaningless"; readonly why: string }
  | { readonly rule: "refused"; readonly why: string; readonly hint: string; readonly allowed?: (value: unknown) => boolean }
  | { readonly rule: "fields"; readonly fields: FieldRules };

/** The rules of every field a mapping may hold, by name. */
export type FieldRules = Readonly<Record<string, FieldRule>>;

/** A field ferry reads. */
export const SUPPORTED: FieldRule = { rule: "supported" };

/** A field with nothing for ferry to do, and why. */
export function meaningless(why: string): FieldRule {
  return { rule: "meaningless", why };
}

/** A field ferry refuses when set (an empty list, string or mapping, null and `false` count as unset), unless `allowed` accepts the value. */
export function refused(why: string, hint: string, allowed?: (value: unknown) => boolean): FieldRule {
  return { rule: "refused", why, hint, ...(allowed ? { allowed } : {}) };
}

/** A mapping whose own fields are audited. */
export function fields(rules: FieldRules): FieldRule {
  return { rule: "fields", fields: rules };
}

/**
 * Checks every field of `value` (a mapping at `at` in the object) against `rules`: a refused field
 * that is set, or a field no rule names, throws a ManifestError naming the field. Nothing is ignored
 * silently: each field is read, accepted as meaningless for ferry, or refused by name. Pure.
 */
export function auditFields(value: unknown, rules: FieldRules, context: ObjectContext, at: FieldPath): void {
  if (!isMapping(value)) return; // the schema reports a wrong type
  for (const [key, v] of Object.entries(value)) {
    const rule = Object.prototype.hasOwnProperty.call(rules, key) ? rules[key] : undefined;
    const field = [...at, key];
    if (rule === undefined) {
      if (!isSet(v)) continue;
      throw fieldError(
        context,
        field,
        "is not a field ferry knows for this kind",
        "check its spelling; ferry refuses fields it does not know rather than ignore them",
      );
    }
    if (rule.rule === "refused" && isSet(v) && !(rule.allowed?.(v) ?? false))
      throw fieldError(context, field, `is not supported: ${rule.why}`, rule.hint);
    if (rule.rule === "fields") auditFields(v, rule.fields, context, field);
  }
}

function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === false) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMapping(v)) return Object.keys(v).length > 0;
  return true;
}
