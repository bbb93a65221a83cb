import { createHash } from "node:crypto";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { ManifestError, SourceLocation } from "./manifest-error";
import { KubeObject, splitApiVersion } from "./object-id";

/** Where one layer of a HelmRelease's values comes from, in the order the release lists them. */
export type ValuesRef =
  | {
      readonly kind: "ConfigMap" | "Secret";
      readonly name: string;
      readonly namespace: string;
      readonly key: string;
      readonly optional: boolean;
      /** Flux v2: set the whole text of the key at this path (see {@link setValueAtPath}) instead of merging it as YAML. */
      readonly targetPath?: string;
    }
  | { readonly kind: "ExternalURL"; readonly url: string; readonly optional: boolean }
  | {
      readonly kind: "ChartFile";
      /** Relative to the chart's folder. */
      readonly path: string;
      readonly optional: boolean;
    };

/** Where a HelmRelease's chart comes from. */
export type ChartSource =
  | {
      readonly type: "helm-repository";
      /** The repository URL, without a trailing slash. */
      readonly url: string;
      readonly chart: string;
      /** An exact version or a semver range (`>=1.0.0 <2.0.0`, `1.x`, `*`); undefined = the newest. */
      readonly version?: string;
    }
  | {
      readonly type: "git";
      /** Undefined = the config repo itself. */
      readonly url?: string;
      /** Branch, tag, semver range, ref name or commit; undefined = the default branch. */
      readonly ref?: string;
      /** The chart's folder, relative to the repository root, normalized (no leading `./`). */
      readonly path: string;
    }
  | {
      readonly type: "oci";
      /** `oci://registry/path/chart`. */
      readonly url: string;
      /** A tag, an exact version or a semver range; undefined = the newest version. */
      readonly version?: string;
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
  /** Inline `spec.values`, merged last. */
  readonly values: Record<string, unknown>;
  readonly valuesFrom: readonly ValuesRef[];
  readonly skipCRDs: boolean;
  readonly suspend: boolean;
  readonly dependsOn: readonly { readonly name: string; readonly namespace: string }[];
  readonly location: SourceLocation;
}

const FLUX_V1_API_VERSIONS = new Set(["flux.weave.works/v1beta1", "helm.fluxcd.io/v1"]);
const FLUX_V2_API_VERSIONS = new Set(["helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta1", "helm.toolkit.fluxcd.io/v2beta2"]);
const FLUX_SOURCE_GROUP = "source.toolkit.fluxcd.io";
const FLUX_SOURCE_KINDS = new Set(["HelmRepository", "GitRepository", "OCIRepository"]);
const DEFAULT_VALUES_KEY = "values.yaml";
/** helm-operator's default when a git chart names no ref. */
const FLUX_V1_DEFAULT_GIT_REF = "master";
/** source-controller's default when a GitRepository has no `spec.ref`. */
const GIT_REPOSITORY_DEFAULT_BRANCH = "master";
const HELM_MAX_RELEASE_NAME = 53;
/** Helm's `--set` parser refuses list indexes above this. */
const HELM_MAX_LIST_INDEX = 65536;

/** Whether an object is a HelmRelease of an API version ferry renders (Flux v1 helm-operator or Flux v2). */
export function isHelmRelease(obj: KubeObject): boolean {
  return obj.kind === "HelmRelease" && (FLUX_V1_API_VERSIONS.has(obj.apiVersion) || FLUX_V2_API_VERSIONS.has(obj.apiVersion));
}

/** Whether an object is a Flux source (HelmRepository, GitRepository, OCIRepository) that HelmReleases can point at. */
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
 * the Flux source objects of the repository. Pure; throws a {@link ManifestError} naming the
 * release and how to fix it for anything invalid, unresolvable or unsupported.
 */
export function parseHelmRelease(obj: KubeObject, location: SourceLocation, sources: readonly KubeObject[]): HelmReleaseSpec {
  const name = obj.metadata.name;
  const namespace = obj.metadata.namespace || "default";
  const r = new Reader(`HelmRelease/${namespace}/${name}`, location);
  if (!isHelmRelease(obj)) {
    r.fail(
      `apiVersion ${obj.apiVersion} kind ${obj.kind} is not a HelmRelease ferry can render`,
      `use one of ${[...FLUX_V2_API_VERSIONS, ...FLUX_V1_API_VERSIONS].join(", ")}`,
    );
  }
  const spec = r.record(obj.spec, "spec") ?? r.fail("`spec` is missing", "add a spec with at least the chart to install");
  const common = { apiVersion: obj.apiVersion, name, namespace, location, values: inlineValues(r, spec) };
  return FLUX_V1_API_VERSIONS.has(obj.apiVersion) ? parseFluxV1(r, spec, common) : parseFluxV2(r, spec, common, sources);
}

