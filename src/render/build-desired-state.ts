import { applyIgnoreRules, findDuplicates } from "../desired-state/object-rules";
import { orderByDependsOn } from "../desired-state/dependency-order";
import { DesiredState, RenderedUnit, SourceObject, unitKey } from "../desired-state/desired-state";
import { GroupKind, identifyUnits, kindsToDiscover } from "../desired-state/identify";
import { isFluxKustomization, parseFluxKustomization, FluxKustomizationSpec } from "../desired-state/flux-kustomization";
import { GitRef } from "../desired-state/git-ref";
import { splitChartCrds } from "../desired-state/helm-crds";
import { HelmHook, splitHooks } from "../desired-state/helm-hooks";
import { HelmReleaseSpec, isFluxSource, isHelmRelease, parseHelmRelease, ValuesRef } from "../desired-state/helm-release";
import { ConfinementError } from "../desired-state/confinement";
import {
  assertChartConfined,
  assertKustomizationConfined,
  hasKustomization,
  LoadedFolder,
  readCheckoutFile,
  readManifestTexts,
  resolveInCheckout,
} from "../desired-state/load-desired-state";
import { DesiredStateError, GuardError, ManifestError, SourceLocation } from "../desired-state/manifest-error";
import { DEFAULT_NAMESPACE, identify, KubeObject, Scope } from "../desired-state/object-id";
import { parseManifests } from "../desired-state/parse-manifests";
import { helmReleaseWalls, kustomizationWalls } from "../desired-state/namespace-walls";
import { maskQuoted, redactor, secretObjectForms, sensitiveForms } from "../desired-state/sensitive-values";
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
  /** For a folder chart: the checkout holding it, inside which its `file://` dependencies must stay. */
  readonly chartRoot?: string;
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
  const policy = options.policy ?? sourcePolicy();
  // Strings that reveal Secret data: no error, preview or result may show them.
  const sensitive = new Set<string>();
  const units: RenderedUnit[] = [];
  const plain: SourceObject[] = [];
  const byDefault = { namespace: options.defaultNamespace || DEFAULT_NAMESPACE, override: false };
  const helmReleases: { obj: KubeObject; location: SourceLocation }[] = [];
  const kustomizations: { obj: KubeObject; location: SourceLocation }[] = [];
  const sources: KubeObject[] = [];
  const { allowRemoteBases } = options.policy ?? sourcePolicy();

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
      const text = await confinedKustomizeBuild(loaded.checkout, dir, allowRemoteBases, tools);
      const objects = parseRendered(text, location, errors, `Kustomize folder ${dir}`);
      units.push({ kind: "Kustomize", name: dir, location, objects: applyIgnoreRules(objects), dependsOn: [], namespace: byDefault });
    } catch (err) {
      if (err instanceof ConfinementError) errors.push(new ManifestError(location, `Kustomize folder ${dir}: ${err.message}`));
      else
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
      const spec = parseFluxKustomization(k.obj, k.location);
      const refused = kustomizationWalls(spec, policy);
      if (refused.length > 0) errors.push(...refused);
      else kSpecs.push(spec);
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
        ? await confinedKustomizeBuild(loaded.checkout, spec.path, allowRemoteBases, tools)
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
      const spec = parseHelmRelease(h.obj, h.location, sources);
      const refused = helmReleaseWalls(spec, policy);
      if (refused.length > 0) errors.push(...refused);
      else hSpecs.push(spec);
    } catch (err) {
      errors.push(asManifestError(err, h.location));
    }
  }
  for (const spec of ordered(hSpecs, "HelmRelease", errors)) {
    const name = `HelmRelease/${spec.namespace}/${spec.name}`;
    try {
      const git = { objects: plain, namespace: byDefault.namespace };
      const rendered = await renderHelmRelease(spec, loaded, git, tools, errors, sensitive, options.policy ?? sourcePolicy());
      units.push({
        kind: "HelmRelease",
        name: `${spec.namespace}/${spec.name}`,
        location: spec.location,
        objects: applyIgnoreRules(rendered.objects).map((o) => ({
          ...o,
          suspended: spec.suspend || o.suspended === true,
          ...(rendered.sensitive ? { sensitive: true } : {}),
        })),
        dependsOn: spec.dependsOn.map((d) => unitKey({ kind: "HelmRelease", name: `${d.namespace}/${d.name}` })),
        ...(rendered.hooks.length > 0 ? { hooks: rendered.hooks } : {}),
        // helm install puts namespaced objects that name no namespace in the release namespace.
        namespace: { namespace: spec.targetNamespace, override: false },
      });
    } catch (err) {
      errors.push(asManifestError(err, spec.location, name));
    }
  }

  // 5. Identities, resolved once for the whole desired state (the live cluster tells the scope of
  //    kinds no CRD here declares); then the guards: one definition per object, no accidental empty state.
  //    Secret objects' data joins the sensitive strings; no error shows any of them.
  if (errors.length > 0) throw redactedError(errors, sensitive);
  const toDiscover = kindsToDiscover(units);
  const identified = identifyUnits(units, toDiscover.length > 0 ? await tools.discoverScopes(toDiscover) : new Map());
  for (const o of identified.flatMap((u) => u.objects)) {
    if (o.id.group === "" && o.id.kind === "Secret") for (const s of secretObjectForms(o.object)) sensitive.add(s);
  }
  errors.push(...findDuplicates(identified));
  if (errors.length > 0) throw redactedError(errors, sensitive);
  if (units.every((u) => u.objects.length === 0) && !options.allowEmpty) {
    throw new GuardError(
      `cluster folder "${loaded.path}" contains no Kubernetes objects; refusing to sync, because that would delete every object ferry manages.\n` +
        `  fix: check the path, or pass --allow-empty if removing everything is really intended`,
    );
  }
  return { path: loaded.path, units: identified, ...(sensitive.size > 0 ? { sensitive: [...sensitive] } : {}) };
}

