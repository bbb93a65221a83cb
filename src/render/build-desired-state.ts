import { applyIgnoreRules, findDuplicates } from "../desired-state/object-rules";
import { orderByDependsOn } from "../desired-state/dependency-order";
import { DesiredState, RenderedUnit, SourceObject, unitKey } from "../desired-state/desired-state";
import { GroupKind, identifyUnits, kindsToDiscover } from "../desired-state/identify";
import { isFluxKustomization, parseFluxKustomization, FluxKustomizationSpec } from "../desired-state/flux-kustomization";
import { GitRef } from "../desired-state/git-ref";
import { HelmReleaseSpec, isFluxSource, isHelmRelease, parseHelmRelease, ValuesRef } from "../desired-state/helm-release";
import {
  hasKustomization,
  LoadedFolder,
  readCheckoutFile,
  readManifestTexts,
  resolveInCheckout,
} from "../desired-state/load-desired-state";
import { DesiredStateError, GuardError, ManifestError, SourceLocation } from "../desired-state/manifest-error";
import { DEFAULT_NAMESPACE, identify, KubeObject, Scope } from "../desired-state/object-id";
import { parseManifests } from "../desired-state/parse-manifests";
import { redactCredentials } from "../desired-state/outbound-policy";
import { SourcePolicy, sourcePolicy } from "../desired-state/source-policy";
import { substituteVariables } from "./envsubst";
import { mergeValues, parseValuesText, setValueAtPath } from "./helm-values";
import { OutboundRefusedError } from "./outbound";
import { SourceAuth, sourceCredentials } from "./source-credentials";

/** A `helm template` to run. */
export interface HelmTemplateRequest {
  /** The unit that renders the chart (`HelmRelease/<ns>/<name>`): what a refusal and the fetch log name. */
  readonly unit: string;
  readonly releaseName: string;
  readonly namespace: string;
  /** A chart folder, a chart name in `repo`, or an `oci://` reference. */
  readonly chart: string;
  readonly repo?: string;
  /** Exact version or semver range. */
  readonly version?: string;
  /** Merged values. */
  readonly values: Record<string, unknown>;
  readonly includeCRDs: boolean;
  /** Credentials of the chart's HelmRepository or OCI source (its own `secretRef`), passed to helm as flags, never in a URL. */
  readonly auth?: { readonly username: string; readonly password: string };
}

/** A checkout of another git repository that a unit names. */
export interface GitCheckoutRequest {
  /** The unit that names the repository (`HelmRelease/<ns>/<name>`). */
  readonly unit: string;
  /** Credentials from the GitRepository's own `secretRef`; without them only the config repo's own URL gets credentials. */
  readonly auth?: SourceAuth;
}

/** The I/O the render stage needs, at the edge (real implementations in render-tools.ts, fakes in tests). */
export interface RenderTools {
  /** Renders a chart: the YAML text of its objects. */
  helmTemplate(request: HelmTemplateRequest): Promise<string>;
  /** Builds a Kustomize folder: the YAML text of its objects. */
  kustomizeBuild(absDir: string): Promise<string>;
  /** A live ConfigMap or Secret (valuesFrom that Git does not declare); undefined when absent. */
  readLive(kind: "ConfigMap" | "Secret", namespace: string, name: string): Promise<KubeObject | undefined>;
  /** The text at a URL (Flux v1 externalSourceRef) that `unit` names. */
  fetchText(url: string, unit: string): Promise<string>;
  /**
   * The scope of kinds the live cluster serves (discovery), for kinds that are neither Kubernetes'
   * own nor declared by a CRD of the desired state; kinds it does not serve are left out.
   */
  discoverScopes(kinds: readonly { apiVersion: string; kind: string }[]): Promise<Map<GroupKind, Scope>>;
  /** A checkout of another git repository at a ref (a chart from another repo); returns its folder. */
  checkoutGit(url: string, ref: GitRef, request: GitCheckoutRequest): Promise<string>;
}

/** Options of {@link buildDesiredState}. */
export interface BuildOptions {
  /** Accept a desired state with no objects (prunes everything). Default false. */
  readonly allowEmpty?: boolean;
  /**
   * The namespace of namespaced objects that name none (outside charts and Flux targetNamespaces):
   * the kubeconfig context's, as kubectl does. Default `default`.
   */
  readonly defaultNamespace?: string;
  /** What the repo's content may reach. Default: {@link sourcePolicy}() (the walls up). */
  readonly policy?: SourcePolicy;
}

