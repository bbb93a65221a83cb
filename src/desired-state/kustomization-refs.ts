import * as yaml from "js-yaml";

/** One path or URL a kustomization file names, with where it names it. */
export interface KustomizationRef {
  /** The field that names it (`resources`, `patches[].path`, `configMapGenerator[].files`...). */
  readonly field: string;
  /** The path or URL as written (for generator files: without the `key=` prefix). */
  readonly value: string;
  /**
   * `base`: a file or a folder Kustomize builds in turn (resources, components, generators...);
   * `file`: a file Kustomize reads (patches, generator sources, replacements, CRDs...).
   */
  readonly kind: "base" | "file";
  /** 1-based line of the kustomization file that names it (best effort: the first line holding it). */
  readonly line: number;
}

/** The names Kustomize looks for in a folder, in its order. */
export const KUSTOMIZATION_FILE_NAMES = ["kustomization.yaml", "kustomization.yml", "Kustomization"] as const;

// Fields whose entries are paths of bases or files: [field, kind].
const LIST_FIELDS: readonly (readonly [string, KustomizationRef["kind"]])[] = [
  ["resources", "base"],
  ["bases", "base"],
  ["components", "base"],
  ["generators", "base"],
  ["transformers", "base"],
  ["validators", "base"],
  ["crds", "file"],
  ["configurations", "file"],
  ["patchesStrategicMerge", "file"],
];
// Fields holding a list of mappings, each naming a file at one key.
const PATH_FIELDS: readonly (readonly [string, string])[] = [
  ["patches", "path"],
  ["patchesJson6902", "path"],
  ["replacements", "path"],
  ["helmCharts", "valuesFile"],
];

/**
 * Every path or URL a kustomization file names: bases, components, patches, generator sources,
 * replacements, CRDs, configurations, OpenAPI schemas, Helm values. Inline entries (a patch or a
 * transformer written in the file) name nothing. Throws when the text is not a YAML mapping.
 */
export function kustomizationRefs(text: string): KustomizationRef[] {
  const doc: unknown = yaml.load(text, { schema: yaml.JSON_SCHEMA });
  if (doc === null || doc === undefined) return [];
  if (!isRecord(doc)) throw new Error("a kustomization file must be a YAML mapping");
  const lines = text.split("\n");
  const refs: KustomizationRef[] = [];
  const add = (field: string, key: string, value: unknown, kind: KustomizationRef["kind"]): void => {
    if (typeof value !== "string" || value.trim() === "" || isInline(value)) return;
    refs.push({ field, value, kind, line: lineOf(lines, key, value) });
  };
  for (const [field, kind] of LIST_FIELDS) for (const v of list(doc[field])) add(field, field, v, kind);
  for (const [field, key] of PATH_FIELDS)
    for (const entry of list(doc[field])) if (isRecord(entry)) add(`${field}[].${key}`, field, entry[key], "file");
  for (const field of ["configMapGenerator", "secretGenerator"]) {
    for (const gen of list(doc[field])) {
      if (!isRecord(gen)) continue;
      for (const f of list(gen.files)) if (typeof f === "string") add(`${field}[].files`, field, fileSource(f), "file");
      for (const f of list(gen.envs)) add(`${field}[].envs`, field, f, "file");
      add(`${field}[].env`, field, gen.env, "file");
    }
  }
  for (const chart of list(doc.helmCharts))
    if (isRecord(chart))
      for (const f of list(chart.additionalValuesFiles)) add("helmCharts[].additionalValuesFiles", "helmCharts", f, "file");
  if (isRecord(doc.openapi)) add("openapi.path", "openapi", doc.openapi.path, "file");
  if (isRecord(doc.helmGlobals)) add("helmGlobals.chartHome", "helmGlobals", doc.helmGlobals.chartHome, "base");
  return refs;
}

/**
 * What kind of remote resource an entry names, as Kustomize would fetch it (an `https URL`, a `git
 * URL`...), or undefined for a local path. `existsLocally` says whether the path is there in the
 * folder: Kustomize reads such an entry from disk, except forms that are always URLs.
 */
export function remoteKind(value: string, existsLocally: boolean): string | undefined {
  const v = value.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(v)?.[1]?.toLowerCase();
  if (/^[a-z][a-z0-9+.-]*::/i.test(v)) return "forced-getter URL";
  if (scheme) return `${scheme} URL`;
  if (/^[\w.~-]+@[\w.-]+:/.test(v)) return "ssh git URL";
  if (/^(github\.com|gitlab\.com|bitbucket\.org)([/:]|$)/i.test(v)) return "git URL";
  if (existsLocally) return undefined;
  // Forms that Kustomize (or an older one) reads as a git repository when no such path exists.
  if (/\?(.*&)?(ref|version|timeout|submodules)=/.test(v) || /\.git(\/|$)/.test(v) || /[^/]\/\/[^/]/.test(v)) return "git URL";
  if (/^[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?\//i.test(v)) return "git URL";
  return undefined;
}

/** A remote kind that reads the machine's own files whatever the policy (`file://`). */
export function isLocalUrl(value: string): boolean {
  return /^(git::)?file:/i.test(value.trim());
}

function fileSource(entry: string): string {
  // `key=path` names the key of the generated data; the path follows the first `=`.
  const eq = entry.indexOf("=");
  return eq >= 0 ? entry.slice(eq + 1) : entry;
}

function isInline(value: string): boolean {
  return value.includes("\n") || /^\s*[{[]/.test(value);
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The first line at or after the field's key that holds the value; the key's line, else 1. */
function lineOf(lines: readonly string[], key: string, value: string): number {
  const keyLine = lines.findIndex((l) => new RegExp(`^\\s*${key}\\s*:`).test(l));
  const from = Math.max(keyLine, 0);
  for (let i = from; i < lines.length; i++) if (lines[i]!.includes(value)) return i + 1;
  return keyLine >= 0 ? keyLine + 1 : 1;
}
