import * as yaml from "js-yaml";
import { loadBoundedYaml, YamlLimitError } from "../desired-state/bounded-yaml";
import { KUBERNETES_SCHEMA } from "../desired-state/kubernetes-yaml";
import { INPUT_LIMITS, InputLimits } from "../desired-state/input-limits";
import { cloneData, defineKey, isMapping } from "../desired-state/yaml-data";

/** Helm's `--set` parser refuses list indexes above this. */
const HELM_MAX_LIST_INDEX = 65536;

/**
 * Merges values layers the way Flux does before handing them to Helm (fluxcd/pkg `transform.MergeMaps`):
 * later layers win, nested mappings merge recursively, lists and scalars are replaced (a `null` replaces
 * too, so Helm can later drop the chart's default). Pure: the result shares nothing with the inputs.
 */
export function mergeValues(layers: readonly Record<string, unknown>[]): Record<string, unknown> {
  let out: Record<string, unknown> = {};
  for (const layer of layers) out = mergeTwo(out, layer);
  return out;
}

function mergeTwo(base: Record<string, unknown>, layer: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(layer)) {
    const current = out[key];
    defineKey(out, key, isMapping(value) && isMapping(current) ? mergeTwo(current, value) : cloneData(value));
  }
  return out;
}

/**
 * Sets one value at a Flux `valuesFrom[].targetPath`, as helm-controller does with Helm's `--set`
 * parser: the path is dotted (`a.b.c`, `a\.b` for a dot in a key, `list[0]` for an index); the value
 * is typed like `helm --set` (`true`, `false`, `null`, integers; `{a,b}` is a list; `\` escapes the
 * next character) unless it is wrapped in single or double quotes, which are stripped and make it a
 * string (`--set-string`). An unescaped comma is an error, as in Flux. Returns a new object.
 */
