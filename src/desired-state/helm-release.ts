import { createHash } from "node:crypto";
import * as path from "node:path";
import { z } from "zod";
import { auditFields } from "./field-audit";
import { GitRef } from "./git-ref";
import { commonMetadataSchema, HELM_RELEASE_V2_FIELDS, postRenderersSchema } from "./helm-release-fields";
import { EMPTY_OVERLAY, KustomizeOverlay } from "./kustomize-fields";
import { SourceLocation } from "./manifest-error";
import {
  addProblem,
  dataMapping,
  fieldError,
  ObjectContext,
  optionalBoolean,
  optionalList,
  optionalMapping,
  optionalOneOf,
  optionalString,
  parseObject,
  requiredMapping,
  requiredOneOf,
  requiredString,
  unsupported,
} from "./manifest-schema";
import { KubeObject, splitApiVersion } from "./object-id";
import { REMOTE_GIT_URL_HINT, remoteGitUrlProblem } from "./outbound-policy";
import { ServiceAccountRef, serviceAccountOf } from "./service-account";

/** Where one layer of a HelmRelease's values comes from, in the order the release lists them. */
export type ValuesRef =
  | {
      readonly kind: "ConfigMap" | "Secret";
      readonly name: string;
      readonly namespace: string;
      readonly key: string;
      readonly optional: boolean;
      /** Flux v2: set the whole text of the key at this path (see `setValueAtPath` in render/helm-values) instead of merging it as YAML. */
      readonly targetPath?: string;
    }
  | { readonly kind: "ExternalURL"; readonly url: string; readonly optional: boolean }
  | {
      readonly kind: "ChartFile";
      /** Relative to the chart's folder. */
      readonly path: string;
      readonly optional: boolean;
    };

/**
 * A Flux source's `spec.secretRef`: the Secret that holds its credentials (`username`/`password`
 * for https, `identity`/`known_hosts` for ssh), as source-controller reads it.
 */
export interface SourceSecretRef {
  /** The source that names the Secret, e.g. `GitRepository/apps/charts`. */
  readonly source: string;
  readonly name: string;
  /** The source's own namespace, unless the ref names another one (refused unless the policy allows cross-namespace refs). */
  readonly namespace: string;
}

/** Where a HelmRelease's chart comes from. */
export type ChartSource =
  | {
      readonly type: "helm-repository";
      /** The repository URL, without a trailing slash. */
      readonly url: string;
      readonly chart: string;
      /** An exact version or a semver range (`>=1.0.0 <2.0.0`, `1.x`, `*`); undefined = the newest. */
      readonly version?: string;
      /** The HelmRepository's credentials; none when absent. */
      readonly secretRef?: SourceSecretRef;
    }
  | {
      readonly type: "git";
      /** Undefined = the config repo itself. */
      readonly url?: string;
      /** Which commit of the repository: Flux's defaults applied (`master` when nothing is set). */
      readonly ref: GitRef;
      /** The chart's folder, relative to the repository root, normalized (no leading `./`). */
      readonly path: string;
      /** The GitRepository's credentials; absent for a Flux v1 `chart.git` (only the config repo's own URL gets credentials then). */
      readonly secretRef?: SourceSecretRef;
    }
  | {
      readonly type: "oci";
      /** `oci://registry/path/chart`, or `oci://registry/path/chart@sha256:...` when pinned by digest (then no version). */
      readonly url: string;
      /** A chart version (the tag) or a semver range; undefined = the newest version (or the digest in `url`). */
      readonly version?: string;
      /** The OCIRepository's or OCI HelmRepository's credentials; none when absent. */
      readonly secretRef?: SourceSecretRef;
      /** The source's `spec.insecure`: the registry speaks plain HTTP (helm's `--plain-http`); https otherwise. */
      readonly insecure?: boolean;
    };