type Common = Pick<HelmReleaseSpec, "apiVersion" | "name" | "namespace" | "location" | "values">;

function parseFluxV1(r: Reader, spec: Record<string, unknown>, common: Common): HelmReleaseSpec {
  const { name, namespace } = common;
  const chart = r.record(spec.chart, "spec.chart") ?? r.fail("`spec.chart` is missing", V1_CHART_HINT);
  const repository = r.string(chart.repository, "spec.chart.repository");
  const git = r.string(chart.git, "spec.chart.git");
  let source: ChartSource;
  if (repository !== undefined && git !== undefined) {
    r.fail("`spec.chart` sets both `repository` and `git`", V1_CHART_HINT);
  } else if (repository !== undefined) {
    source = {
      type: "helm-repository",
      url: withoutTrailingSlash(repository),
      chart:
        r.string(chart.name, "spec.chart.name") ?? r.fail("`spec.chart.name` is missing", "name the chart to install from the repository"),
      version: r.string(chart.version, "spec.chart.version"),
    };
  } else if (git !== undefined) {
    const chartPath =
      r.string(chart.path, "spec.chart.path") ?? r.fail("`spec.chart.path` is missing", "give the chart's folder in the git repository");
    source = {
      type: "git",
      url: git,
      ref: r.string(chart.ref, "spec.chart.ref") ?? FLUX_V1_DEFAULT_GIT_REF,
      path: repoRelativePath(r, chartPath, "spec.chart.path"),
    };
  } else {
    r.fail("`spec.chart` has neither `repository` nor `git`", V1_CHART_HINT);
  }

  const targetNamespace = r.string(spec.targetNamespace, "spec.targetNamespace") ?? namespace;
  // helm-operator's GetReleaseName: the HelmRelease namespace is prefixed when it differs from the target.
  const releaseName =
    r.string(spec.releaseName, "spec.releaseName") ??
    (targetNamespace !== namespace ? `${namespace}-${targetNamespace}-${name}` : `${targetNamespace}-${name}`);
  if (releaseName.length > HELM_MAX_RELEASE_NAME) {
    // helm-operator did not shorten names; Helm refuses them.
    r.fail(
      `release name "${releaseName}" has ${releaseName.length} characters; Helm allows at most ${HELM_MAX_RELEASE_NAME}`,
      "set a shorter `spec.releaseName`",
    );
  }

  const valuesFrom: ValuesRef[] = [];
  // helm-operator put the deprecated valueFileSecrets before valuesFrom.
  r.list(spec.valueFileSecrets, "spec.valueFileSecrets").forEach((item, i) => {
    const field = `spec.valueFileSecrets[${i}]`;
    const ref = r.record(item, field) ?? r.fail(`\`${field}\` must be a mapping with a name`);
    const secret = r.string(ref.name, `${field}.name`) ?? r.fail(`\`${field}.name\` is missing`);
    valuesFrom.push({ kind: "Secret", name: secret, namespace, key: DEFAULT_VALUES_KEY, optional: false });
  });
  r.list(spec.valuesFrom, "spec.valuesFrom").forEach((item, i) =>
    valuesFrom.push(v1ValuesRef(r, item, `spec.valuesFrom[${i}]`, namespace, source)),
  );

  return {
    ...common,
    releaseName,
    targetNamespace,
    chart: source,
    valuesFrom,
    skipCRDs: r.boolean(spec.skipCRDs, "spec.skipCRDs") ?? false,
    suspend: false,
    dependsOn: [],
  };
}

const V1_CHART_HINT =
  "give either `repository`, `name` and `version` (a chart from a Helm repository) or `git`, `ref` and `path` (a chart in git)";

