import * as path from "node:path";
import { z } from "zod";
import { auditFields, fields, FieldRules, meaningless, refused, SUPPORTED } from "./field-audit";
import {
  commonMetadataSchema,
  componentsSchema,
  imagesSchema,
  KustomizeOverlay,
  patchesJson6902Schema,
  patchesSchema,
  patchesStrategicMergeSchema,
} from "./kustomize-fields";
import { SourceLocation } from "./manifest-error";
import {
  addProblem,
  fieldError,
  ObjectContext,
  optionalBoolean,
  optionalList,
  optionalMapping,
  optionalString,
  parseObject,
  requiredMapping,
  requiredOneOf,
  requiredString,
} from "./manifest-schema";
import { DEFAULT_HEALTH_TIMEOUT_MS, HealthPolicy, parseGoDuration } from "./health-policy";
import { KubeObject } from "./object-id";
import { ServiceAccountRef, serviceAccountOf } from "./service-account";
import { defineKey, isMapping } from "./yaml-data";

/** A Flux `postBuild.substituteFrom` entry: a ConfigMap or Secret whose data keys are variables. */
export interface SubstituteRef {
  readonly kind: "ConfigMap" | "Secret";
  readonly name: string;
  /** Always the Kustomization's namespace, as in Flux. */
  readonly namespace: string;
  readonly optional: boolean;
}

/** A Flux v2 Kustomization (`kustomize.toolkit.fluxcd.io`), normalized to what ferry needs to build it. */
export interface FluxKustomizationSpec {
  readonly apiVersion: string;
  readonly name: string;
  readonly namespace: string;
  /** Folder relative to the repository root, normalized: no leading `./`, `.` for the root. */
  readonly path: string;
  /** Whether objects that leave the folder are deleted; false when `spec.prune` is absent (Go's zero value). */
  readonly prune: boolean;
  readonly targetNamespace?: string;
  /** `postBuild.substitute`, with newlines removed from the values as Flux does. */
  readonly substitute: Readonly<Record<string, string>>;
  /** `postBuild.substituteFrom`, in order; inline `substitute` values win over these. */
  readonly substituteFrom: readonly SubstituteRef[];
  /**
   * The source the path is read from (`kind` as written: GitRepository, OCIRepository, Bucket...);
   * undefined when the Kustomization names none (then the config repo).
   */
  readonly sourceRef?: { readonly kind: string; readonly name: string; readonly namespace: string };
  readonly suspend: boolean;
  readonly dependsOn: readonly { readonly name: string; readonly namespace: string }[];
  /** What Flux adds to the build of the path: patches, images, components, name prefix/suffix, common metadata. */
  readonly overlay: KustomizeOverlay;
  /** `wait`, `healthChecks` and `timeout`: undefined when the Kustomization waits for nothing. */
  readonly health?: HealthPolicy;
  /** `spec.serviceAccountName`, in the Kustomization's namespace: its objects are applied as that account. */
  readonly serviceAccount?: ServiceAccountRef;
  readonly location: SourceLocation;
}

const API_VERSIONS = new Set([
  "kustomize.toolkit.fluxcd.io/v1",
  "kustomize.toolkit.fluxcd.io/v1beta1",
  "kustomize.toolkit.fluxcd.io/v1beta2",
]);
/** kustomize-controller's `varsubRegex`: `[:alpha:]` and `[:digit:]` are ASCII in Go's RE2. */
const VARIABLE_NAME = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

/**
 * `spec.postBuild.substitute`: variable names as Flux accepts them, string values (a number must be
 * quoted), newlines dropped from the values as kustomize-controller does.
 */
const substituteSchema = z.unknown().transform((v, ctx): Record<string, string> => {
  const out: Record<string, string> = {};
  if (v === undefined || v === null) return out;
  if (!isMapping(v)) {
    return addProblem(ctx, "must be a mapping of variable names to strings", "write one `name: value` line per variable under it");
  }
  for (const [key, value] of Object.entries(v)) {
    if (!isVariableName(key)) {
      return addProblem(ctx, `has an invalid variable name "${key}"`, "use letters, digits and _ only, not starting with a digit");
    }
    if (typeof value !== "string") {
      // Reported as zod reports a wrong type, so the message names the value and how to quote it.
      ctx.addIssue({ code: z.ZodIssueCode.invalid_type, expected: "string", received: z.getParsedType(value), path: [key] });
      return z.NEVER;
    }
    defineKey(out, key, value.replace(/\n/g, ""));
  }
  return out;
});

/**
 * `spec.path`: Flux resolves `/apps` against the source root; ferry refuses absolute paths so a path
 * never reads as if it could point outside the repository. Unset means the repository root.
 */