/** A HelmRelease of any supported API version, normalized to what ferry needs to render it. */
export interface HelmReleaseSpec {
  readonly apiVersion: string;
  readonly name: string;
  readonly namespace: string;
  /** The Helm release name, defaulted and (Flux v2) shortened exactly as Flux does. */
  readonly releaseName: string;
  readonly targetNamespace: string;
  readonly chart: ChartSource;
  /** Flux v2: the source object the chart comes from (`chart.spec.sourceRef` or `chartRef`), its namespace defaulted to the release's. */
  readonly sourceRef?: { readonly kind: string; readonly name: string; readonly namespace: string };
  /** Inline `spec.values`, merged last. */
  readonly values: Record<string, unknown>;
  readonly valuesFrom: readonly ValuesRef[];
  readonly skipCRDs: boolean;
  /** Flux v2 `postRenderers` (then `commonMetadata`): Kustomize overlays applied to Helm's output, in order. */
  readonly postRenderers: readonly KustomizeOverlay[];
  /** Flux v2 `chart.spec.valuesFiles`: files of the chart (git charts only) that replace its values.yaml, merged in order. */
  readonly valuesFiles: readonly string[];
  readonly ignoreMissingValuesFiles: boolean;
  /**
   * Flux v2 `spec.upgrade.crds: CreateReplace`: the CRDs of the chart's crds/ folder are updated with
   * the chart. Otherwise (Flux's default `Skip`, and `Create`) they are created once and left as they are.
   */
  readonly updateCRDs?: boolean;
  readonly suspend: boolean;
  readonly dependsOn: readonly { readonly name: string; readonly namespace: string }[];
  /** Flux v2 `spec.serviceAccountName`, in the release's namespace: its objects and hooks are applied as that account. */
  readonly serviceAccount?: ServiceAccountRef;
  readonly location: SourceLocation;
}

const FLUX_V1_API_VERSIONS = new Set(["flux.weave.works/v1beta1", "helm.fluxcd.io/v1"]);
const FLUX_V2_API_VERSIONS = new Set(["helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta1", "helm.toolkit.fluxcd.io/v2beta2"]);
const FLUX_SOURCE_GROUP = "source.toolkit.fluxcd.io";
const FLUX_SOURCE_KINDS = new Set(["HelmRepository", "GitRepository", "OCIRepository", "Bucket"]);
const DEFAULT_VALUES_KEY = "values.yaml";
/** helm-operator's default when a git chart names no ref (its `--git-default-ref`). */
const FLUX_V1_DEFAULT_GIT_REF: GitRef = { kind: "branch", branch: "master" };
/** source-controller's default when a GitRepository has no `spec.ref`. */
const GIT_REPOSITORY_DEFAULT_REF: GitRef = { kind: "branch", branch: "master" };
const HELM_MAX_RELEASE_NAME = 53;

/** Whether an object is a HelmRelease of an API version ferry renders (Flux v1 helm-operator or Flux v2). */
export function isHelmRelease(obj: KubeObject): boolean {
  return obj.kind === "HelmRelease" && (FLUX_V1_API_VERSIONS.has(obj.apiVersion) || FLUX_V2_API_VERSIONS.has(obj.apiVersion));
}

/** Whether an object is a Flux source (HelmRepository, GitRepository, OCIRepository, Bucket) that HelmReleases and Kustomizations can point at. */
export function isFluxSource(obj: KubeObject): boolean {
  return splitApiVersion(obj.apiVersion).group === FLUX_SOURCE_GROUP && FLUX_SOURCE_KINDS.has(obj.kind);
}

/**
 * Flux v2's release name shortening (helm-controller `release.ShortenName`): a name longer than 53
 * characters becomes its first 40 characters, `-`, and the first 12 hex characters of its SHA-256.
 */
export function shortenReleaseName(name: string): string {
  if (name.length <= HELM_MAX_RELEASE_NAME) return name;
  const hashLength = 12;
  const sum = createHash("sha256").update(name, "utf8").digest("hex");
  return `${name.slice(0, HELM_MAX_RELEASE_NAME - hashLength - 1)}-${sum.slice(0, hashLength)}`;
}

/**
 * Reads a HelmRelease (Flux v1 `flux.weave.works/v1beta1`, `helm.fluxcd.io/v1`, or Flux v2
 * `helm.toolkit.fluxcd.io/v2*`) into a {@link HelmReleaseSpec}, resolving its chart source among
 * the Flux source objects of the repository. Pure; throws a ManifestError naming the release, the
 * field and how to fix it for anything invalid, unresolvable or unsupported.
 */
