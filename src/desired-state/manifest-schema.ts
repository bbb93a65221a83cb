import { z } from "zod";
import { ManifestError, SourceLocation } from "./manifest-error";
import { cloneData, isMapping } from "./yaml-data";

/** The object a schema checks, as errors name it, and where it was declared. */
export interface ObjectContext {
  /** What every message leads with, e.g. `HelmRelease/apps/web`. */
  readonly what: string;
  readonly location: SourceLocation;
  /**
   * Fix hints by field path, list indexes written `[]` (`spec.valuesFrom[].kind`); a path ending in
   * `.*` covers every field below it. Used when the problem itself brings no better hint.
   */
  readonly hints?: Readonly<Record<string, string>>;
}

/** A field's place in an object: keys and list indexes (`["spec", "valuesFrom", 0, "kind"]`). */
export type FieldPath = readonly (string | number)[];

/**
 * Checks an object with a zod schema and returns the schema's output; a failure becomes a
 * {@link ManifestError} through {@link manifestErrorFromZod}.
 */
export function parseObject<S extends z.ZodTypeAny>(schema: S, value: unknown, context: ObjectContext): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw manifestErrorFromZod(result.error, value, context);
  return result.data as z.output<S>;
}

/**
 * The one way a zod failure becomes a {@link ManifestError}: the first problem, at the object's
 * location, leading with the object and naming the field (`HelmRelease/apps/web:
 * \`spec.chart.spec.version\` must be a string, not number 1.1`), with a fix hint.
 */
export function manifestErrorFromZod(error: z.ZodError, input: unknown, context: ObjectContext): ManifestError {
  const issue = error.issues[0];
  if (!issue) return fieldError(context, [], "is invalid");
  const path = issue.path;
  const value = valueAt(input, path);
  const field = `\`${formatPath(path)}\``;
  let problem: string;
  let hint: string | undefined;
  // A hint the schema's author wrote for this field beats the generic one below.
  let fallback: string | undefined;
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type: {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (value === undefined || issue.received === z.ZodParsedType.undefined) {
        problem = "is missing";
        fallback = `set ${field}`;
      } else {
        problem = `must be ${expected}, not ${describeValue(value)}`;
        if (issue.expected === z.ZodParsedType.string) hint = quoteHint(path, value);
        fallback = `make ${field} ${expected}`;
      }
      break;
    }
    case z.ZodIssueCode.invalid_enum_value: {
      const options = orList(issue.options.map(String));
      problem = `is ${typeof value === "string" ? `"${value}"` : describeValue(value)}; it must be ${options}`;
      fallback = `use ${options}`;
      break;
    }
    case z.ZodIssueCode.custom:
      problem = issue.message;
      hint = (issue.params as ProblemParams | undefined)?.hint;
      break;
    default:
      problem = issue.message;
  }
  return fieldError(context, path, problem, hint ?? hintFor(context.hints, path) ?? fallback);
}

/**
 * A problem with one field, worded as every parser words it: `<what>: \`<path>\` <problem>`, or
 * `<what>: <problem>` for the object as a whole (an empty path).
 */
export function fieldError(context: ObjectContext, path: FieldPath, problem: string, hint?: string): ManifestError {
  const subject = path.length > 0 ? `\`${formatPath(path)}\` ` : "";
  return new ManifestError(context.location, `${context.what}: ${subject}${problem}`, hint ?? hintFor(context.hints, path));
}

/** `spec.valuesFrom[0].kind`; a key that is not a plain word is quoted (`metadata.labels["app.kubernetes.io/name"]`). */
export function formatPath(path: FieldPath): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : /^[\w-]+$/.test(p) ? `${i === 0 ? "" : "."}${p}` : `[${JSON.stringify(p)}]`))
    .join("");
}

interface ProblemParams {
  readonly hint?: string;
}

/**
 * Reports a problem from inside a schema's `transform` or `superRefine`, at `path` below the value
 * being checked; returns `z.NEVER` so a transform can `return addProblem(...)`.
 */
export function addProblem(ctx: z.RefinementCtx, problem: string, hint?: string, path: FieldPath = []): never {
  ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem, path: [...path], params: { hint } satisfies ProblemParams });
  return z.NEVER;
}

const unsetIfNull = (v: unknown): unknown => (v === null ? undefined : v);
/** Go's `omitempty`: an empty string is as good as no value. */
const unsetIfEmpty = (v: unknown): unknown => (v === null || v === "" ? undefined : v);