function v1ValuesRef(r: Reader, item: unknown, field: string, namespace: string, chart: ChartSource): ValuesRef {
  const entry = r.record(item, field) ?? r.fail(`\`${field}\` must be a mapping`, V1_VALUES_FROM_HINT);
  const keys = ["configMapKeyRef", "secretKeyRef", "externalSourceRef", "chartFileRef"].filter(
    (k) => entry[k] !== undefined && entry[k] !== null,
  );
  if (keys.length !== 1) {
    r.fail(`\`${field}\` must set exactly one of configMapKeyRef, secretKeyRef, externalSourceRef, chartFileRef`, V1_VALUES_FROM_HINT);
  }
  const key = keys[0]!;
  const ref = r.record(entry[key], `${field}.${key}`) ?? r.fail(`\`${field}.${key}\` must be a mapping`, V1_VALUES_FROM_HINT);
  const optional = r.boolean(ref.optional, `${field}.${key}.optional`) ?? false;
  switch (key) {
    case "configMapKeyRef":
    case "secretKeyRef":
      return {
        kind: key === "configMapKeyRef" ? "ConfigMap" : "Secret",
        name: r.string(ref.name, `${field}.${key}.name`) ?? r.fail(`\`${field}.${key}.name\` is missing`),
        namespace: r.string(ref.namespace, `${field}.${key}.namespace`) ?? namespace,
        key: r.string(ref.key, `${field}.${key}.key`) ?? DEFAULT_VALUES_KEY,
        optional,
      };
    case "externalSourceRef":
      return {
        kind: "ExternalURL",
        url: r.string(ref.url, `${field}.externalSourceRef.url`) ?? r.fail(`\`${field}.externalSourceRef.url\` is missing`),
        optional,
      };
    default:
      if (chart.type !== "git") {
        r.fail(
          `\`${field}.chartFileRef\` reads a file of the chart's git folder, but this release's chart comes from a Helm repository`,
          "move those values into `spec.values`, or into a ConfigMap referenced with `configMapKeyRef`",
        );
      }
      return {
        kind: "ChartFile",
        path: r.string(ref.path, `${field}.chartFileRef.path`) ?? r.fail(`\`${field}.chartFileRef.path\` is missing`),
        optional,
      };
  }
}

const V1_VALUES_FROM_HINT =
  "each valuesFrom entry is one of `configMapKeyRef: {name, namespace?, key?, optional?}`, `secretKeyRef: {...}`, `externalSourceRef: {url, optional?}`, `chartFileRef: {path, optional?}`";