export function parseHelmRelease(obj: KubeObject, location: SourceLocation, sources: readonly KubeObject[]): HelmReleaseSpec {
  const name = obj.metadata.name;
  const namespace = obj.metadata.namespace || "default";
  const what = `HelmRelease/${namespace}/${name}`;
  if (!isHelmRelease(obj)) {
    throw fieldError(
      { what, location },
      [],
      `apiVersion ${obj.apiVersion} kind ${obj.kind} is not a HelmRelease ferry can render`,
      `use one of ${[...FLUX_V2_API_VERSIONS, ...FLUX_V1_API_VERSIONS].join(", ")}`,
    );
  }
  const common = { apiVersion: obj.apiVersion, name, namespace, location };
  return FLUX_V1_API_VERSIONS.has(obj.apiVersion)
    ? fluxV1Spec(obj, common, { what, location, hints: V1_HINTS })
    : fluxV2Spec(obj, common, sources, { what, location, hints: V2_HINTS });
}

type Common = Pick<HelmReleaseSpec, "apiVersion" | "name" | "namespace" | "location">;

// ---- helm-operator (flux.weave.works/v1beta1, helm.fluxcd.io/v1) ----

const V1_CHART_HINT =
  "give either `repository`, `name` and `version` (a chart from a Helm repository) or `git`, `ref` and `path` (a chart in git)";
const V1_VALUES_FROM_HINT =
  "each valuesFrom entry is one of `configMapKeyRef: {name, namespace?, key?, optional?}`, `secretKeyRef: {...}`, `externalSourceRef: {url, optional?}`, `chartFileRef: {path, optional?}`";

/** `spec.chart` of helm-operator: a chart of a Helm repository, or a folder of a git repository. */
const v1ChartSchema = requiredMapping({
  repository: optionalString,
  name: optionalString,
  version: optionalString,
  git: optionalString,
  ref: optionalString,
  path: optionalString,
}).transform((chart, ctx): ChartSource => {
  if (chart.repository !== undefined && chart.git !== undefined) return addProblem(ctx, "sets both `repository` and `git`", V1_CHART_HINT);
  if (chart.repository !== undefined) {
    if (chart.name === undefined) return addProblem(ctx, "is missing", "name the chart to install from the repository", ["name"]);
    return { type: "helm-repository", url: withoutTrailingSlash(chart.repository), chart: chart.name, version: chart.version };
  }
  if (chart.git !== undefined) {
    if (chart.path === undefined) return addProblem(ctx, "is missing", "give the chart's folder in the git repository", ["path"]);
    const chartPath = repoRelativePath(chart.path);
    if (chartPath === undefined) return addProblem(ctx, `"${chart.path}" leaves the repository`, CHART_PATH_HINT, ["path"]);
    const local = remoteGitUrlProblem(chart.git);
    if (local !== undefined) return addProblem(ctx, local, REMOTE_GIT_URL_HINT, ["git"]);
    // helm-operator handed the ref to `git rev-list`: a branch, a tag or a commit.
    const ref: GitRef = chart.ref !== undefined ? { kind: "auto", ref: chart.ref } : FLUX_V1_DEFAULT_GIT_REF;
    return { type: "git", url: chart.git, ref, path: chartPath };
  }
  return addProblem(ctx, "has neither `repository` nor `git`", V1_CHART_HINT);
});

const v1KeyRefShape = { name: requiredString, namespace: optionalString, key: optionalString, optional: optionalBoolean };
const V1_VALUES_FROM_KEYS = ["configMapKeyRef", "secretKeyRef", "externalSourceRef", "chartFileRef"] as const;

const v1ValuesFromSchema = z
  .object({
    configMapKeyRef: optionalMapping(v1KeyRefShape),
    secretKeyRef: optionalMapping(v1KeyRefShape),
    externalSourceRef: optionalMapping({ url: requiredString, optional: optionalBoolean }),
    chartFileRef: optionalMapping({ path: requiredString, optional: optionalBoolean }),
  })
  .superRefine((entry, ctx) => {
    if (V1_VALUES_FROM_KEYS.filter((k) => entry[k] !== undefined).length !== 1) {
      addProblem(ctx, `must set exactly one of ${V1_VALUES_FROM_KEYS.join(", ")}`, V1_VALUES_FROM_HINT);
    }
  });

const fluxV1Schema = z.object({
  spec: requiredMapping({
    chart: v1ChartSchema,
    releaseName: optionalString,
    targetNamespace: optionalString,
    valueFileSecrets: optionalList(z.object({ name: requiredString })),
    valuesFrom: optionalList(v1ValuesFromSchema),
    values: dataMapping,
    skipCRDs: optionalBoolean,
  }),
});

