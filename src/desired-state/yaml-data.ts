/** A mapping as YAML gives it; a Date (a YAML timestamp) or any other class instance is a scalar. */
export function isMapping(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A deep copy of YAML data (mappings and lists); scalars are shared. */
export function cloneData(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneData);
  if (isMapping(v)) {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(v)) defineKey(out, key, cloneData(value));
    return out;
  }
  return v;
}

/** Assignment that stays an own property even for a key like `__proto__` coming from YAML. */
export function defineKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
