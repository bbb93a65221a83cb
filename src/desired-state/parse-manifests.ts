import * as yaml from "js-yaml";
import { ManifestError, SourceLocation } from "./manifest-error";
import { KubeObject } from "./object-id";

/** One object read from a manifest file, with where it came from. */
export interface ParsedObject {
  readonly object: KubeObject;
  readonly location: SourceLocation;
}

/** What {@link parseManifests} found in one file. */
export interface ParsedFile {
  readonly objects: readonly ParsedObject[];
  readonly errors: readonly ManifestError[];
}

interface YamlChunk {
  readonly text: string;
  /** 0-based line of the chunk's first line in the file. */
  readonly lineOffset: number;
}

/**
 * Splits a multi-document YAML text at `---` / `...` markers. A marker at column 0 always ends a
 * document in YAML (even inside a block scalar), so splitting by lines is exact.
 */
export function splitDocuments(text: string): YamlChunk[] {
  const lines = text.split(/\r?\n/);
  const chunks: YamlChunk[] = [];
  let start = 0;
  let current: string[] = [];
  const flush = (): void => {
    chunks.push({ text: current.join("\n"), lineOffset: start });
  };
  lines.forEach((line, i) => {
    if (/^---(\s|$)/.test(line)) {
      if (i > 0 || current.length > 0) flush();
      start = i;
      // Keep whatever follows the marker on its line, with columns intact.
      current = ["   " + line.slice(3)];
    } else if (/^\.\.\.(\s|$)/.test(line)) {
      flush();
      start = i + 1;
      current = [];
    } else {
      current.push(line);
    }
  });
  flush();
  return chunks;
}

/** Parses every document of one manifest file into objects; `kind: List` is expanded. Pure. */
export function parseManifests(text: string, file: string): ParsedFile {
  const objects: ParsedObject[] = [];
  const errors: ManifestError[] = [];
  let document = -1;
  for (const chunk of splitDocuments(text)) {
    const hasContent = chunk.text.split("\n").some((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    if (!hasContent) continue;
    document++;
    const firstLine = chunk.text.split("\n").findIndex((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    const location: SourceLocation = { file, line: chunk.lineOffset + firstLine + 1, document };
    let value: unknown;
    try {
      // CORE_SCHEMA: no timestamps, so `date: 2024-01-01` stays the string Kubernetes sees.
      value = yaml.load(chunk.text, { filename: file, schema: yaml.CORE_SCHEMA });
    } catch (err) {
      if (err instanceof yaml.YAMLException) {
        errors.push(
          new ManifestError(
            { file, line: chunk.lineOffset + err.mark.line + 1, column: err.mark.column + 1, document },
            `invalid YAML: ${err.reason}`,
            "correct the YAML syntax at that line (check indentation, quotes and `:` after keys)",
          ),
        );
        continue;
      }
      throw err;
    }
    if (value === null || value === undefined) continue;
    if (!isRecord(value)) {
      errors.push(
        new ManifestError(location, "document is not a Kubernetes object (expected a mapping with apiVersion, kind and metadata)"),
      );
      continue;
    }
    if (value.kind === "List" && (value.apiVersion === "v1" || value.apiVersion === undefined)) {
      if (!Array.isArray(value.items)) {
        errors.push(new ManifestError(location, "kind: List has no `items` array", "add the objects under `items:`"));
        continue;
      }
      value.items.forEach((item, i) => checkObject(item, location, `item ${i + 1} of the List`, objects, errors));
      continue;
    }
    checkObject(value, location, "", objects, errors);
  }
  return { objects, errors };
}

function checkObject(value: unknown, location: SourceLocation, where: string, objects: ParsedObject[], errors: ManifestError[]): void {
  const prefix = where ? `${where}: ` : "";
  if (!isRecord(value)) {
    errors.push(new ManifestError(location, `${prefix}not a Kubernetes object (expected a mapping)`));
    return;
  }
  const problems: string[] = [];
  if (typeof value.apiVersion !== "string" || !value.apiVersion) problems.push("`apiVersion` is missing");
  if (typeof value.kind !== "string" || !value.kind) problems.push("`kind` is missing");
  const metadata = value.metadata;
  if (!isRecord(metadata)) problems.push("`metadata` is missing");
  else {
    if (typeof metadata.name !== "string" || !metadata.name) {
      problems.push(
        metadata.generateName !== undefined
          ? "`metadata.generateName` is not supported: ferry tracks every object by its name"
          : "`metadata.name` is missing",
      );
    }
    if (metadata.namespace !== undefined && typeof metadata.namespace !== "string") problems.push("`metadata.namespace` must be a string");
  }
  if (problems.length > 0) {
    const what =
      typeof value.kind === "string"
        ? `${value.kind}${isRecord(metadata) && typeof metadata.name === "string" ? `/${metadata.name}` : ""}: `
        : "";
    errors.push(
      new ManifestError(location, `${prefix}${what}${problems.join(", ")}`, "every object needs apiVersion, kind and metadata.name"),
    );
    return;
  }
  objects.push({ object: value as unknown as KubeObject, location });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