const V1_HINTS: Readonly<Record<string, string>> = {
  spec: "add a spec with at least the chart to install",
  "spec.chart": V1_CHART_HINT,
  "spec.valueFileSecrets[]": "each valueFileSecrets entry is `{name}`",
  "spec.valueFileSecrets[].name": "name the Secret whose values.yaml key holds values",
  "spec.valuesFrom[]": V1_VALUES_FROM_HINT,
  "spec.valuesFrom[].*": V1_VALUES_FROM_HINT,
};

function fluxV1Spec(obj: KubeObject, common: Common, context: ObjectContext): HelmReleaseSpec {
  const { name, namespace } = common;
  const { spec } = parseObject(fluxV1Schema, obj, context);

  const targetNamespace = spec.targetNamespace ?? namespace;
  // helm-operator's GetReleaseName: the HelmRelease namespace is prefixed when it differs from the target.
  const releaseName =
    spec.releaseName ?? (targetNamespace !== namespace ? `${namespace}-${targetNamespace}-${name}` : `${targetNamespace}-${name}`);
  if (releaseName.length > HELM_MAX_RELEASE_NAME) {
    // helm-operator did not shorten names; Helm refuses them.
    throw fieldError(
      context,
      [],
      `release name "${releaseName}" has ${releaseName.length} characters; Helm allows at most ${HELM_MAX_RELEASE_NAME}`,
      "set a shorter `spec.releaseName`",
    );
  }

  // helm-operator put the deprecated valueFileSecrets before valuesFrom.
  const valuesFrom: ValuesRef[] = spec.valueFileSecrets.map((secret) => ({
    kind: "Secret",
    name: secret.name,
    namespace,
    key: DEFAULT_VALUES_KEY,
    optional: false,
  }));
  spec.valuesFrom.forEach((entry, i) => {
    if (entry.configMapKeyRef || entry.secretKeyRef) {
      const ref = (entry.configMapKeyRef ?? entry.secretKeyRef)!;
      valuesFrom.push({
        kind: entry.configMapKeyRef ? "ConfigMap" : "Secret",
        name: ref.name,
        namespace: ref.namespace ?? namespace,
        key: ref.key ?? DEFAULT_VALUES_KEY,
        optional: ref.optional ?? false,
      });
    } else if (entry.externalSourceRef) {
      valuesFrom.push({ kind: "ExternalURL", url: entry.externalSourceRef.url, optional: entry.externalSourceRef.optional ?? false });
    } else if (entry.chartFileRef) {
      if (spec.chart.type !== "git") {
        throw fieldError(
          context,
          ["spec", "valuesFrom", i, "chartFileRef"],
          "reads a file of the chart's git folder, but this release's chart comes from a Helm repository",
          "move those values into `spec.values`, or into a ConfigMap referenced with `configMapKeyRef`",
        );
      }
      valuesFrom.push({ kind: "ChartFile", path: entry.chartFileRef.path, optional: entry.chartFileRef.optional ?? false });
    }
  });

  return {
    ...common,
    releaseName,
    targetNamespace,
    chart: spec.chart,
    values: spec.values,
    valuesFrom,
    skipCRDs: spec.skipCRDs ?? false,
    postRenderers: [],
    valuesFiles: [],
    ignoreMissingValuesFiles: false,
    suspend: false,
    dependsOn: [],
  };
}

// ---- Flux v2 (helm.toolkit.fluxcd.io) ----

const SOURCE_REF_HINT =
  "point `sourceRef` at a HelmRepository or a GitRepository declared in the repository: `{kind: HelmRepository, name, namespace?}`";
const CHART_REF_HINT = "point `spec.chartRef` at an OCIRepository, or use `spec.chart.spec.sourceRef`";
const V2_VALUES_FROM_HINT = "each valuesFrom entry is `{kind: ConfigMap|Secret, name, valuesKey?, targetPath?, optional?}`";
const VALUES_FILES_HINT = "move those values into `spec.values` or a ConfigMap in `spec.valuesFrom`";
const VALUES_FILES_ARCHIVE =
  "reads files inside the chart archive of a Helm or OCI repository, which ferry does not unpack; only charts from a GitRepository can use it";

