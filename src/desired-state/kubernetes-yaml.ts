import * as yaml from "js-yaml";

/*
 * YAML as Kubernetes reads it. kubectl, helm, kustomize-controller and helm-controller all read YAML
 * with sigs.k8s.io/yaml, which is go-yaml v2: YAML 1.1 scalars, not js-yaml's YAML 1.2 core schema.
 * The rules below mirror go-yaml v2's `resolve()` (sigs.k8s.io/yaml/goyaml.v2/resolve.go) for plain
 * (unquoted) scalars; a quoted scalar is always a string, in both.
 */

const jsTypes = (yaml as unknown as { types: Record<"int" | "float" | "bool" | "null" | "merge", yaml.Type> }).types;

/** go-yaml v2's boolean words (YAML 1.1): `y`, `yes`, `on` and their capitalisations are true. */
const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ...["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"].map((s) => [s, true] as const),
  ...["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].map((s) => [s, false] as const),
]);

const SPECIAL_FLOATS: ReadonlyMap<string, number> = new Map([
  ...[".nan", ".NaN", ".NAN"].map((s) => [s, NaN] as const),
  ...[".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"].map((s) => [s, Infinity] as const),
  ...["-.inf", "-.Inf", "-.INF"].map((s) => [s, -Infinity] as const),
]);

/** go-yaml's `yamlStyleFloat`, tried after the integer forms. */
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
/** What Go's `strconv.ParseFloat` accepts for a text starting with `.` (no exponent sign-less forms beyond these). */
const DOT_FLOAT = /^\.[0-9]+([eE][-+]?[0-9]+)?$/;
/** A timestamp as go-yaml v2 recognises one; it stays a string when decoded into JSON, as here. */
const TIMESTAMP_START = /^[0-9]{4}-/;

/**
 * Go's `strconv.ParseInt(s, 0, 64)` (then `ParseUint`): an optional sign, then `0x`/`0X` hex, `0o`/`0O`
 * or a leading `0` octal, `0b`/`0B` binary, or decimal. Undefined when Go refuses it.
 */
function goParseInt(s: string): number | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const sign = m[1] === "-" ? -1n : 1n;
  const digits = m[2]!;
  let n: bigint;
  if (/^0[oO]/.test(digits)) n = BigInt("0o" + digits.slice(2));
  else if (/^0[0-7]+$/.test(digits)) n = BigInt("0o" + digits.slice(1));
  else n = BigInt(digits.toLowerCase()); // hex, binary and decimal: BigInt reads 0x and 0b itself.
  return Number(sign * n);
}

/**
 * What a plain scalar resolves to under go-yaml v2's rules: a boolean, null, a number, or the text
 * itself (a string). Timestamps stay strings, as sigs.k8s.io/yaml hands them to JSON.
 */
export function resolveKubernetesScalar(text: string): string | number | boolean | null {
  if (text === "" || text === "~" || text === "null" || text === "Null" || text === "NULL") return null;
  const bool = BOOLEANS.get(text);
  if (bool !== undefined) return bool;
  const special = SPECIAL_FLOATS.get(text);
  if (special !== undefined) return special;
  const first = text[0]!;
  if (first === ".") return DOT_FLOAT.test(text) ? Number(text) : text;
  if (!/[-+0-9]/.test(first)) return text;
  if (TIMESTAMP_START.test(text)) return text;
  const plain = text.replace(/_/g, "");
  const int = goParseInt(plain);
  if (int !== undefined) return int;
  if (YAML_STYLE_FLOAT.test(plain)) {
    const f = Number(plain);
    // Go's ParseFloat refuses a value out of range (1e400): go-yaml keeps the text.
    if (Number.isFinite(f)) return f;
  }
  return text;
}

function implicitType(tag: string, base: yaml.Type, accepts: (v: unknown) => boolean): yaml.Type {
  return new yaml.Type(tag, {
    kind: "scalar",
    resolve: (data: string | null) => accepts(resolveKubernetesScalar(data ?? "")),
    construct: (data: string | null) => resolveKubernetesScalar(data ?? ""),
    // Writing: the same as js-yaml's own type, so dumped numbers and booleans read back the same.
    predicate: base.predicate ?? undefined,
    represent: base.represent ?? undefined,
    defaultStyle: base.defaultStyle ?? undefined,
  });
}

/**
 * The js-yaml schema of YAML as Kubernetes reads it (go-yaml v2, YAML 1.1 scalars): `0400` is octal
 * 256, `0x1F` is 31, `1_000` is 1000, `yes`/`no`/`on`/`off`/`y`/`n` are booleans, `<<` merges, and
 * timestamps stay strings. Dumping with it quotes every string that would read back as another type.
 */
export const KUBERNETES_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({
  implicit: [
    implicitType("tag:yaml.org,2002:null", jsTypes.null, (v) => v === null),
    implicitType("tag:yaml.org,2002:bool", jsTypes.bool, (v) => typeof v === "boolean"),
    implicitType("tag:yaml.org,2002:int", jsTypes.int, (v) => typeof v === "number" && Number.isInteger(v)),
    implicitType("tag:yaml.org,2002:float", jsTypes.float, (v) => typeof v === "number" && !Number.isInteger(v)),
    jsTypes.merge,
  ],
});

/**
 * The path (`spec.replicas`, `items[0]`) of the first number JSON cannot hold (`.inf`, `.nan`), or
 * undefined: kubectl refuses those too (`json: unsupported value`).
 */
export function nonFiniteNumberPath(value: unknown, at = ""): string | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? undefined : at || "(document)";
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = nonFiniteNumberPath(item, `${at}[${i}]`);
      if (found) return found;
    }
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const found = nonFiniteNumberPath(item, at ? `${at}.${key}` : key);
      if (found) return found;
    }
  }
  return undefined;
}
