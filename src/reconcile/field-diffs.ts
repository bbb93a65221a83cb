import { ChangeCounts, changeOf, countChanges, isKubernetesObject, objectDisplayName } from "./change-summary";
import type { EngineStep as PreviewStep } from "./ports";
import { FieldDiff, PreviewObjectChange, PreviewOp } from "./preview-report";

const MASK = "[secret]";
/** The key Pulumi marks a secret value with in serialized properties. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Splits a Pulumi property path (`spec.containers[0].image`, `metadata.labels["app.kubernetes.io/name"]`). Pure. */
export function parsePropertyPath(path: string): (string | number)[] {
  const parts: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/g;
  for (let m = re.exec(path); m; m = re.exec(path)) {
    if (m[1] !== undefined) parts.push(m[1]);
    else if (m[2] !== undefined) parts.push(Number(m[2]));
    else parts.push(JSON.parse(`"${m[3]}"`) as string);
  }
  return parts;
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let v = root;
  for (const p of path) {
    // Below a secret, everything is secret.
    if (v === MASK || (v && typeof v === "object" && SECRET_SIG in v)) return MASK;
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** Replaces secret values (Pulumi secrets, anything under a Secret's data) with "[secret]". Pure. */
function masked(value: unknown, secretField: boolean): unknown {
  if (secretField) return MASK;
  if (value === undefined) return undefined;
  if (value && typeof value === "object") {
    if (SECRET_SIG in value) return MASK;
    if (Array.isArray(value)) return value.map((v) => masked(v, false));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, masked(v, false)]));
  }
  return value;
}

function isSecretField(type: string, path: readonly (string | number)[]): boolean {
  return type === "kubernetes:core/v1:Secret" && (path[0] === "data" || path[0] === "stringData");
}

/** The field-level diffs of one update or replace step. Pure. */
export function fieldDiffs(step: PreviewStep): FieldDiff[] {
  const detailed = step.detailedDiff && Object.keys(step.detailedDiff).length > 0 ? step.detailedDiff : undefined;
  const entries = detailed
    ? Object.entries(detailed).map(([path, d]) => ({ path, kind: d.kind ?? "update" }))
    : (step.diffs ?? []).map((path) => ({ path, kind: "update" }));
  return entries
    .map(({ path, kind }) => {
      const parts = parsePropertyPath(path);
      const secret = isSecretField(step.type, parts);
      const base = kind.replace(/-replace$/, "") as FieldDiff["kind"];
      const old = masked(valueAt(step.oldInputs, parts), secret);
      const next = masked(valueAt(step.newInputs, parts), secret);
      return {
        path,
        kind: base === "add" || base === "delete" ? base : "update",
        ...(base !== "add" ? { old } : {}),
        ...(base !== "delete" ? { new: next } : {}),
      } satisfies FieldDiff;
    })
    .sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Summarises the steps of a refreshing preview: each Kubernetes object to create, update, replace
 * or delete (with field diffs), and the counts per operation. Pure.
 */
export function summarizePreview(steps: readonly PreviewStep[]): { objects: PreviewObjectChange[]; changes: ChangeCounts } {
  const last = new Map<string, PreviewStep>();
  for (const s of steps) {
    if (!isKubernetesObject(s.type)) continue;
    const change = changeOf(s.op);
    // A replacement's create-replacement and delete-replaced halves are summed up by its "replace" step.
    if (change) last.set(s.urn, s);
  }
  const objects: PreviewObjectChange[] = [];
  for (const s of last.values()) {
    const op = OPS[s.op];
    if (!op) continue;
    objects.push({ op, object: objectDisplayName(s.urn), fields: op === "update" || op === "replace" ? fieldDiffs(s) : [] });
  }
  return { objects, changes: countChanges([...last.values()]) };
}

const OPS: Record<string, PreviewOp | undefined> = {
  create: "create",
  import: "create",
  update: "update",
  replace: "replace",
  delete: "delete",
};