const fluxV2Schema = z.object({
  spec: requiredMapping({
    // Fields that only tune helm-controller, and those ferry refuses, are in HELM_RELEASE_V2_FIELDS.
    postRenderers: postRenderersSchema,
    commonMetadata: commonMetadataSchema,
    chart: optionalMapping({
      spec: requiredMapping({
        valuesFiles: optionalList(requiredString),
        valuesFile: optionalString,
        ignoreMissingValuesFiles: optionalBoolean,
        chart: requiredString,
        version: optionalString,
        sourceRef: requiredMapping({
          kind: requiredOneOf(["HelmRepository", "GitRepository"]),
          name: requiredString,
          namespace: optionalString,
        }),
      }),
    }),
    chartRef: optionalMapping({ kind: requiredOneOf(["OCIRepository"]), name: requiredString, namespace: optionalString }),
    releaseName: optionalString,
    targetNamespace: optionalString,
    valuesFrom: optionalList(
      z.object({
        kind: requiredOneOf(["ConfigMap", "Secret"]),
        name: requiredString,
        valuesKey: optionalString,
        targetPath: optionalString,
        optional: optionalBoolean,
      }),
    ),
    values: dataMapping,
    install: optionalMapping({ crds: optionalOneOf(["Skip", "Create", "CreateReplace"]), skipCRDs: optionalBoolean }),
    upgrade: optionalMapping({ crds: optionalOneOf(["Skip", "Create", "CreateReplace"]) }),
    skipCRDs: optionalBoolean,
    suspend: optionalBoolean,
    serviceAccountName: optionalString,
    dependsOn: optionalList(z.object({ name: requiredString, namespace: optionalString })),
  }),
});

const V2_HINTS: Readonly<Record<string, string>> = {
  spec: "add a spec with at least the chart to install",
  "spec.chart": "write `spec.chart: {spec: {chart, version, sourceRef}}`",
  "spec.chart.spec": "add `spec.chart.spec: {chart, version, sourceRef}`",
  "spec.chart.spec.chart": "name the chart (or its path in a GitRepository)",
  "spec.chart.spec.sourceRef": SOURCE_REF_HINT,
  "spec.chart.spec.sourceRef.*": SOURCE_REF_HINT,
  "spec.chartRef.*": CHART_REF_HINT,
  "spec.valuesFrom[]": V2_VALUES_FROM_HINT,
  "spec.valuesFrom[].*": V2_VALUES_FROM_HINT,
  "spec.dependsOn[]": "each dependsOn entry is `{name, namespace?}`",
  "spec.dependsOn[].name": "name the HelmRelease this one waits for",
};