function parseFluxV2(r: Reader, spec: Record<string, unknown>, common: Common, sources: readonly KubeObject[]): HelmReleaseSpec {
  const { name, namespace } = common;
  refuseUnsupported(r, spec, [
    ["postRenderers", "ferry renders charts without post-renderers", "apply those changes in the chart values, or drop spec.postRenderers"],
    ["kubeConfig", "ferry applies to its own cluster only", "remove spec.kubeConfig and run a ferry stack for the other cluster"],
  ]);
  const chartTemplate = r.record(spec.chart, "spec.chart");
  const chartRef = r.record(spec.chartRef, "spec.chartRef");
  let chart: ChartSource;
  if (chartTemplate && chartRef) r.fail("sets both `spec.chart` and `spec.chartRef`", "keep one of them");
  else if (chartRef) chart = v2ChartFromRef(r, chartRef, namespace, sources);
  else if (chartTemplate) chart = v2ChartFromTemplate(r, chartTemplate, namespace, sources);
  else {
    r.fail(
      "has neither `spec.chart` nor `spec.chartRef`",
      "add `spec.chart.spec: {chart, version, sourceRef: {kind: HelmRepository, name}}` or `spec.chartRef: {kind: OCIRepository, name}`",
    );
  }

  const specTargetNamespace = r.string(spec.targetNamespace, "spec.targetNamespace");
  // helm-controller's GetReleaseName, then release.ShortenName on whatever it returns.
  const releaseName = shortenReleaseName(
    r.string(spec.releaseName, "spec.releaseName") ?? (specTargetNamespace !== undefined ? `${specTargetNamespace}-${name}` : name),
  );

  const valuesFrom = r.list(spec.valuesFrom, "spec.valuesFrom").map((item, i): ValuesRef => {
    const field = `spec.valuesFrom[${i}]`;
    const ref = r.record(item, field) ?? r.fail(`\`${field}\` must be a mapping`, V2_VALUES_FROM_HINT);
    const kind = r.string(ref.kind, `${field}.kind`);
    if (kind !== "ConfigMap" && kind !== "Secret") {
      r.fail(`\`${field}.kind\` is ${kind === undefined ? "missing" : `"${kind}"`}; it must be ConfigMap or Secret`, V2_VALUES_FROM_HINT);
    }
    const targetPath = r.string(ref.targetPath, `${field}.targetPath`);
    return {
      kind,
      name: r.string(ref.name, `${field}.name`) ?? r.fail(`\`${field}.name\` is missing`, V2_VALUES_FROM_HINT),
      namespace,
      key: r.string(ref.valuesKey, `${field}.valuesKey`) ?? DEFAULT_VALUES_KEY,
      optional: r.boolean(ref.optional, `${field}.optional`) ?? false,
      ...(targetPath !== undefined ? { targetPath } : {}),
    };
  });

  const install = r.record(spec.install, "spec.install");
  const crds = r.string(install?.crds, "spec.install.crds");
  if (crds !== undefined && !["Skip", "Create", "CreateReplace"].includes(crds)) {
    r.fail(`\`spec.install.crds\` is "${crds}"`, "use Skip, Create or CreateReplace");
  }
  const skipCRDs =
    (r.boolean(install?.skipCRDs, "spec.install.skipCRDs") ?? false) ||
    crds === "Skip" ||
    (r.boolean(spec.skipCRDs, "spec.skipCRDs") ?? false);

  return {
    ...common,
    releaseName,
    targetNamespace: specTargetNamespace ?? namespace,
    chart,
    valuesFrom,
    skipCRDs,
    suspend: r.boolean(spec.suspend, "spec.suspend") ?? false,
    dependsOn: r.list(spec.dependsOn, "spec.dependsOn").map((item, i) => {
      const field = `spec.dependsOn[${i}]`;
      const dep = r.record(item, field) ?? r.fail(`\`${field}\` must be a mapping with a name`);
      return {
        name: r.string(dep.name, `${field}.name`) ?? r.fail(`\`${field}.name\` is missing`, "name the HelmRelease this one waits for"),
        namespace: r.string(dep.namespace, `${field}.namespace`) ?? namespace,
      };
    }),
  };
}

const V2_VALUES_FROM_HINT = "each valuesFrom entry is `{kind: ConfigMap|Secret, name, valuesKey?, targetPath?, optional?}`";

function v2ChartFromTemplate(r: Reader, chart: Record<string, unknown>, namespace: string, sources: readonly KubeObject[]): ChartSource {
  const spec =
    r.record(chart.spec, "spec.chart.spec") ?? r.fail("`spec.chart.spec` is missing", "add `spec.chart.spec: {chart, version, sourceRef}`");
  refuseUnsupported(r, spec, [
    [
      "valuesFiles",
      "ferry does not replace a chart's values.yaml",
      "move those values into `spec.values` or a ConfigMap in `spec.valuesFrom`",
    ],
    [
      "valuesFile",
      "ferry does not replace a chart's values.yaml",
      "move those values into `spec.values` or a ConfigMap in `spec.valuesFrom`",
    ],
  ]);
  const chartName =
    r.string(spec.chart, "spec.chart.spec.chart") ??
    r.fail("`spec.chart.spec.chart` is missing", "name the chart (or its path in a GitRepository)");
  const version = r.string(spec.version, "spec.chart.spec.version");
  const sourceRef =
    r.record(spec.sourceRef, "spec.chart.spec.sourceRef") ?? r.fail("`spec.chart.spec.sourceRef` is missing", SOURCE_REF_HINT);
  const ref = sourceRefOf(r, sourceRef, "spec.chart.spec.sourceRef", namespace);
  switch (ref.kind) {
    case "HelmRepository": {
      const repo = findSource(r, sources, ref, "spec.chart.spec.sourceRef");
      const url =
        r.sourceString(repo, "url") ?? r.fail(`HelmRepository/${ref.namespace}/${ref.name} has no \`spec.url\``, "give the repository URL");
      if (r.sourceString(repo, "type") === "oci" || url.startsWith("oci://")) {
        return { type: "oci", url: `${withoutTrailingSlash(url)}/${chartName}`, version };
      }
      return { type: "helm-repository", url: withoutTrailingSlash(url), chart: chartName, version };
    }
    case "GitRepository": {
      const repo = findSource(r, sources, ref, "spec.chart.spec.sourceRef");
      const url =
        r.sourceString(repo, "url") ?? r.fail(`GitRepository/${ref.namespace}/${ref.name} has no \`spec.url\``, "give the git URL");
      // Flux ignores the chart version for charts from git: the ref decides.
      return { type: "git", url, ref: gitRepositoryRef(r, repo, ref), path: repoRelativePath(r, chartName, "spec.chart.spec.chart") };
    }
    default:
      r.fail(`\`spec.chart.spec.sourceRef.kind\` ${ref.kind} is not supported by ferry`, SOURCE_REF_HINT);
  }
}