export function setValueAtPath(values: Record<string, unknown>, targetPath: string, value: string): Record<string, unknown> {
  const segments = parseTargetPath(targetPath);
  const quoted = (value.startsWith("'") && value.endsWith("'")) || (value.startsWith('"') && value.endsWith('"'));
  // helm-controller trims every leading and trailing quote character (strings.Trim), not one pair.
  const typed = quoted ? parseSetValue(value.replace(/^['"]+|['"]+$/g, ""), true, targetPath) : parseSetValue(value, false, targetPath);
  return setIn(values, segments, typed) as Record<string, unknown>;
}

type PathSegment = { readonly key: string } | { readonly index: number };

function parseTargetPath(targetPath: string): PathSegment[] {
  const segments: PathSegment[] = [];
  const bad = (why: string): never => {
    throw new Error(`targetPath "${targetPath}" is invalid: ${why}; write a dotted path like a.b[0].c (escape a dot in a key as \\.)`);
  };
  let key = "";
  let i = 0;
  let afterIndex = false;
  while (i < targetPath.length) {
    const c = targetPath[i]!;
    if (c === "\\") {
      if (i + 1 >= targetPath.length) bad("it ends with a lone backslash");
      key += targetPath[i + 1];
      i += 2;
      afterIndex = false;
      continue;
    }
    if (c === ".") {
      if (key === "" && !afterIndex) bad("it has an empty key");
      if (key !== "") segments.push({ key });
      key = "";
      afterIndex = false;
      i++;
      continue;
    }
    if (c === "[") {
      if (key === "" && segments.length === 0) bad("it starts with a list index");
      if (key !== "") segments.push({ key });
      key = "";
      const close = targetPath.indexOf("]", i);
      const digits = close < 0 ? "" : targetPath.slice(i + 1, close);
      if (!/^\d+$/.test(digits)) bad("a list index must be a number in [ ]");
      const index = Number(digits);
      if (index > HELM_MAX_LIST_INDEX) bad(`index ${index} is larger than Helm's maximum ${HELM_MAX_LIST_INDEX}`);
      segments.push({ index });
      afterIndex = true;
      i = close + 1;
      continue;
    }
    if (c === "=" || c === ",") bad(`"${c}" must be escaped as \\${c}`);
    if (afterIndex) bad(`"${c}" follows a list index; use a dot (a[0].b)`);
    key += c;
    i++;
  }
  if (key !== "") segments.push({ key });
  else if (!afterIndex) bad(segments.length === 0 ? "it is empty" : "it ends with a dot");
  return segments;
}

/** Helm strvals' value grammar for a single assignment: a `{a,b}` list or one value; `\` escapes. */
function parseSetValue(raw: string, asString: boolean, targetPath: string): unknown {
  const commaError = (): never => {
    throw new Error(
      `the value for targetPath "${targetPath}" contains an unescaped comma, which Flux (Helm --set syntax) reads as a second assignment; escape it as \\,`,
    );
  };
  const readUntil = (start: number, stops: string): { text: string; end: number } => {
    let text = "";
    let i = start;
    while (i < raw.length && !stops.includes(raw[i]!)) {
      if (raw[i] === "\\" && i + 1 < raw.length) i++;
      text += raw[i];
      i++;
    }
    return { text, end: i };
  };
  if (raw.startsWith("{")) {
    const items: unknown[] = [];
    let i = 1;
    for (;;) {
      const { text, end } = readUntil(i, ",}");
      if (end >= raw.length) throw new Error(`the value for targetPath "${targetPath}" starts a list with { but has no closing }`);
      items.push(typedValue(text, asString));
      if (raw[end] === "}") {
        if (end + 1 < raw.length) {
          if (raw[end + 1] === ",") commaError();
          throw new Error(`the value for targetPath "${targetPath}" has text after the closing } of its list`);
        }
        return items;
      }
      i = end + 1;
    }
  }
  const { text, end } = readUntil(0, ",");
  if (end < raw.length) commaError();
  // Helm sets an empty value as the empty string, never typed.
  return text === "" ? "" : typedValue(text, asString);
}

/** Helm strvals `typedVal`: booleans and null case-insensitively, decimal integers without a leading zero. */
function typedValue(text: string, asString: boolean): unknown {
  if (asString) return text;
  const lower = text.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  if (lower === "null") return null;
  if (text === "0") return 0;
  if (/^[+-]?\d+$/.test(text) && text[0] !== "0") {
    const n = BigInt(text);
    if (n >= -(2n ** 63n) && n < 2n ** 63n) {
      // Beyond 2^53 a JavaScript number would change the value; keep the digits as text instead.
      return Number.isSafeInteger(Number(n)) ? Number(n) : text;
    }
  }
  return text;
}

function setIn(node: unknown, segments: readonly PathSegment[], value: unknown): unknown {
  const [first, ...rest] = segments;
  if (first === undefined) return value;
  if ("key" in first) {
    const obj: Record<string, unknown> = isMapping(node) ? { ...node } : {};
    const current = Object.prototype.hasOwnProperty.call(obj, first.key) ? obj[first.key] : undefined;
    defineKey(obj, first.key, setIn(current, rest, value));
    return obj;
  }
  const list: unknown[] = Array.isArray(node) ? [...(node as unknown[])] : [];
  while (list.length <= first.index) list.push(null);
  list[first.index] = setIn(list[first.index], rest, value);
  return list;
}

/**
 * Parses the YAML text of one values layer (a ConfigMap or Secret key, a chart file, a URL's body):
 * a mapping, or nothing (`{}`). Throws a plain Error whose message starts with `where`.
 */
export function parseValuesText(text: string, where: string, limits: InputLimits = INPUT_LIMITS): Record<string, unknown> {
  let value: unknown;
  try {
    // Values get copied, merged and written out for helm: an alias bomb must stop here, unexpanded.
    value = loadBoundedYaml(text, { schema: VALUES_SCHEMA }, { ...limits, maxDocumentBytes: limits.maxValuesBytes });
  } catch (err) {
    if (err instanceof YamlLimitError) throw new Error(`${where}: line ${err.line + 1}: ${err.problem}; ${err.hint}`, { cause: err });
    const detail = err instanceof yaml.YAMLException ? `${err.reason} at line ${err.mark.line + 1}` : String(err);
    throw new Error(`${where}: invalid YAML: ${detail}`, { cause: err });
  }
  if (value === undefined || value === null) return {};
  // The text may be a Secret's: say what it is, never what it contains.
  const found = Array.isArray(value) ? "a list" : typeof value === "string" ? "a plain string" : typeof value;
  if (!isMapping(value)) throw new Error(`${where}: values must be a YAML mapping (key: value lines), not ${found}`);
  return value;
}

/**
 * Helm reads values with go-yaml v2 (sigs.k8s.io/yaml) into plain data: YAML 1.1 scalars (`0755` is
 * octal, `on` is true), timestamps stay strings and `<<` merge keys work.
 */
const VALUES_SCHEMA = KUBERNETES_SCHEMA;