function fluxV2Spec(obj: KubeObject, common: Common, sources: readonly KubeObject[], context: ObjectContext): HelmReleaseSpec {
  const { name, namespace } = common;
  auditFields(obj.spec, HELM_RELEASE_V2_FIELDS, context, ["spec"]);
  const { spec } = parseObject(fluxV2Schema, obj, context);

  let chart: ChartSource;
  let sourceRef: HelmReleaseSpec["sourceRef"];
  if (spec.chart && spec.chartRef) {
    throw fieldError(context, [], "sets both `spec.chart` and `spec.chartRef`", "keep one of them");
  } else if (spec.chartRef) {
    const ref = { ...spec.chartRef, namespace: spec.chartRef.namespace ?? namespace };
    sourceRef = ref;
    const repo = findSource(sources, ref, ["spec", "chartRef"], context);
    chart = ociRepositoryChart(repo, sourceContext(context, repo));
  } else if (spec.chart) {
    const template = spec.chart.spec;
    const ref = { ...template.sourceRef, namespace: template.sourceRef.namespace ?? namespace };
    sourceRef = ref;
    const repo = findSource(sources, ref, ["spec", "chart", "spec", "sourceRef"], context);
    chart =
      ref.kind === "HelmRepository"
        ? helmRepositoryChart(repo, template.chart, template.version, sourceContext(context, repo))
        : gitRepositoryChart(repo, template.chart, sourceContext(context, repo), context);
  } else {
    throw fieldError(
      context,
      [],
      "has neither `spec.chart` nor `spec.chartRef`",
      "add `spec.chart.spec: {chart, version, sourceRef: {kind: HelmRepository, name}}` or `spec.chartRef: {kind: OCIRepository, name}`",
    );
  }

  // helm-controller's GetReleaseName, then release.ShortenName on whatever it returns.
  const releaseName = shortenReleaseName(
    spec.releaseName ?? (spec.targetNamespace !== undefined ? `${spec.targetNamespace}-${name}` : name),
  );
  const skipCRDs = (spec.install?.skipCRDs ?? false) || spec.install?.crds === "Skip" || (spec.skipCRDs ?? false);
  // source-controller: the deprecated valuesFile comes first, then valuesFiles.
  const template = spec.chart?.spec;
  const valuesFiles = [...(template?.valuesFile !== undefined ? [template.valuesFile] : []), ...(template?.valuesFiles ?? [])];
  if (valuesFiles.length > 0 && chart.type !== "git") {
    throw fieldError(
      context,
      ["spec", "chart", "spec", template?.valuesFiles.length ? "valuesFiles" : "valuesFile"],
      VALUES_FILES_ARCHIVE,
      VALUES_FILES_HINT,
    );
  }
  const postRenderers: KustomizeOverlay[] = [...spec.postRenderers];
  // helm-controller applies commonMetadata after the post-renderers the release lists.
  if (spec.commonMetadata) postRenderers.push({ ...EMPTY_OVERLAY, commonMetadata: spec.commonMetadata });

  return {
    ...common,
    releaseName,
    targetNamespace: spec.targetNamespace ?? namespace,
    chart,
    ...(sourceRef ? { sourceRef } : {}),
    values: spec.values,
    valuesFrom: spec.valuesFrom.map((ref): ValuesRef => ({
      kind: ref.kind,
      name: ref.name,
      namespace,
      key: ref.valuesKey ?? DEFAULT_VALUES_KEY,
      optional: ref.optional ?? false,
      ...(ref.targetPath !== undefined ? { targetPath: ref.targetPath } : {}),
    })),
    skipCRDs,
    postRenderers,
    valuesFiles,
    ignoreMissingValuesFiles: template?.ignoreMissingValuesFiles ?? false,
    updateCRDs: spec.upgrade?.crds === "CreateReplace",
    suspend: spec.suspend ?? false,
    dependsOn: spec.dependsOn.map((dep) => ({ name: dep.name, namespace: dep.namespace ?? namespace })),
    ...(spec.serviceAccountName ? { serviceAccount: serviceAccountOf(spec.serviceAccountName, namespace)! } : {}),
  };
}

// ---- Flux sources ----

interface SourceRef {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
}

function findSource(sources: readonly KubeObject[], ref: SourceRef, field: readonly string[], context: ObjectContext): KubeObject {
  const found = sources.find(
    (s) => isFluxSource(s) && s.kind === ref.kind && s.metadata.name === ref.name && (s.metadata.namespace || "default") === ref.namespace,
  );
  if (found) return found;
  throw fieldError(
    context,
    field,
    `names ${ref.kind}/${ref.namespace}/${ref.name}, which is not in the repository`,
    `add the ${ref.kind} "${ref.name}" (namespace ${ref.namespace}) to the repository: ferry reads Flux sources from Git, not from the cluster`,
  );
}

/** A source's problems are reported at the HelmRelease that uses it, naming both. */
function sourceContext(release: ObjectContext, source: KubeObject): ObjectContext {
  return {
    what: `${release.what}: ${source.kind}/${source.metadata.namespace || "default"}/${source.metadata.name}`,
    location: release.location,
    hints: { spec: "add the source's spec with at least its `url`", "spec.url": SOURCE_URL_HINTS[source.kind] ?? "give its URL" },
  };
}

const SOURCE_URL_HINTS: Readonly<Record<string, string>> = {
  HelmRepository: "give the repository URL",
  GitRepository: "give the git URL",
  OCIRepository: "give the chart's oci:// URL",
};

/** `spec.secretRef` of a Flux source: a name (Flux reads it in the source's namespace). */
const secretRefSchema = optionalMapping({ name: requiredString, namespace: optionalString });

/** The Secret a source's `spec.secretRef` names, in the source's namespace unless it names another. */
function sourceSecretRef(
  source: KubeObject,
  ref: { name: string; namespace?: string } | undefined,
): { secretRef: SourceSecretRef } | Record<string, never> {
  if (!ref) return {};
  const namespace = source.metadata.namespace || "default";
  return {
    secretRef: { source: `${source.kind}/${namespace}/${source.metadata.name}`, name: ref.name, namespace: ref.namespace ?? namespace },
  };
}