const SOURCE_REF_HINT =
  "point `sourceRef` at a HelmRepository or a GitRepository declared in the repository: `{kind: HelmRepository, name, namespace?}`";

function v2ChartFromRef(r: Reader, chartRef: Record<string, unknown>, namespace: string, sources: readonly KubeObject[]): ChartSource {
  const ref = sourceRefOf(r, chartRef, "spec.chartRef", namespace);
  if (ref.kind !== "OCIRepository") {
    r.fail(
      `\`spec.chartRef.kind\` ${ref.kind} is not supported by ferry`,
      "point `spec.chartRef` at an OCIRepository, or use `spec.chart.spec.sourceRef`",
    );
  }
  const repo = findSource(r, sources, ref, "spec.chartRef");
  const what = `OCIRepository/${ref.namespace}/${ref.name}`;
  const url = r.sourceString(repo, "url") ?? r.fail(`${what} has no \`spec.url\``, "give the chart's oci:// URL");
  const repoSpec = r.record(repo.spec, `${what} spec`);
  const repoRef = r.record(repoSpec?.ref, `${what} spec.ref`);
  if (r.string(repoRef?.digest, `${what} spec.ref.digest`) !== undefined) {
    r.fail(`${what} pins a digest, which ferry cannot pass to helm`, "pin the chart with `spec.ref.tag` or `spec.ref.semver` instead");
  }
  // source-controller: semver takes precedence over tag; no ref means the `latest` tag.
  const version = r.string(repoRef?.semver, `${what} spec.ref.semver`) ?? r.string(repoRef?.tag, `${what} spec.ref.tag`) ?? "latest";
  return { type: "oci", url: withoutTrailingSlash(url), version };
}

interface SourceRef {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
}

function sourceRefOf(r: Reader, ref: Record<string, unknown>, field: string, namespace: string): SourceRef {
  return {
    kind: r.string(ref.kind, `${field}.kind`) ?? r.fail(`\`${field}.kind\` is missing`, SOURCE_REF_HINT),
    name: r.string(ref.name, `${field}.name`) ?? r.fail(`\`${field}.name\` is missing`, SOURCE_REF_HINT),
    namespace: r.string(ref.namespace, `${field}.namespace`) ?? namespace,
  };
}

function findSource(r: Reader, sources: readonly KubeObject[], ref: SourceRef, field: string): KubeObject {
  const found = sources.find(
    (s) => isFluxSource(s) && s.kind === ref.kind && s.metadata.name === ref.name && (s.metadata.namespace || "default") === ref.namespace,
  );
  return (
    found ??
    r.fail(
      `\`${field}\` names ${ref.kind}/${ref.namespace}/${ref.name}, which is not in the repository`,
      `add the ${ref.kind} "${ref.name}" (namespace ${ref.namespace}) to the repository: ferry reads Flux sources from Git, not from the cluster`,
    )
  );
}

/** source-controller's precedence: commit, then name, then semver, then tag, then branch; `master` when none is set. */
function gitRepositoryRef(r: Reader, repo: KubeObject, ref: SourceRef): string {
  const what = `GitRepository/${ref.namespace}/${ref.name}`;
  const spec = r.record(repo.spec, `${what} spec`);
  const gitRef = r.record(spec?.ref, `${what} spec.ref`);
  return (
    (["commit", "name", "semver", "tag", "branch"] as const)
      .map((k) => r.string(gitRef?.[k], `${what} spec.ref.${k}`))
      .find((v) => v !== undefined) ?? GIT_REPOSITORY_DEFAULT_BRANCH
  );
}

function refuseUnsupported(r: Reader, spec: Record<string, unknown>, fields: readonly (readonly [string, string, string])[]): void {
  for (const [field, why, hint] of fields) {
    const value = spec[field];
    const present = Array.isArray(value) ? value.length > 0 : value !== undefined && value !== null && value !== "";
    if (present) r.fail(`\`${field}\` is not supported: ${why}`, hint);
  }
}