const specPathSchema = optionalString.transform((raw = "", ctx): string => {
  const hint = "give the folder relative to the repository root, e.g. ./clusters/production";
  if (path.posix.isAbsolute(raw)) return addProblem(ctx, `"${raw}" leaves the checkout: it is absolute`, hint);
  const normalized = path.posix.normalize(raw === "" ? "." : raw).replace(/\/+$/, "") || ".";
  if (normalized === ".." || normalized.startsWith("../")) return addProblem(ctx, `"${raw}" leaves the checkout`, hint);
  return normalized;
});

const kustomizationSchema = z.object({
  spec: requiredMapping({
    // What kustomize-controller adds to the kustomization it builds (see render/kustomize-overlay).
    patches: patchesSchema,
    patchesStrategicMerge: patchesStrategicMergeSchema,
    patchesJson6902: patchesJson6902Schema,
    images: imagesSchema,
    components: componentsSchema,
    ignoreMissingComponents: optionalBoolean,
    namePrefix: optionalString,
    nameSuffix: optionalString,
    commonMetadata: commonMetadataSchema,

    path: specPathSchema,
    prune: optionalBoolean,
    targetNamespace: optionalString,
    postBuild: optionalMapping({
      substitute: substituteSchema,
      substituteFrom: optionalList(
        z.object({ kind: requiredOneOf(["ConfigMap", "Secret"]), name: requiredString, optional: optionalBoolean }),
      ),
    }),
    sourceRef: optionalMapping({ kind: requiredString, name: requiredString, namespace: optionalString }),
    suspend: optionalBoolean,
    serviceAccountName: optionalString,
    dependsOn: optionalList(z.object({ name: requiredString, namespace: optionalString })),
    wait: optionalBoolean,
    healthChecks: optionalList(
      z.object({ apiVersion: optionalString, kind: requiredString, name: requiredString, namespace: optionalString }),
    ),
    timeout: optionalString.transform((raw, ctx): number | undefined => {
      if (raw === undefined) return undefined;
      return parseGoDuration(raw) ?? addProblem(ctx, `"${raw}" is not a duration`, "write it as Go does: 30s, 5m, 1h30m");
    }),
  }),
});

const SCHEDULE = "ferry syncs on its own schedule (the stack's interval, webhooks, `ferry sync`)";
const META = { labels: SUPPORTED, annotations: SUPPORTED };

/**
 * Every field of kustomize.toolkit.fluxcd.io v1 (and v1beta1/v1beta2) KustomizationSpec: read,
 * accepted as meaningless for ferry (with why), or refused by name.
 */
const KUSTOMIZATION_FIELDS: FieldRules = {
  interval: meaningless(SCHEDULE),
  retryInterval: meaningless(SCHEDULE),
  path: SUPPORTED,
  prune: SUPPORTED,
  sourceRef: SUPPORTED,
  dependsOn: SUPPORTED,
  targetNamespace: SUPPORTED,
  suspend: SUPPORTED,
  // Read as the unit's health policy: the run waits for it after applying (reconcile/health.ts).
  timeout: SUPPORTED,
  wait: SUPPORTED,
  healthChecks: SUPPORTED,
  // Pulumi's Kubernetes provider replaces an object whose immutable fields change, which is what force asks.
  force: meaningless("ferry replaces an object when an immutable field changes"),
  healthCheckExprs: refused(
    "ferry computes readiness with its own (kstatus) rules and cannot evaluate CEL health checks",
    "remove spec.healthCheckExprs",
  ),
  patches: SUPPORTED,
  patchesStrategicMerge: SUPPORTED,
  patchesJson6902: SUPPORTED,
  images: SUPPORTED,
  components: SUPPORTED,
  ignoreMissingComponents: SUPPORTED,
  namePrefix: SUPPORTED,
  nameSuffix: SUPPORTED,
  commonMetadata: fields(META),
  postBuild: fields({ substitute: SUPPORTED, substituteFrom: SUPPORTED }),
  decryption: refused("ferry cannot decrypt SOPS files", "keep Secrets out of Git or decrypt them before ferry reads the repository"),
  kubeConfig: refused("ferry applies to its own cluster only", "run a ferry stack for the other cluster"),
  // Its objects are applied impersonating the account (engine, dry run): the cluster's RBAC decides.
  serviceAccountName: SUPPORTED,
  deletionPolicy: refused(
    "ferry deletes a removed Kustomization's objects exactly when `prune` is true (Flux's MirrorPrune)",
    "remove spec.deletionPolicy or set it to MirrorPrune, and use `prune`",
    (v) => v === "MirrorPrune",
  ),
  // v1beta1: Flux v1beta2 and later ignore it too (validation is server-side dry-run, always).
  validation: meaningless("the API server validates every object ferry applies"),
};