/**
 * Renders a loaded cluster folder into the desired state: plain manifests as they are, HelmReleases
 * through `helm template`, Kustomize folders and Flux Kustomizations through Kustomize. Every
 * problem of every unit is collected; any problem aborts with a {@link DesiredStateError} before
 * anything is applied.
 */
export async function buildDesiredState(loaded: LoadedFolder, tools: RenderTools, options: BuildOptions = {}): Promise<DesiredState> {
  const errors: ManifestError[] = [];
  const units: RenderedUnit[] = [];
  const plain: SourceObject[] = [];
  const byDefault = { namespace: options.defaultNamespace || DEFAULT_NAMESPACE, override: false };
  const helmReleases: { obj: KubeObject; location: SourceLocation }[] = [];
  const kustomizations: { obj: KubeObject; location: SourceLocation }[] = [];
  const sources: KubeObject[] = [];

  // 1. Sort what Git declares: objects to apply, and Flux objects that ferry interprets.
  for (const file of loaded.files) {
    const objects: SourceObject[] = [];
    for (const o of file.objects) {
      if (isHelmRelease(o.object)) helmReleases.push({ obj: o.object, location: o.location });
      else if (isFluxKustomization(o.object)) kustomizations.push({ obj: o.object, location: o.location });
      else if (isFluxSource(o.object)) sources.push(o.object);
      else objects.push(o);
    }
    const kept = applyIgnoreRules(objects);
    plain.push(...kept);
    if (kept.length > 0)
      units.push({
        kind: "ManifestFile",
        name: file.path,
        location: { file: file.path, line: 1 },
        objects: kept,
        dependsOn: [],
        namespace: byDefault,
      });
  }

  // 2. Kustomize folders inside the cluster folder.
  for (const dir of loaded.kustomizeDirs) {
    const location = { file: `${dir}/kustomization.yaml`, line: 1 };
    try {
      const text = await tools.kustomizeBuild(resolveInCheckout(loaded.checkout, dir, "folder"));
      const objects = parseRendered(text, location, errors, `Kustomize folder ${dir}`);
      units.push({ kind: "Kustomize", name: dir, location, objects: applyIgnoreRules(objects), dependsOn: [], namespace: byDefault });
    } catch (err) {
      errors.push(
        new ManifestError(
          location,
          `kustomize build ${dir} failed: ${message(err)}`,
          "run `kubectl kustomize` on that folder to see the problem",
        ),
      );
    }
  }

  // 3. Flux Kustomizations, in dependsOn order.
  const kSpecs: FluxKustomizationSpec[] = [];
  for (const k of kustomizations) {
    try {
      kSpecs.push(parseFluxKustomization(k.obj, k.location));
    } catch (err) {
      errors.push(asManifestError(err, k.location));
    }
  }
  for (const spec of ordered(kSpecs, "Kustomization", errors)) {
    const name = `Kustomization/${spec.namespace}/${spec.name}`;
    try {
      if (spec.substituteFrom.length > 0) {
        throw new Error(`${name}: postBuild.substituteFrom is not supported by ferry yet; put the variables in postBuild.substitute`);
      }
      const text = hasKustomization(loaded.checkout, spec.path)
        ? await tools.kustomizeBuild(resolveInCheckout(loaded.checkout, spec.path, "folder"))
        : readManifestTexts(loaded.checkout, spec.path)
            .map((f) => f.text)
            .join("\n---\n");
      const substituted = Object.keys(spec.substitute).length > 0 ? substituteVariables(text, spec.substitute) : text;
      const objects = applyIgnoreRules(parseRendered(substituted, spec.location, errors, name)).map((o) => ({
        ...o,
        prune: o.prune && spec.prune,
        suspended: spec.suspend,
      }));
      units.push({
        kind: "Kustomization",
        name: `${spec.namespace}/${spec.name}`,
        location: spec.location,
        objects,
        dependsOn: spec.dependsOn.map((d) => unitKey({ kind: "Kustomization", name: `${d.namespace}/${d.name}` })),
        namespace: spec.targetNamespace ? { namespace: spec.targetNamespace, override: true } : byDefault,
      });
    } catch (err) {
      errors.push(asManifestError(err, spec.location, name));
    }
  }

  // 4. HelmReleases, in dependsOn order, rendered with the values of Git (or the live cluster).
  const hSpecs: HelmReleaseSpec[] = [];
  for (const h of helmReleases) {
    try {
      hSpecs.push(parseHelmRelease(h.obj, h.location, sources));
    } catch (err) {
      errors.push(asManifestError(err, h.location));
    }
  }
  for (const spec of ordered(hSpecs, "HelmRelease", errors)) {
    const name = `HelmRelease/${spec.namespace}/${spec.name}`;
    try {
      const git = { objects: plain, namespace: byDefault.namespace };
      const objects = await renderHelmRelease(spec, loaded, git, tools, errors, options.policy ?? sourcePolicy());
      units.push({
        kind: "HelmRelease",
        name: `${spec.namespace}/${spec.name}`,
        location: spec.location,
        objects: applyIgnoreRules(objects).map((o) => ({ ...o, suspended: spec.suspend })),
        dependsOn: spec.dependsOn.map((d) => unitKey({ kind: "HelmRelease", name: `${d.namespace}/${d.name}` })),
        // helm install puts namespaced objects that name no namespace in the release namespace.
        namespace: { namespace: spec.targetNamespace, override: false },
      });
    } catch (err) {
      errors.push(asManifestError(err, spec.location, name));
    }
  }

  // 5. Identities, resolved once for the whole desired state (the live cluster tells the scope of
  //    kinds no CRD here declares); then the guards: one definition per object, no accidental empty state.
  if (errors.length > 0) throw new DesiredStateError(errors);
  const toDiscover = kindsToDiscover(units);
  const identified = identifyUnits(units, toDiscover.length > 0 ? await tools.discoverScopes(toDiscover) : new Map());
  errors.push(...findDuplicates(identified));
  if (errors.length > 0) throw new DesiredStateError(errors);
  if (units.every((u) => u.objects.length === 0) && !options.allowEmpty) {
    throw new GuardError(
      `cluster folder "${loaded.path}" contains no Kubernetes objects; refusing to sync, because that would delete every object ferry manages.\n` +
        `  fix: check the path, or pass --allow-empty if removing everything is really intended`,
    );
  }
  return { path: loaded.path, units: identified };
}

