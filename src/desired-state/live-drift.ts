import { createHash } from "node:crypto";
import { KubeObject } from "./object-id";

/** Why a live object differs from what ferry applied: it is gone, or a field ferry declares differs (a dotted path). */
export type LiveDrift = { readonly kind: "missing" } | { readonly kind: "differs"; readonly path: string };

/** A live object as the API server returns it (list items may lack apiVersion and kind). */
export type LiveObject = Readonly<Record<string, unknown>>;

/** Top-level fields that are the object's identity or the server's, never compared. */
const NOT_COMPARED = new Set(["apiVersion", "kind", "status"]);
/** Top-level fields holding opaque user data: compared as strings, never as Kubernetes quantities. */
const DATA_FIELDS = new Set(["data", "binaryData", "stringData"]);

/**
 * Whether a live object drifted from the desired object ferry last applied: missing, or one of the
 * fields ferry declares differs (a subset comparison: status and fields the server or controllers
 * add are ignored; of the metadata only the labels and annotations ferry sets count). Kubernetes
 * normalisations are tolerated: numbers vs strings, quantities (`500m` = `0.5`), empty maps and
 * lists vs absent fields, and a Secret's `stringData` and `data` compared decoded with its live
 * `data`. Undefined when the live object matches. Pure.
 */
export function liveDrift(desired: KubeObject, live: LiveObject | undefined): LiveDrift | undefined {
  if (!live) return { kind: "missing" };
  const path = firstDifference(managedView(desired), managedView(live, desired));
  return path === undefined ? undefined : { kind: "differs", path };
}

/**
 * A fingerprint of the fields of `live` that ferry declares in `desired` (secret values hashed):
 * it changes only when one of those fields changes, not when the server adds an annotation or
 * updates the status. Pure.
 */
export function managedFingerprint(desired: KubeObject, live: LiveObject | undefined): string {
  if (!live) return "missing";
  const projected = project(managedView(desired), managedView(live, desired));
  return createHash("sha256").update(JSON.stringify(projected)).digest("hex");
}

/**
 * The comparable fields of an object: everything but identity and status, the metadata cut to its
 * labels and annotations, and a Secret's `stringData` folded into `data` as plain text. With
 * `desired` given (a live object), a Secret's `data` is decoded the same way.
 */
function managedView(obj: LiveObject, desired?: KubeObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (NOT_COMPARED.has(k)) continue;
    if (k === "metadata") {
      const m = (v ?? {}) as { labels?: unknown; annotations?: unknown };
      out.metadata = { labels: m.labels, annotations: m.annotations };
      continue;
    }
    out[k] = v;
  }
  const kind = desired?.kind ?? obj.kind;
  if (kind === "Secret") {
    const data: Record<string, unknown> = {};
    for (const [k, v] of Object.entries((out.data ?? {}) as Record<string, unknown>))
      data[k] = typeof v === "string" ? Buffer.from(v, "base64").toString("latin1") : v;
    for (const [k, v] of Object.entries((out.stringData ?? {}) as Record<string, unknown>))
      data[k] = typeof v === "string" ? Buffer.from(v, "utf8").toString("latin1") : v;
    delete out.stringData;
    if (Object.keys(data).length > 0 || out.data !== undefined) out.data = data;
  }
  return out;
}

/** The first path where `live` does not hold what `desired` declares; undefined when it holds it all. */
function firstDifference(desired: unknown, live: unknown, path: string[] = []): string | undefined {
  if (isAbsent(desired)) return undefined;
  if (Array.isArray(desired)) {
    if (isAbsent(live) && desired.length === 0) return undefined;
    if (!Array.isArray(live) || live.length !== desired.length) return at(path);
    for (let i = 0; i < desired.length; i++) {
      const d = firstDifference(desired[i], live[i], [...path, String(i)]);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (isMap(desired)) {
    if (isAbsent(live) && Object.values(desired).every(isAbsentOrEmpty)) return undefined;
    if (!isMap(live)) return at(path);
    for (const [k, v] of Object.entries(desired)) {
      const d = firstDifference(v, live[k], [...path, k]);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return sameScalar(desired, live, !DATA_FIELDS.has(path[0] ?? "")) ? undefined : at(path);
}

/** What `live` holds at the paths `desired` declares (the shape of `desired`, the values of `live`). */
function project(desired: unknown, live: unknown): unknown {
  if (Array.isArray(desired) && Array.isArray(live)) return live.map((v, i) => (i < desired.length ? project(desired[i], v) : v));
  if (isMap(desired) && isMap(live)) return Object.fromEntries(Object.keys(desired).map((k) => [k, project(desired[k], live[k]) ?? null]));
  return live ?? null;
}

function sameScalar(desired: unknown, live: unknown, quantities: boolean): boolean {
  if (desired === live) return true;
  if (isAbsent(live) || isMap(live) || Array.isArray(live)) return false;
  const d = String(desired);
  const l = String(live as string | number | boolean);
  if (d === l) return true;
  if (!quantities) return false;
  const dq = parseQuantity(d);
  const lq = parseQuantity(l);
  return dq !== undefined && lq !== undefined && Math.abs(dq - lq) <= Math.abs(dq) * 1e-9;
}

const SUFFIXES: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a Kubernetes quantity (`500m`, `1Gi`, `1e3`), or undefined when the text is none. */
export function parseQuantity(text: string): number | undefined {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec(text.trim());
  if (!m) return undefined;
  const base = Number(m[1] + (m[2] ?? ""));
  return base * (SUFFIXES[m[3] ?? ""] ?? 1);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isAbsent(v: unknown): boolean {
  return v === undefined || v === null;
}

function isAbsentOrEmpty(v: unknown): boolean {
  return isAbsent(v) || (Array.isArray(v) && v.length === 0) || (isMap(v) && Object.values(v).every(isAbsentOrEmpty));
}

function at(path: readonly string[]): string {
  return path.join(".") || "(object)";
}