const CERT_SECRET_HINT =
  "serve the registry or repository with a certificate the machine running ferry trusts, and drop `spec.certSecretRef`";

const helmRepositorySchema = z.object({
  spec: requiredMapping({
    url: requiredString,
    type: optionalOneOf(["default", "oci"]),
    secretRef: secretRefSchema,
    insecure: optionalBoolean,
    provider: optionalOneOf(["generic"]),
    certSecretRef: unsupported(CERT_SECRET_HINT, "ferry does not load client certificates or CAs from a Secret"),
    passCredentials: z.preprocess(
      (v) => (v === false || v === null ? undefined : v),
      unsupported(
        "drop `spec.passCredentials`: ferry sends a repository's credentials to its own host only",
        "ferry never passes credentials to the other hosts a repository's index names",
      ),
    ),
  }),
});

function helmRepositoryChart(repo: KubeObject, chart: string, version: string | undefined, context: ObjectContext): ChartSource {
  const { spec } = parseObject(helmRepositorySchema, repo, context);
  const secret = sourceSecretRef(repo, spec.secretRef);
  const oci = spec.url.startsWith("oci://");
  if (spec.type === "oci" || oci) {
    if (!oci) throw fieldError(context, ["spec", "url"], `is "${spec.url}", but \`type: oci\` needs an oci:// URL`, OCI_URL_HINT);
    return {
      type: "oci",
      url: `${withoutTrailingSlash(spec.url)}/${chart}`,
      version,
      ...secret,
      ...(spec.insecure ? { insecure: true } : {}),
    };
  }
  // Flux reads `insecure` for OCI registries only; an http(s) repository's URL says how to reach it.
  return { type: "helm-repository", url: withoutTrailingSlash(spec.url), chart, version, ...secret };
}

const OCI_URL_HINT = "write the registry as `oci://host/path` (plain HTTP registries also need `insecure: true`)";

/** A GitRepository's `spec.ref`, with source-controller's precedence: commit, name, semver, tag, branch; `master` when none. */
const gitRepositoryRefSchema = optionalMapping({
  commit: optionalString,
  name: optionalString,
  semver: optionalString,
  tag: optionalString,
  branch: optionalString,
}).transform((ref): GitRef => {
  if (ref?.commit !== undefined) return { kind: "commit", sha: ref.commit };
  if (ref?.name !== undefined) return { kind: "name", name: ref.name };
  if (ref?.semver !== undefined) return { kind: "semver", range: ref.semver };
  if (ref?.tag !== undefined) return { kind: "tag", tag: ref.tag };
  if (ref?.branch !== undefined) return { kind: "branch", branch: ref.branch };
  return GIT_REPOSITORY_DEFAULT_REF;
});

const gitRepositorySchema = z.object({
  spec: requiredMapping({ url: requiredString, ref: gitRepositoryRefSchema, secretRef: secretRefSchema }),
});

function gitRepositoryChart(repo: KubeObject, chart: string, context: ObjectContext, release: ObjectContext): ChartSource {
  const chartPath = repoRelativePath(chart);
  if (chartPath === undefined)
    throw fieldError(release, ["spec", "chart", "spec", "chart"], `"${chart}" leaves the repository`, CHART_PATH_HINT);
  const git = gitRepositorySpec(repo, context);
  // Flux ignores the chart version for charts from git: the ref decides.
  return { type: "git", url: git.url, ref: git.ref, path: chartPath, ...(git.secretRef ? { secretRef: git.secretRef } : {}) };
}

/** A GitRepository's URL, ref (source-controller's precedence and default) and credentials' Secret. */
export interface GitRepositorySpec {
  readonly url: string;
  readonly ref: GitRef;
  readonly secretRef?: SourceSecretRef;
}

/**
 * Reads a Flux GitRepository (what a HelmRelease's chart or a Kustomization's path comes from).
 * Pure; throws a ManifestError reported as `context` names it, for a missing URL or a local one.
 */