function inlineValues(r: Reader, spec: Record<string, unknown>): Record<string, unknown> {
  if (spec.values === undefined || spec.values === null) return {};
  const values = r.record(spec.values, "spec.values");
  return values ? (cloneValue(values) as Record<string, unknown>) : {};
}

/** A path inside a repository or chart, normalized; refuses absolute paths and paths leaving it. */
function repoRelativePath(r: Reader, p: string, field: string): string {
  const normalized = path.posix.normalize(p).replace(/\/+$/, "") || ".";
  if (path.posix.isAbsolute(normalized) || normalized === ".." || normalized.startsWith("../")) {
    r.fail(`\`${field}\` "${p}" leaves the repository`, "give the chart's folder relative to the repository root, e.g. ./charts/app");
  }
  return normalized;
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** Reads typed fields of one object, failing with a {@link ManifestError} that leads with the object's name. */
class Reader {
  constructor(
    readonly what: string,
    readonly location: SourceLocation,
  ) {}

  fail(problem: string, hint?: string): never {
    throw new ManifestError(this.location, `${this.what}: ${problem}`, hint);
  }

  record(value: unknown, field: string): Record<string, unknown> | undefined {
    if (value === undefined || value === null) return undefined;
    if (!isPlainObject(value)) this.fail(`\`${field}\` must be a mapping, not ${describe(value)}`);
    return value;
  }

  /** A string field; an empty string counts as unset (Go's `omitempty`). */
  string(value: unknown, field: string): string | undefined {
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value !== "string") {
      this.fail(
        `\`${field}\` must be a string, not ${describe(value)}`,
        typeof value === "number" ? `quote it, e.g. "${String(value)}" (YAML reads 1.10 as the number 1.1)` : undefined,
      );
    }
    return value;
  }

  boolean(value: unknown, field: string): boolean | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "boolean") this.fail(`\`${field}\` must be true or false, not ${describe(value)}`);
    return value;
  }

  list(value: unknown, field: string): readonly unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(`\`${field}\` must be a list, not ${describe(value)}`);
    return value;
  }

  /** `spec.<field>` of a source object, as a string. */
  sourceString(source: KubeObject, field: string): string | undefined {
    const what = `${source.kind}/${source.metadata.namespace || "default"}/${source.metadata.name}`;
    return this.string(this.record(source.spec, `${what} spec`)?.[field], `${what} spec.${field}`);
  }
}

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
    defineKey(out, key, isPlainObject(value) && isPlainObject(current) ? mergeTwo(current, value) : cloneValue(value));
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
    const obj: Record<string, unknown> = isPlainObject(node) ? { ...node } : {};
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
export function parseValuesText(text: string, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = yaml.load(text, { schema: VALUES_SCHEMA });
  } catch (err) {
    const detail = err instanceof yaml.YAMLException ? `${err.reason} at line ${err.mark.line + 1}` : String(err);
    throw new Error(`${where}: invalid YAML: ${detail}`, { cause: err });
  }
  if (value === undefined || value === null) return {};
  // The text may be a Secret's: say what it is, never what it contains.
  const found = Array.isArray(value) ? "a list" : typeof value === "string" ? "a plain string" : typeof value;
  if (!isPlainObject(value)) throw new Error(`${where}: values must be a YAML mapping (key: value lines), not ${found}`);
  return value;
}

/**
 * Helm reads values with go-yaml into plain data: timestamps stay strings and `<<` merge keys work.
 * js-yaml's default schema would turn `2024-01-01` into a Date, so values use the core schema plus
 * merge keys (js-yaml exports its types at runtime; @types/js-yaml does not declare them).
 */
const VALUES_SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [(yaml as unknown as { types: { merge: yaml.Type } }).types.merge] });

/** A mapping as YAML gives it; a Date (a YAML timestamp) or any other class instance is a scalar. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function cloneValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneValue);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(v)) defineKey(out, key, cloneValue(value));
    return out;
  }
  return v;
}

/** Assignment that stays an own property even for a key like `__proto__` coming from YAML. */
function defineKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  if (v instanceof Date) return "a timestamp";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string "${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return `${typeof v} ${String(v)}`;
}