const HINTS: Readonly<Record<string, string>> = {
  spec: "add a spec with at least `path` and `prune`",
  "spec.postBuild.substituteFrom[]": "each substituteFrom entry is `{kind: ConfigMap|Secret, name, optional?}`",
  "spec.postBuild.substituteFrom[].*": "each substituteFrom entry is `{kind: ConfigMap|Secret, name, optional?}`",
  "spec.sourceRef.*": "name the source: `sourceRef: {kind: GitRepository, name, namespace?}`",
  "spec.dependsOn[]": "each dependsOn entry is `{name, namespace?}`",
  "spec.patches[]": "each patch is `{patch: <strategic merge or JSON 6902 patch text>, target?: {kind, name, ...}}`",
  "spec.patches[].*": "each patch is `{patch: <strategic merge or JSON 6902 patch text>, target?: {kind, name, ...}}`",
  "spec.patchesJson6902[]": "each entry is `{target: {kind, name, ...}, patch: [{op, path, value}]}`",
  "spec.patchesJson6902[].*": "each entry is `{target: {kind, name, ...}, patch: [{op, path, value}]}`",
  "spec.images[]": "each image is `{name, newName?, newTag?, digest?}`",
  "spec.images[].*": "each image is `{name, newName?, newTag?, digest?}`",
  "spec.dependsOn[].name": "name the Kustomization this one waits for",
  "spec.healthChecks[]": "each healthChecks entry is `{apiVersion, kind, name, namespace}`",
  "spec.healthChecks[].*": "each healthChecks entry is `{apiVersion, kind, name, namespace}`",
};

/** Whether an object is a Flux v2 Kustomization (not a `kustomize.config.k8s.io` kustomization.yaml). */
export function isFluxKustomization(obj: KubeObject): boolean {
  return obj.kind === "Kustomization" && API_VERSIONS.has(obj.apiVersion);
}

/** Whether a name is a valid Flux postBuild variable name (letters, digits and `_`, not starting with a digit). */
export function isVariableName(name: string): boolean {
  return VARIABLE_NAME.test(name);
}

/**
 * Reads a Flux Kustomization into a {@link FluxKustomizationSpec}. Pure; throws a ManifestError
 * naming the Kustomization, the field and how to fix it for an invalid field, a path that leaves the
 * checkout, or a field ferry does not implement. A missing `spec.path` means the repository root, as
 * in Flux.
 */
export function parseFluxKustomization(obj: KubeObject, location: SourceLocation): FluxKustomizationSpec {
  const name = obj.metadata.name;
  const namespace = obj.metadata.namespace || "default";
  const context: ObjectContext = { what: `Kustomization/${namespace}/${name}`, location, hints: HINTS };
  if (!isFluxKustomization(obj)) {
    throw fieldError(
      context,
      [],
      `apiVersion ${obj.apiVersion} kind ${obj.kind} is not a Flux Kustomization`,
      `use one of ${[...API_VERSIONS].join(", ")}`,
    );
  }
  auditFields(obj.spec, KUSTOMIZATION_FIELDS, context, ["spec"]);
  const { spec } = parseObject(kustomizationSchema, obj, context);
  return {
    apiVersion: obj.apiVersion,
    name,
    namespace,
    path: spec.path,
    prune: spec.prune ?? false,
    ...(spec.targetNamespace !== undefined ? { targetNamespace: spec.targetNamespace } : {}),
    substitute: spec.postBuild?.substitute ?? {},
    substituteFrom: (spec.postBuild?.substituteFrom ?? []).map((ref) => ({
      kind: ref.kind,
      name: ref.name,
      namespace,
      optional: ref.optional ?? false,
    })),
    ...(spec.sourceRef
      ? { sourceRef: { kind: spec.sourceRef.kind, name: spec.sourceRef.name, namespace: spec.sourceRef.namespace ?? namespace } }
      : {}),
    suspend: spec.suspend ?? false,
    dependsOn: spec.dependsOn.map((dep) => ({ name: dep.name, namespace: dep.namespace ?? namespace })),
    overlay: {
      // Kustomize applies patchesStrategicMerge before the other patches; all match names before namePrefix/nameSuffix.
      patches: [...spec.patchesStrategicMerge, ...spec.patchesJson6902, ...spec.patches],
      images: spec.images,
      components: spec.components,
      ignoreMissingComponents: spec.ignoreMissingComponents ?? false,
      ...(spec.namePrefix !== undefined ? { namePrefix: spec.namePrefix } : {}),
      ...(spec.nameSuffix !== undefined ? { nameSuffix: spec.nameSuffix } : {}),
      ...(spec.commonMetadata ? { commonMetadata: spec.commonMetadata } : {}),
    },
    ...(spec.wait || spec.healthChecks.length > 0
      ? { health: { wait: spec.wait ?? false, checks: spec.healthChecks, timeoutMs: spec.timeout ?? DEFAULT_HEALTH_TIMEOUT_MS } }
      : {}),
    ...(spec.serviceAccountName ? { serviceAccount: serviceAccountOf(spec.serviceAccountName, namespace)! } : {}),
    location,
  };
}