/** The errors of a build, every sensitive string masked. */
function redactedError(errors: readonly ManifestError[], sensitive: ReadonlySet<string>): DesiredStateError {
  const r = redactor([...sensitive]);
  if (!r.active) return new DesiredStateError(errors);
  return new DesiredStateError(errors.map((e) => new ManifestError(e.location, r.text(e.problem), e.hint && r.text(e.hint))));
}

/** Kustomize's build of a folder of the checkout, once every path it names is known to stay inside. */
async function confinedKustomizeBuild(checkout: string, rel: string, allowRemoteBases: boolean, tools: RenderTools): Promise<string> {
  const absDir = resolveInCheckout(checkout, rel, "folder");
  assertKustomizationConfined(checkout, absDir, allowRemoteBases);
  return tools.kustomizeBuild(absDir);
}

/** The plain manifests of the folder (where valuesFrom looks first), and the namespace of those that name none. */
interface PlainObjects {
  readonly objects: readonly SourceObject[];
  readonly namespace: string;
}

/**
 * Renders a HelmRelease. Values read from a Secret (or a URL's body) add their forms to `sensitive`
 * and make the release sensitive: its objects' values are secret, and helm's own message about a
 * failed render is withheld (a chart can `fail` with any value it was given).
 */
async function renderHelmRelease(
  spec: HelmReleaseSpec,
  loaded: LoadedFolder,
  git: PlainObjects,
  tools: RenderTools,
  errors: ManifestError[],
  sensitive: Set<string>,
  policy: SourcePolicy,
): Promise<{ objects: SourceObject[]; hooks: HelmHook[]; sensitive: boolean }> {
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
  // A live source Secret's values are as secret as any other: never shown.
  for (const v of [auth?.password, auth?.identity]) if (v) for (const f of sensitiveForms(v)) sensitive.add(f);
  const basicAuth = auth?.username !== undefined ? { username: auth.username, password: auth.password ?? "" } : undefined;
  // Where the chart is.
  let chart = "";
  let repo: string | undefined;
  let version: string | undefined;
  let chartDir: string | undefined;
  let chartRoot: string | undefined;
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
      assertChartConfined(root, chartDir);
      chart = chartDir;
      chartRoot = root;
      break;
    }
  }

  // Values: valuesFrom in order, inline values last.
  const layers: Record<string, unknown>[] = [];
  let merged: Record<string, unknown> = {};
  let secretValues = false;
  for (const ref of spec.valuesFrom) {
    const text = await valuesText(ref, spec, git, tools, chartDir);
    if (text === undefined) continue; // optional and absent
    const secret = ref.kind === "Secret" || ref.kind === "ExternalURL";
    secretValues ||= secret;
    if (ref.kind !== "ExternalURL" && ref.kind !== "ChartFile" && ref.targetPath) {
      merged = setValueAtPath(mergeValues([merged, ...layers]), ref.targetPath, text);
      layers.length = 0;
      if (secret) for (const s of sensitiveForms(text, text.trim().replace(/^['"]+|['"]+$/g, ""))) sensitive.add(s);
    } else {
      const parsed = parseValuesText(text, `${name}: values from ${describeRef(ref)}`);
      layers.push(parsed);
      if (secret) for (const s of sensitiveForms(text, parsed)) sensitive.add(s);
    }
  }
  const values = mergeValues([merged, ...layers, spec.values]);

  let text: string;
  try {
    text = await tools.helmTemplate({
      unit: name,
      releaseName: spec.releaseName,
      namespace: spec.targetNamespace,
      chart,
      repo,
      version,
      values,
      includeCRDs: !spec.skipCRDs,
      ...(chartRoot ? { chartRoot } : {}),
      ...(basicAuth && spec.chart.type !== "git" ? { auth: basicAuth } : {}),
    });
  } catch (err) {
    if (!secretValues || !fromTemplate(message(err))) throw err;
    const at = TEMPLATE_LOCATION.exec(message(err))?.[0];
    throw new Error(
      `${name}: helm template failed${at ? ` at ${at}` : ""}; helm's message is withheld because this release's values come from a Secret` +
        " (render the chart with those values where you may see them)",
      { cause: err },
    );
  }
  // The crds/ folder's CRDs are Helm's to create, never to delete; updated on upgrade only with
  // `upgrade.crds: CreateReplace` (otherwise created once: ignoreChanges, as a suspended object).
  const parts = splitChartCrds(text);
  const crds = parseRendered(parts.crds, spec.location, errors, name, secretValues).map((o) => ({
    ...o,
    prune: false,
    ...(spec.updateCRDs ? {} : { suspended: true }),
  }));
  // Hooks and tests are not managed objects (helm-controller's Helm keeps them out of the release).
  const rendered = [...crds, ...parseRendered(parts.rest, spec.location, errors, name, secretValues)];
  const split = splitHooks(rendered, spec.targetNamespace, spec.location, name);
  for (const h of split.hooks) if (h.object.kind === "Secret") for (const s of secretObjectForms(h.object)) sensitive.add(s);
  return { objects: split.objects, hooks: split.hooks, sensitive: secretValues };
}

/** A template's place in a helm error: `webapp/templates/configmap.yaml:3:12`. */
const TEMPLATE_LOCATION = /[\w.-]+\/templates\/[\w./-]+:\d+(?::\d+)?/;

/** Whether helm's error comes from executing or parsing the chart's templates (where any value can end up). */
function fromTemplate(m: string): boolean {
  return /execution error|template:|parse error|YAML|\/templates\//i.test(m);
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

function parseRendered(text: string, location: SourceLocation, errors: ManifestError[], what: string, sensitive = false): SourceObject[] {
  const parsed = parseManifests(text, location.file);
  for (const e of parsed.errors) {
    errors.push(new ManifestError(location, `${what} rendered an invalid object: ${sensitive ? maskQuoted(e.problem) : e.problem}`));
  }
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