/** A string field; null and "" count as unset. */
export const optionalString = z.preprocess(unsetIfEmpty, z.string().optional());

/** A string field that must be set and not empty. */
export const requiredString = z.preprocess(unsetIfEmpty, z.string());

/** A true/false field; null counts as unset. */
export const optionalBoolean = z.preprocess(unsetIfNull, z.boolean().optional());

/** A string that must be one of `values`; "" and null count as unset. */
export function optionalOneOf<const T extends [string, ...string[]]>(values: T) {
  return z.preprocess(unsetIfEmpty, z.enum(values).optional());
}

/** A string that must be set to one of `values`. */
export function requiredOneOf<const T extends [string, ...string[]]>(values: T) {
  return z.preprocess(unsetIfEmpty, z.enum(values));
}

/** A mapping with the fields of `shape` (other fields are ignored); null counts as unset. */
export function optionalMapping<T extends z.ZodRawShape>(shape: T) {
  return z.preprocess(unsetIfNull, z.object(shape).optional());
}

/** A mapping with the fields of `shape` that must be present. */
export function requiredMapping<T extends z.ZodRawShape>(shape: T) {
  return z.preprocess(unsetIfNull, z.object(shape));
}

/** A list whose items `item` checks; absent or null is the empty list. */
export function optionalList<T extends z.ZodTypeAny>(item: T) {
  return z.preprocess(unsetIfNull, z.array(item).optional()).transform((v): z.output<T>[] => v ?? []);
}

/**
 * Free-form YAML data such as Helm values: a mapping, copied as written (a `__proto__` key stays
 * data); absent or null is `{}`.
 */
export const dataMapping = z.unknown().transform((v, ctx): Record<string, unknown> => {
  if (v === undefined || v === null) return {};
  if (!isMapping(v)) return addProblem(ctx, `must be a mapping, not ${describeValue(v)}`);
  return cloneData(v) as Record<string, unknown>;
});

/**
 * A field that changes what Flux does and that ferry does not implement: refused rather than
 * ignored when set (an empty list or string counts as unset).
 */
export function unsupported(hint: string, why?: string) {
  return z.unknown().superRefine((v, ctx) => {
    const set = Array.isArray(v) ? v.length > 0 : v !== undefined && v !== null && v !== "";
    if (set) addProblem(ctx, `is not supported${why ? `: ${why}` : " by ferry"}`, hint);
  });
}

/** How a value is shown in a message: its type and, for scalars, the value (a long string is cut). */
export function describeValue(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  if (v instanceof Date) return "a timestamp";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `string "${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: "a string",
  boolean: "true or false",
  object: "a mapping",
  array: "a list",
  number: "a number",
};

/** A number or boolean where a string belongs: YAML typed it, so say how to quote it. */
function quoteHint(path: FieldPath, value: unknown): string | undefined {
  if (typeof value !== "number" && typeof value !== "boolean") return undefined;
  const key = path[path.length - 1];
  const example = typeof key === "string" ? `${key}: "${String(value)}"` : `"${String(value)}"`;
  const aside = typeof value === "number" && !Number.isInteger(value) ? " (YAML reads 1.10 as the number 1.1)" : "";
  return `quote it, e.g. ${example}${aside}`;
}

function hintFor(hints: ObjectContext["hints"], path: FieldPath): string | undefined {
  if (!hints) return undefined;
  // The path as hints are keyed: `spec.valuesFrom[].kind`.
  const at = (n: number): string =>
    path
      .slice(0, n)
      .map((p, i) => (typeof p === "number" ? "[]" : `${i === 0 ? "" : "."}${p}`))
      .join("");
  const exact = hints[at(path.length)];
  if (exact !== undefined) return exact;
  for (let n = path.length - 1; n > 0; n--) {
    const below = hints[`${at(n)}.*`];
    if (below !== undefined) return below;
  }
  return undefined;
}

function valueAt(input: unknown, path: FieldPath): unknown {
  let v = input;
  for (const p of path) {
    if (Array.isArray(v) && typeof p === "number") v = v[p];
    else if (isMapping(v) && typeof p === "string" && Object.prototype.hasOwnProperty.call(v, p)) v = v[p];
    else return undefined;
  }
  return v;
}

function orList(options: readonly string[]): string {
  return options.length <= 1 ? (options[0] ?? "") : `${options.slice(0, -1).join(", ")} or ${options[options.length - 1]}`;
}