/** The plain manifests of the folder (where valuesFrom looks first), and the namespace of those that name none. */
interface PlainObjects {
  readonly objects: readonly SourceObject[];
  readonly namespace: string;
}

async function renderHelmRelease(
  spec: HelmReleaseSpec,
  loaded: LoadedFolder,
  git: PlainObjects,
  tools: RenderTools,
  errors: ManifestError[],
  policy: SourcePolicy,
): Promise<SourceObject[]> {
  const name = `HelmRelease/${spec.namespace}/${spec.name}`;
  // The chart source's credentials: only what its own secretRef names (Git first, else the cluster).
  const auth = await sourceCredentials(
    spec.chart.secretRef,
    name,
    {
      declared: (namespace, secret) => declaredObject(git, "Secret", namespace, secret),
      live: (namespace, secret) => tools.readLive("Secret", namespace, secret),
    },
    policy,
  );
  const basicAuth = auth?.username !== undefined ? { username: auth.username, password: auth.password ?? "" } : undefined;
  // Where the chart is.
  let chart = "";
  let repo: string | undefined;
  let version: string | undefined;
  let chartDir: string | undefined;
  switch (spec.chart.type) {
    case "helm-repository":
      chart = spec.chart.chart;
      repo = spec.chart.url;
      version = spec.chart.version;
      break;
    case "oci":
      chart = spec.chart.url;
      version = spec.chart.version;
      break;
    case "git": {
      const root = spec.chart.url ? await tools.checkoutGit(spec.chart.url, spec.chart.ref, { unit: name, auth }) : loaded.checkout;
      chartDir = resolveInCheckout(root, spec.chart.path, "folder");
      chart = chartDir;
      break;
    }
  }

  // Values: valuesFrom in order, inline values last.
  const layers: Record<string, unknown>[] = [];
  let merged: Record<string, unknown> = {};
  for (const ref of spec.valuesFrom) {
    const text = await valuesText(ref, spec, git, tools, chartDir);
    if (text === undefined) continue; // optional and absent
    if (ref.kind !== "ExternalURL" && ref.kind !== "ChartFile" && ref.targetPath) {
      merged = setValueAtPath(mergeValues([merged, ...layers]), ref.targetPath, text);
      layers.length = 0;
    } else {
      layers.push(parseValuesText(text, `${name}: values from ${describeRef(ref)}`));
    }
  }
  const values = mergeValues([merged, ...layers, spec.values]);

  const text = await tools.helmTemplate({
    unit: name,
    releaseName: spec.releaseName,
    namespace: spec.targetNamespace,
    chart,
    repo,
    version,
    values,
    includeCRDs: !spec.skipCRDs,
    ...(basicAuth && spec.chart.type !== "git" ? { auth: basicAuth } : {}),
  });
  return parseRendered(text, spec.location, errors, name);
}