export function gitRepositorySpec(repo: KubeObject, context: ObjectContext): GitRepositorySpec {
  const { spec } = parseObject(gitRepositorySchema, repo, context);
  const local = remoteGitUrlProblem(spec.url);
  if (local !== undefined) throw fieldError(context, ["spec", "url"], local, REMOTE_GIT_URL_HINT);
  return { url: spec.url, ref: spec.ref, ...sourceSecretRef(repo, spec.secretRef) };
}

/** The media type of a Helm chart's layer in an OCI artifact (what `helm push` writes). */
export const HELM_CHART_LAYER_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const OCI_REF_HINT = "pin the chart with `spec.ref.tag: <chart version>`, `spec.ref.semver: <range>` or `spec.ref.digest: sha256:...`";

const ociRepositorySchema = z.object({
  spec: requiredMapping({
    url: requiredString,
    ref: optionalMapping({
      digest: optionalString,
      semver: optionalString,
      semverFilter: unsupported("write the range in `spec.ref.semver` alone", "helm selects chart versions by the range only"),
      tag: optionalString,
    }),
    layerSelector: optionalMapping({
      mediaType: optionalOneOf([HELM_CHART_LAYER_MEDIA_TYPE]),
      operation: optionalOneOf(["extract", "copy"]),
    }),
    secretRef: secretRefSchema,
    insecure: optionalBoolean,
    provider: optionalOneOf(["generic"]),
    certSecretRef: unsupported(CERT_SECRET_HINT, "ferry does not load client certificates or CAs from a Secret"),
    proxySecretRef: unsupported("drop `spec.proxySecretRef`", "ferry does not fetch through a proxy named in the repository"),
    verify: unsupported("drop `spec.verify`, or verify the chart before it is pushed", "ferry does not verify OCI signatures"),
    serviceAccountName: unsupported(
      "give the registry's credentials in a Secret named by `spec.secretRef`",
      "ferry does not read registry credentials from a service account's image pull secrets",
    ),
  }),
});

/** Chart versions as helm reads a tag: semver, with an optional `v` and `+` written `_` in OCI tags. */
const CHART_VERSION_TAG = /^v?\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?([+_][0-9A-Za-z._-]+)?$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

function ociRepositoryChart(repo: KubeObject, context: ObjectContext): ChartSource {
  const { spec } = parseObject(ociRepositorySchema, repo, context);
  const url = withoutTrailingSlash(spec.url);
  if (!url.startsWith("oci://")) throw fieldError(context, ["spec", "url"], `is "${spec.url}", not an oci:// URL`, OCI_URL_HINT);
  const common = { ...sourceSecretRef(repo, spec.secretRef), ...(spec.insecure ? { insecure: true } : {}) };
  // source-controller's precedence: digest, then semver, then tag; no ref means the `latest` tag.
  const ref = spec.ref;
  if (ref?.digest !== undefined) {
    if (!DIGEST.test(ref.digest))
      throw fieldError(context, ["spec", "ref", "digest"], `is "${ref.digest}", not a sha256 digest`, OCI_REF_HINT);
    return { type: "oci", url: `${url}@${ref.digest}`, ...common };
  }
  if (ref?.semver !== undefined) return { type: "oci", url, version: ref.semver, ...common };
  const tag = ref?.tag ?? "latest";
  // helm picks an OCI chart by its version: a tag that is not one (`latest`, `main`) cannot be resolved.
  if (!CHART_VERSION_TAG.test(tag)) {
    throw fieldError(
      context,
      ref?.tag !== undefined ? ["spec", "ref", "tag"] : ["spec", "ref"],
      ref?.tag !== undefined
        ? `is "${tag}", which is not a chart version; ferry renders OCI charts with helm, which selects them by version`
        : "is not set, so Flux would take the `latest` tag, which is not a chart version; ferry renders OCI charts with helm, which selects them by version",
      OCI_REF_HINT,
    );
  }
  return { type: "oci", url, version: tag.replace(/_/g, "+"), ...common };
}

const CHART_PATH_HINT = "give the chart's folder relative to the repository root, e.g. ./charts/app";

/** A path inside a repository, normalized; undefined for an absolute path or one that leaves it. */
function repoRelativePath(p: string): string | undefined {
  const normalized = path.posix.normalize(p).replace(/\/+$/, "") || ".";
  if (path.posix.isAbsolute(normalized) || normalized === ".." || normalized.startsWith("../")) return undefined;
  return normalized;
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, "");
}
