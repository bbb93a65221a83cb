import { isMapping } from "./yaml-data";

/** What a masked value shows instead of itself. */
export const MASK = "[secret]";

/**
 * Shorter strings are not masked where they stand alone in other text: masking `true`, `80` or `on`
 * everywhere would blank out half a preview and hide nothing an attacker could not guess.
 */
export const MIN_SENSITIVE_LENGTH = 4;

/**
 * The strings that would reveal a value read from a Secret (or from a URL's body): the text itself,
 * trimmed, every leaf string of the values parsed from it (when given), and each of those base64-
 * and hex-encoded (what a chart's `b64enc` or `printf "%x"` makes of it). Strings under
 * {@link MIN_SENSITIVE_LENGTH} are left out. Pure.
 */
export function sensitiveForms(text: string, parsed?: unknown): string[] {
  const plain = new Set<string>([text, text.trim()]);
  for (const leaf of leafStrings(parsed)) plain.add(leaf);
  const out = new Set<string>();
  for (const s of plain) {
    if (s.length < MIN_SENSITIVE_LENGTH) continue;
    const bytes = Buffer.from(s, "utf8");
    out.add(s);
    out.add(bytes.toString("base64"));
    out.add(bytes.toString("base64url"));
    out.add(bytes.toString("hex"));
  }
  return [...out];
}

/** The same forms for each data value of a Secret object (`data` decoded from base64, `stringData` as is). Pure. */
export function secretObjectForms(object: object): string[] {
  const { data, stringData } = object as { data?: unknown; stringData?: unknown };
  const out: string[] = [];
  if (isMapping(data)) {
    for (const v of Object.values(data)) {
      if (typeof v !== "string") continue;
      // The base64 text as written is itself a form of the value.
      if (v.length >= MIN_SENSITIVE_LENGTH) out.push(v);
      out.push(...sensitiveForms(Buffer.from(v, "base64").toString("utf8")));
    }
  }
  if (isMapping(stringData)) {
    for (const v of Object.values(stringData)) if (typeof v === "string") out.push(...sensitiveForms(v));
  }
  return out;
}

/** Masks sensitive strings in text and in JSON-like data. */
export interface Redactor {
  /** Whether there is anything to mask. */
  readonly active: boolean;
  /** The text with every sensitive string replaced by {@link MASK}. */
  text(s: string): string;
  /** A copy of the data with every string (keys too) passed through {@link Redactor.text}. */
  data<T>(value: T): T;
}

/** A {@link Redactor} for a set of sensitive strings (longest first, so a string never leaves a longer one half-shown). Pure. */
export function redactor(sensitive: readonly string[] = []): Redactor {
  const strings = [...new Set(sensitive)].filter((s) => s.length >= MIN_SENSITIVE_LENGTH).sort((a, b) => b.length - a.length);
  const pattern = strings.length > 0 ? new RegExp(strings.map(escapeRegExp).join("|"), "g") : undefined;
  const text = (s: string): string => (pattern ? s.replace(pattern, MASK) : s);
  const data = (value: unknown): unknown => {
    if (typeof value === "string") return text(value);
    if (Array.isArray(value)) return value.map(data);
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [text(k), data(v)]));
    }
    return value;
  };
  return { active: pattern !== undefined, text, data: <T>(value: T) => (pattern ? (data(value) as T) : value) };
}

/**
 * JSON-like data with the same shape and every leaf value replaced by {@link MASK}: what a preview
 * shows of an object rendered from Secret values (its field paths, not its values). Pure.
 */
export function maskLeaves<T>(value: T): T {
  const mask = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(mask);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, mask(x)]));
    return v === undefined ? undefined : MASK;
  };
  return mask(value) as T;
}

/**
 * Masks every double-quoted string of a message (`Invalid value: "…"`): how an API server's refusal
 * of an object rendered from Secret values is shown, so a chart cannot smuggle a value out through
 * an error. Pure.
 */
export function maskQuoted(message: string): string {
  return message.replace(/"(?:[^"\\]|\\.)*"/g, `"${MASK}"`);
}

function leafStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value, value.trim());
  else if (typeof value === "number" || typeof value === "bigint") out.push(String(value));
  else if (Array.isArray(value)) for (const v of value) leafStrings(v, out);
  else if (isMapping(value)) for (const v of Object.values(value)) leafStrings(v, out);
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