async function valuesText(
  ref: ValuesRef,
  spec: HelmReleaseSpec,
  git: PlainObjects,
  tools: RenderTools,
  chartDir: string | undefined,
): Promise<string | undefined> {
  const name = `HelmRelease/${spec.namespace}/${spec.name}`;
  switch (ref.kind) {
    case "ExternalURL":
      try {
        return await tools.fetchText(ref.url, name);
      } catch (err) {
        // A refusal by the stack's policy is never skipped as an optional source that was unreachable.
        if (err instanceof OutboundRefusedError) throw err;
        if (ref.optional) return undefined;
        throw new Error(`${name}: cannot fetch values from ${redactCredentials(ref.url)}: ${message(err)}`, { cause: err });
      }
    case "ChartFile": {
      if (!chartDir) throw new Error(`${name}: chartFileRef needs a chart from git`);
      try {
        return readCheckoutFile(chartDir, ref.path);
      } catch (err) {
        if (ref.optional) return undefined;
        throw new Error(`${name}: chart file ${ref.path}: ${message(err)}`, { cause: err });
      }
    }
    case "ConfigMap":
    case "Secret": {
      // Git first: a ConfigMap or Secret declared in the folder is the one that will exist.
      const declared = declaredObject(git, ref.kind, ref.namespace, ref.name);
      const source = declared ?? (await tools.readLive(ref.kind, ref.namespace, ref.name));
      const value = source ? dataValue(source, ref.key) : undefined;
      if (value !== undefined) return value;
      if (ref.optional) return undefined;
      throw new Error(
        source
          ? `${name}: ${ref.kind}/${ref.namespace}/${ref.name} has no key "${ref.key}"; add it, or mark the valuesFrom entry optional`
          : `${name}: ${ref.kind}/${ref.namespace}/${ref.name} (valuesFrom) is neither in the repository nor in the cluster; add it, or mark the entry optional`,
      );
    }
  }
  return undefined;
}

/** A ConfigMap or Secret the folder's plain manifests declare. */
function declaredObject(git: PlainObjects, kind: "ConfigMap" | "Secret", namespace: string, name: string): KubeObject | undefined {
  return git.objects.find((o) => {
    const id = identify(o.object, "Namespaced", git.namespace);
    return id.group === "" && id.kind === kind && id.name === name && id.namespace === namespace;
  })?.object;
}

function dataValue(obj: KubeObject, key: string): string | undefined {
  const data = obj.data as Record<string, string> | undefined;
  const stringData = obj.stringData as Record<string, string> | undefined;
  if (obj.kind === "Secret") {
    if (stringData?.[key] !== undefined) return stringData[key];
    return data?.[key] !== undefined ? Buffer.from(data[key], "base64").toString("utf8") : undefined;
  }
  return data?.[key];
}

function describeRef(ref: ValuesRef): string {
  switch (ref.kind) {
    case "ExternalURL":
      return redactCredentials(ref.url);
    case "ChartFile":
      return `chart file ${ref.path}`;
    default:
      return `${ref.kind}/${ref.namespace}/${ref.name} key ${ref.key}`;
  }
}

function parseRendered(text: string, location: SourceLocation, errors: ManifestError[], what: string): SourceObject[] {
  const parsed = parseManifests(text, location.file);
  for (const e of parsed.errors) errors.push(new ManifestError(location, `${what} rendered an invalid object: ${e.problem}`));
  // Rendered objects are reported at the line of what rendered them.
  return parsed.objects.map((p) => ({ object: p.object, location, prune: true }));
}

function ordered<
  T extends { name: string; namespace: string; dependsOn: readonly { name: string; namespace: string }[]; location: SourceLocation },
>(items: readonly T[], kind: string, errors: ManifestError[]): T[] {
  try {
    return orderByDependsOn(items, kind);
  } catch (err) {
    errors.push(new ManifestError(items[0]?.location ?? { file: "?", line: 1 }, message(err)));
    return [];
  }
}

function asManifestError(err: unknown, location: SourceLocation, name?: string): ManifestError {
  if (err instanceof ManifestError) return err;
  if (err instanceof DesiredStateError) return new ManifestError(location, err.errors.map((e) => e.message).join("; "));
  const m = message(err);
  return new ManifestError(location, name && !m.startsWith(name) ? `${name}: ${m}` : m);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
