import * as yaml from "js-yaml";
import { loadBoundedYaml, YamlLimitError } from "./bounded-yaml";
import { INPUT_LIMITS, InputLimits } from "./input-limits";
import { KUBERNETES_SCHEMA, nonFiniteNumberPath } from "./kubernetes-yaml";
import { ManifestError, SourceLocation } from "./manifest-error";
import { KubeObject } from "./object-id";
import { splitYamlDocuments } from "./yaml-documents";

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

/**
 * Parses every document of one manifest file into objects; `kind: List` is expanded. A document over
 * the size limit, or whose aliases would expand past theirs, is an error at its line. Pure.
 */
export function parseManifests(text: string, file: string, limits: InputLimits = INPUT_LIMITS): ParsedFile {
  const objects: ParsedObject[] = [];
  const errors: ManifestError[] = [];
  let document = -1;
  for (const doc of splitYamlDocuments(text)) {
    const firstContentLine = doc.content.split("\n").findIndex((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    if (firstContentLine < 0) continue;
    document++;
    const location: SourceLocation = { file, line: doc.firstLine + firstContentLine + 1, document };
    let value: unknown;
    try {
      // As kubectl reads it (YAML 1.1: `0400` is octal); timestamps stay the strings Kubernetes sees.
      value = loadBoundedYaml(doc.content, { filename: file, schema: KUBERNETES_SCHEMA }, limits);
    } catch (err) {
      if (err instanceof YamlLimitError) {
        errors.push(
          new ManifestError({ file, line: doc.firstLine + err.line + 1, column: err.column + 1, document }, err.problem, err.hint),
        );
        continue;
      }
      if (err instanceof yaml.YAMLException) {
        errors.push(
          new ManifestError(
            { file, line: doc.firstLine + err.mark.line + 1, column: err.mark.column + 1, document },
            `invalid YAML: ${err.reason}`,
            "correct the YAML syntax at that line (check indentation, quotes and `:` after keys)",
          ),
        );
        continue;
      }
      throw err;
    }
    if (value === null || value === undefined) continue;
    const nonFinite = nonFiniteNumberPath(value);
    if (nonFinite !== undefined) {
      errors.push(
        new ManifestError(
          location,
          `\`${nonFinite}\` is .inf or .nan, which JSON (and so the API server) cannot hold`,
          'quote it if a string is meant (`".inf"`), or write a finite number',
        ),
      );
      continue;
    }
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
    // A hook may have only generateName (the server names each run); whether it is one is decided
    // with its unit (argo-hooks.ts), which refuses it on any other object.
    const hookWithGenerateName = typeof metadata.generateName === "string" && metadata.generateName !== "" && isHook(metadata);
    if ((typeof metadata.name !== "string" || !metadata.name) && !hookWithGenerateName) {
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

function isHook(metadata: Record<string, unknown>): boolean {
  const annotations = metadata.annotations;
  return isRecord(annotations) && (annotations["argocd.argoproj.io/hook"] !== undefined || annotations["helm.sh/hook"] !== undefined);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
