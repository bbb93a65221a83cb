import * as path from "node:path";
import { applyIgnoreRules, findDuplicates } from "../desired-state/object-rules";
import { orderByDependsOn } from "../desired-state/dependency-order";
import { DesiredState, FailedUnit, NamespacePolicy, RenderedUnit, SourceObject, UnitKind, unitKey } from "../desired-state/desired-state";
import { GroupKind, identifyUnits, kindsToDiscover } from "../desired-state/identify";
import { isFluxKustomization, parseFluxKustomization, FluxKustomizationSpec } from "../desired-state/flux-kustomization";
import { GitRef } from "../desired-state/git-ref";
import { splitChartCrds } from "../desired-state/helm-crds";
import { HelmHook, splitHooks } from "../desired-state/helm-hooks";
import { splitArgoHooks } from "../desired-state/argo-hooks";
import {
  GitRepositorySpec,
  gitRepositorySpec,
  HelmReleaseSpec,
  isFluxSource,
  isHelmRelease,
  parseHelmRelease,
  ValuesRef,
} from "../desired-state/helm-release";
import { ConfinementError } from "../desired-state/confinement";
import { ociRepositorySource } from "../desired-state/oci-repository";
import {
  assertChartConfined,
  assertKustomizationConfined,
  hasKustomization,
  LoadedFolder,
  readCheckoutFile,
  readManifestTexts,
  resolveInCheckout,
} from "../desired-state/load-desired-state";
import { DesiredStateError, formatLocation, GuardError, ManifestError, SourceLocation } from "../desired-state/manifest-error";
import { DEFAULT_NAMESPACE, identify, KubeObject, Scope } from "../desired-state/object-id";
import { parseManifests } from "../desired-state/parse-manifests";
import { helmReleaseWalls, kustomizationWalls } from "../desired-state/namespace-walls";
import { maskQuoted, redactor, secretObjectForms, sensitiveForms } from "../desired-state/sensitive-values";
import { redactCredentials } from "../desired-state/outbound-policy";
import { SourcePolicy, sourcePolicy } from "../desired-state/source-policy";
import { isConfigRepoUrl } from "../source/credentials";
import { impersonatedUser } from "../desired-state/service-account";
import { isEmptyOverlay } from "../desired-state/kustomize-fields";
import { substituteVariables } from "./envsubst";
import { mergeValues, parseValuesText, setValueAtPath } from "./helm-values";
import { applyOverlay, OverlayRequest, postRender } from "./kustomize-overlay";
import { OciArtifactRequest } from "./oci-artifact";
import { OutboundRefusedError } from "./outbound";
import { ociRegistryHost, SourceAuth, sourceCredentials } from "./source-credentials";
import { SubstituteLookup, substitutionVariables } from "./substitute-from";
import { valuesFilesLayer } from "./values-files";

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
  /** An `oci://` chart from a registry its source marks `insecure: true`: plain HTTP (helm's `--plain-http`). */
  readonly plainHttp?: boolean;
  /** The user the release's `lookup` calls read the cluster as (its serviceAccountName's). */
  readonly lookupAs?: string;
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
  /** Builds rendered objects with what Flux adds (patches, images, components...) in a folder of ferry's own: the YAML of the result. */
  kustomizeOverlay(request: OverlayRequest): Promise<string>;
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
  /** An OCIRepository's artifact pulled and unpacked, confined (a Kustomization's source); returns its folder. */
  pullOciArtifact(request: OciArtifactRequest): Promise<string>;
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
  /**
   * The config repo's URL as configured. A Flux GitRepository at this URL, like the bootstrap
   * `GitRepository/flux-system/flux-system`, is the config repo itself: read from the checkout synced.
   */
  readonly repoUrl?: string;
}

/**
 * Where a Flux object was found: the Flux Kustomizations that yielded it, outermost first, and what
 * they impose on what it yields, as kustomize-controller would (what an unpruned or suspended
 * Kustomization applies stays as it is, and so do the objects it makes in turn).
 */
interface Origin {
  /** `namespace/name` of each Kustomization on the way. */
  readonly chain: readonly string[];
  readonly prune: boolean;
  readonly suspend: boolean;
  /** `namespace/name` of the Kustomizations that those on the way wait for. */
  readonly dependsOn: readonly string[];
}

/** The cluster folder itself (its files, its Kustomize folders): nothing imposed. */
const CLUSTER_FOLDER: Origin = { chain: [], prune: true, suspend: false, dependsOn: [] };

/** A Flux object ferry interprets, where it was found. */
interface FluxFound {
  readonly obj: KubeObject;
  readonly location: SourceLocation;
  readonly origin: Origin;
}

/** The Flux objects of a desired state, collected from whatever yields objects (files, Kustomize, Flux Kustomizations). */
class FluxObjects {
  readonly helmReleases: FluxFound[] = [];
  readonly kustomizations: FluxFound[] = [];
  readonly sources: KubeObject[] = [];

  /** Takes the Flux objects out of what a unit yields (as kustomize-controller and helm-controller see them); returns the others. */
  sort(objects: readonly SourceObject[], origin: Origin): SourceObject[] {
    const rest: SourceObject[] = [];
    for (const o of objects) {
      if (isHelmRelease(o.object)) this.helmReleases.push({ obj: o.object, location: o.location, origin });
      else if (isFluxKustomization(o.object)) this.kustomizations.push({ obj: o.object, location: o.location, origin });
      else if (isFluxSource(o.object)) this.sources.push(o.object);
      else rest.push(o);
    }
    return rest;
  }
}

/**
 * Renders a loaded cluster folder into the desired state: plain manifests as they are, HelmReleases
 * through `helm template`, Kustomize folders and Flux Kustomizations through Kustomize, chart folders
 * as Argo CD renders a Helm application. What any of them yields is sorted again, recursively: a
 * HelmRelease or Kustomization inside a Kustomize build or a Kustomization's path is rendered or
 * followed as Flux would. Every problem of every unit is collected; any problem aborts with a
 * {@link DesiredStateError} before anything is applied.
 */
export async function buildDesiredState(loaded: LoadedFolder, tools: RenderTools, options: BuildOptions = {}): Promise<DesiredState> {
  // Problems of the whole desired state (cycles, duplicates): they stop the build.
  const errors: ManifestError[] = [];
  // Units that did not build, with their problems: the others go on without them (as Flux's
  // controllers reconcile each Kustomization and HelmRelease on its own).
  const failed: FailedUnit[] = [];
  const fail = (kind: UnitKind, name: string, location: SourceLocation, problems: readonly ManifestError[]): void => {
    failed.push({ kind, name, location, errors: problems });
  };
  const policy = options.policy ?? sourcePolicy();
  // Strings that reveal Secret data: no error, preview or result may show them.
  const sensitive = new Set<string>();
  const units: RenderedUnit[] = [];
  // Every object applied as it is, namespaced where its unit puts it: where valuesFrom and secretRefs look first.
  const plain: SourceObject[] = [];
  const git: PlainObjects = { objects: plain, namespace: options.defaultNamespace || DEFAULT_NAMESPACE };
  const byDefault = { namespace: git.namespace, override: false };
  const flux = new FluxObjects();
  const { allowRemoteBases } = policy;
  /** The objects a unit applies as they are (its Flux objects taken out); they also join `plain`. */
  const applied = (objects: readonly SourceObject[], origin: Origin, namespace: NamespacePolicy): SourceObject[] => {
    const kept = applyIgnoreRules(flux.sort(objects, origin));
    plain.push(...(namespace.override ? kept.map((o) => withNamespace(o, namespace.namespace)) : kept));
    return kept;
  };

  // 1. Sort what Git declares: objects to apply, and Flux objects that ferry interprets.
  for (const file of loaded.files) {
    const kept = applied(file.objects, CLUSTER_FOLDER, byDefault);
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

  // 2. Kustomize folders inside the cluster folder; what they yield is sorted the same way.
  for (const dir of loaded.kustomizeDirs) {
    const location = { file: `${dir}/kustomization.yaml`, line: 1 };
    const own: ManifestError[] = [];
    try {
      const text = await confinedKustomizeBuild(loaded.checkout, dir, allowRemoteBases, tools);
      const objects = parseRendered(text, location, own, `Kustomize folder ${dir}`);
      if (own.length > 0) throw new DesiredStateError(own);
      units.push({
        kind: "Kustomize",
        name: dir,
        location,
        objects: applied(objects, CLUSTER_FOLDER, byDefault),
        dependsOn: [],
        namespace: byDefault,
      });
    } catch (err) {
      if (err instanceof DesiredStateError) fail("Kustomize", dir, location, err.errors);
      else if (err instanceof ConfinementError)
        fail("Kustomize", dir, location, [new ManifestError(location, `Kustomize folder ${dir}: ${err.message}`)]);
      else
        fail("Kustomize", dir, location, [
          new ManifestError(
            location,
            `kustomize build ${dir} failed: ${message(err)}`,
            "run `kubectl kustomize` on that folder to see the problem",
          ),
        ]);
    }
  }

  // 3. Flux Kustomizations, followed wherever they are found: one whose path yields more
  //    Kustomizations is followed into them, once its source is known (a GitRepository may come from
  //    another Kustomization's output).
  const kustomizations = new Map<string, { spec: FluxKustomizationSpec; origin: Origin; unit?: RenderedUnit }>();
  const pending: { spec: FluxKustomizationSpec; origin: Origin }[] = [];
  const rootKeys = new Set<string>();
  let admitted = 0;
  for (;;) {
    while (admitted < flux.kustomizations.length) {
      const found = flux.kustomizations[admitted++]!;
      const own: ManifestError[] = [];
      const spec = admitKustomization(found, policy, own, errors);
      if (!spec) {
        if (own.length > 0) fail("Kustomization", fluxKey(found.obj), found.location, own);
        continue;
      }
      const key = `${spec.namespace}/${spec.name}`;
      if (isClusterFolder(spec, loaded, flux.sources, options.repoUrl)) {
        // The bootstrap Kustomization (`flux-system`, path: this cluster folder): ferry syncs that folder itself.
        const refused = rootFields(spec);
        if (refused) errors.push(new ManifestError(spec.location, refused, "move these settings into the Kustomizations the folder holds"));
        rootKeys.add(key);
      } else if (kustomizations.has(key)) {
        errors.push(
          new ManifestError(
            spec.location,
            `Kustomization/${key} is defined twice (also at ${formatLocation(kustomizations.get(key)!.spec.location)})`,
            "keep one definition, or rename one of them",
          ),
        );
      } else {
        kustomizations.set(key, { spec, origin: found.origin });
        pending.push({ spec, origin: found.origin });
      }
    }
    const next = pending.findIndex((p) => kustomizationSource(p.spec, flux.sources).kind !== "missing");
    if (next < 0) break;
    const [item] = pending.splice(next, 1);
    const { spec, origin } = item!;
    const key = `${spec.namespace}/${spec.name}`;
    const name = `Kustomization/${key}`;
    const own: ManifestError[] = [];
    try {
      const root = await kustomizationRoot(spec, flux.sources, loaded, options.repoUrl, tools, { git, sensitive, policy });
      const { vars, fromSecret } = await substitutionVariables(name, spec.substituteFrom, spec.substitute, lookupIn(git, tools), sensitive);
      // Substitution applies to the YAML before anything is sorted, Flux objects included.
      const substitute = (text: string): string => (Object.keys(vars).length > 0 ? substituteVariables(text, vars) : text);
      let parsed: SourceObject[];
      if (hasKustomization(root, spec.path) || !isEmptyOverlay(spec.overlay)) {
        const built = hasKustomization(root, spec.path)
          ? await confinedKustomizeBuild(root, spec.path, allowRemoteBases, tools)
          : readManifestTexts(root, spec.path)
              .map((f) => f.text)
              .join("\n---\n");
        // What Flux adds to the build (patches, images, components...), then postBuild substitution.
        const folder = { checkout: root, dir: spec.path, allowRemoteBases };
        const text = await applyOverlay({ unit: name, base: built, overlay: spec.overlay }, folder, (r) => tools.kustomizeOverlay(r));
        parsed = parseRendered(substitute(text), spec.location, own, name, fromSecret);
      } else {
        // Plain files keep their own file and line when they are the config repo's.
        parsed = readManifestTexts(root, spec.path).flatMap((f) =>
          root === loaded.checkout && !fromSecret
            ? parseFile(substitute(f.text), f.path, own)
            : parseRendered(substitute(f.text), spec.location, own, name, fromSecret),
        );
      }
      // A path with a broken file fails its Kustomization, and nothing it yields is taken.
      if (own.length > 0) throw new DesiredStateError(own);
      const yielded = parsed.map((o) =>
        // kustomize-controller puts every namespaced object in targetNamespace: the Flux objects it yields too.
        spec.targetNamespace && isFluxObject(o.object) ? withNamespace(o, spec.targetNamespace) : o,
      );
      const inside: Origin = {
        chain: [...origin.chain, key],
        prune: origin.prune && spec.prune,
        suspend: origin.suspend || spec.suspend,
        dependsOn: [...origin.dependsOn, ...spec.dependsOn.map((d) => `${d.namespace}/${d.name}`)],
      };
      const namespace = spec.targetNamespace ? { namespace: spec.targetNamespace, override: true } : byDefault;
      const objects = applied(yielded, inside, namespace).map((o) => ({
        ...o,
        prune: o.prune && inside.prune,
        suspended: inside.suspend,
        ...(fromSecret ? { sensitive: true } : {}),
        // Applied as the Kustomization's own account; a HelmRelease or Kustomization it yields uses its own (Flux).
        ...(spec.serviceAccount ? { serviceAccount: spec.serviceAccount } : {}),
      }));
      kustomizations.get(key)!.unit = {
        kind: "Kustomization",
        name: key,
        location: spec.location,
        objects,
        dependsOn: [],
        ...(spec.health ? { health: spec.health } : {}),
        namespace,
      };
    } catch (err) {
      fail(
        "Kustomization",
        key,
        spec.location,
        err instanceof DesiredStateError ? err.errors : [asManifestError(err, spec.location, name)],
      );
    }
  }
  for (const { spec } of pending) {
    const ref = spec.sourceRef!;
    fail("Kustomization", `${spec.namespace}/${spec.name}`, spec.location, [
      new ManifestError(
        spec.location,
        `Kustomization/${spec.namespace}/${spec.name}: spec.sourceRef names ${ref.kind}/${ref.namespace}/${ref.name}, which is not in the repository`,
        `add the ${ref.kind} "${ref.name}" (namespace ${ref.namespace}) to the repository: ferry reads Flux sources from Git, not from the cluster`,
      ),
    ]);
  }

  // 4. HelmReleases, wherever they were found, with the sources of the whole desired state.
  const hSpecs: HelmReleaseSpec[] = [];
  const hOrigins = new Map<string, Origin>();
  for (const h of flux.helmReleases) {
    try {
      const spec = parseHelmRelease(h.obj, h.location, flux.sources);
      const refused = helmReleaseWalls(spec, policy);
      if (refused.length > 0) fail("HelmRelease", `${spec.namespace}/${spec.name}`, spec.location, refused);
      else {
        hSpecs.push(spec);
        if (!hOrigins.has(`${spec.namespace}/${spec.name}`)) hOrigins.set(`${spec.namespace}/${spec.name}`, h.origin);
      }
    } catch (err) {
      fail("HelmRelease", fluxKey(h.obj), h.location, [asManifestError(err, h.location)]);
    }
  }

  // What waits for what: a Kustomization's dependsOn waits for everything the other one yields
  // (its HelmReleases and Kustomizations too), and what a Kustomization yields waits with it.
  const waits = dependencyKeys(
    [...kustomizations.values()].map(({ spec, origin }) => ({
      key: unitKey({ kind: "Kustomization", name: `${spec.namespace}/${spec.name}` }),
      chain: origin.chain,
    })),
    hSpecs.map((spec) => ({
      key: unitKey({ kind: "HelmRelease", name: `${spec.namespace}/${spec.name}` }),
      chain: hOrigins.get(`${spec.namespace}/${spec.name}`)!.chain,
    })),
  );
  const kSpecs = [...kustomizations.values()].map(({ spec }) => ({
    ...spec,
    // The bootstrap Kustomization is the cluster folder: waiting for it is waiting for nothing.
    dependsOn: spec.dependsOn.filter((d) => !rootKeys.has(`${d.namespace}/${d.name}`)),
  }));
  for (const spec of ordered(kSpecs, "Kustomization", errors, failed)) {
    const key = `${spec.namespace}/${spec.name}`;
    const { unit, origin } = kustomizations.get(key)!;
    if (!unit) continue;
    const own = unitKey({ kind: "Kustomization", name: key });
    const deps = [...origin.dependsOn, ...spec.dependsOn.map((d) => `${d.namespace}/${d.name}`)];
    units.push({ ...unit, dependsOn: waits(own, [...origin.chain, key], deps, []) });
  }

  // 5. Chart folders inside the cluster folder: a chart a HelmRelease renders is that release's;
  //    any other is rendered as Argo CD renders a Helm application (release = folder name, its values.yaml).
  for (const dir of loaded.chartDirs) {
    if (hSpecs.some((spec) => rendersChartFolder(spec, dir, options.repoUrl))) continue;
    const location = { file: `${dir === "." ? "" : `${dir}/`}Chart.yaml`, line: 1 };
    const name = `chart folder ${dir}`;
    const own: ManifestError[] = [];
    try {
      const chartDir = resolveInCheckout(loaded.checkout, dir, "folder");
      assertChartConfined(loaded.checkout, chartDir);
      const text = await tools.helmTemplate({
        unit: `HelmChart/${dir}`,
        releaseName: path.basename(chartDir),
        namespace: byDefault.namespace,
        chart: chartDir,
        values: {},
        includeCRDs: true,
      });
      const objects = applyIgnoreRules(parseRendered(text, location, own, name));
      if (own.length > 0) throw new DesiredStateError(own);
      units.push({
        kind: "HelmChart",
        name: dir,
        location,
        objects,
        dependsOn: [],
        // helm install puts namespaced objects that name no namespace in the release namespace.
        namespace: byDefault,
      });
    } catch (err) {
      fail("HelmChart", dir, location, err instanceof DesiredStateError ? err.errors : [asManifestError(err, location, name)]);
    }
  }

  // 6. HelmReleases, in dependsOn order, rendered with the values of Git (or the live cluster).
  for (const spec of ordered(hSpecs, "HelmRelease", errors, failed)) {
    const key = `${spec.namespace}/${spec.name}`;
    const name = `HelmRelease/${key}`;
    const origin = hOrigins.get(key) ?? CLUSTER_FOLDER;
    const own: ManifestError[] = [];
    try {
      const rendered = await renderHelmRelease(spec, loaded, git, tools, own, sensitive, policy, options.repoUrl);
      if (own.length > 0) throw new DesiredStateError(own);
      units.push({
        kind: "HelmRelease",
        name: key,
        location: spec.location,
        objects: applyIgnoreRules(rendered.objects).map((o) => ({
          ...o,
          prune: o.prune && origin.prune,
          suspended: spec.suspend || origin.suspend || o.suspended === true,
          ...(rendered.sensitive ? { sensitive: true } : {}),
          ...(spec.serviceAccount ? { serviceAccount: spec.serviceAccount } : {}),
        })),
        dependsOn: waits(
          unitKey({ kind: "HelmRelease", name: key }),
          origin.chain,
          origin.dependsOn,
          spec.dependsOn.map((d) => unitKey({ kind: "HelmRelease", name: `${d.namespace}/${d.name}` })),
        ),
        ...(rendered.hooks.length > 0
          ? { hooks: spec.serviceAccount ? rendered.hooks.map((h) => ({ ...h, serviceAccount: spec.serviceAccount })) : rendered.hooks }
          : {}),
        // helm install puts namespaced objects that name no namespace in the release namespace.
        namespace: { namespace: spec.targetNamespace, override: false },
      });
    } catch (err) {
      fail("HelmRelease", key, spec.location, err instanceof DesiredStateError ? err.errors : [asManifestError(err, spec.location, name)]);
    }
  }

  // 7. Identities, resolved once for the whole desired state (the live cluster tells the scope of
  //    kinds no CRD here declares); then the guards: one definition per object, no accidental empty state.
  //    Secret objects' data joins the sensitive strings; no error shows any of them.
  // 6b. Argo CD hooks leave every unit that is not a HelmRelease (sync waves checked): see argo-hooks.ts.
  //     A unit with a refused hook or wave fails alone.
  const split = units.flatMap((unit) => {
    const argo = splitArgoHooks([unit]);
    for (const s of argo.sensitive) sensitive.add(s);
    if (argo.errors.length === 0) return argo.units;
    fail(unit.kind, unit.name, unit.location, argo.errors);
    return [];
  });
  units.splice(0, units.length, ...split);
  // A problem of the whole state stops the build; so do failed units when no unit is left.
  const unitErrors = failed.flatMap((f) => f.errors);
  if (errors.length > 0 || (failed.length > 0 && units.length === 0)) throw redactedError([...errors, ...unitErrors], sensitive);
  const toDiscover = kindsToDiscover(units);
  const identified = identifyUnits(units, toDiscover.length > 0 ? await tools.discoverScopes(toDiscover) : new Map());
  for (const o of identified.flatMap((u) => u.objects)) {
    if (o.id.group === "" && o.id.kind === "Secret") for (const s of secretObjectForms(o.object)) sensitive.add(s);
  }
  errors.push(...findDuplicates(identified));
  if (errors.length > 0) throw redactedError(errors, sensitive);
  if (failed.length === 0 && units.every((u) => u.objects.length === 0) && !options.allowEmpty) {
    throw new GuardError(
      `cluster folder "${loaded.path}" contains no Kubernetes objects; refusing to sync, because that would delete every object ferry manages.\n` +
        `  fix: check the path, or pass --allow-empty if removing everything is really intended`,
    );
  }
  return {
    path: loaded.path,
    units: identified,
    ...(failed.length > 0 ? { failed: failed.map((f) => ({ ...f, errors: redactedError(f.errors, sensitive).errors })) } : {}),
    ...(sensitive.size > 0 ? { sensitive: [...sensitive] } : {}),
  };
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
  repoUrl?: string,
): Promise<{ objects: SourceObject[]; hooks: HelmHook[]; sensitive: boolean }> {
  const name = `HelmRelease/${spec.namespace}/${spec.name}`;
  // The chart source's credentials: only what its own secretRef names (Git first, else the cluster).
  const auth = await sourceCredentials(
    spec.chart.secretRef,
    name,
    secretsOf(git, tools),
    policy,
    spec.chart.type === "oci" ? ociRegistryHost(spec.chart.url) : undefined,
  );
  // A live source Secret's values are as secret as any other: never shown.
  for (const v of [auth?.password, auth?.identity]) if (v) for (const f of sensitiveForms(v)) sensitive.add(f);
  const basicAuth = auth?.username !== undefined ? { username: auth.username, password: auth.password ?? "" } : undefined;
  // Where the chart is.
  let chart = "";
  let repo: string | undefined;
  let version: string | undefined;
  let chartDir: string | undefined;
  let filesLayer: Record<string, unknown> = {};
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
      // A chart of the config repo (its URL, or the bootstrap GitRepository) is read from the commit synced.
      const root =
        spec.chart.url && !readsConfigRepoChart(spec, repoUrl)
          ? await tools.checkoutGit(spec.chart.url, spec.chart.ref, { unit: name, auth })
          : loaded.checkout;
      chartDir = resolveInCheckout(root, spec.chart.path, "folder");
      assertChartConfined(root, chartDir);
      chart = chartDir;
      filesLayer = valuesFilesLayer(spec, root, chartDir);
      chartRoot = root;
      break;
    }
  }

  // Values: valuesFrom in order, inline values last.
  const layers: Record<string, unknown>[] = [];
  // chart.spec.valuesFiles replace the chart's values.yaml: the bottom layer.
  let merged: Record<string, unknown> = filesLayer;
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
      ...(spec.chart.type === "oci" && spec.chart.insecure ? { plainHttp: true } : {}),
      ...(spec.serviceAccount ? { lookupAs: impersonatedUser(spec.serviceAccount) } : {}),
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
  text = await postRender(name, text, spec.postRenderers, secretValues, (r) => tools.kustomizeOverlay(r));
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

/** Where postBuild.substituteFrom reads: the folder's plain manifests first, else the cluster. */
function lookupIn(git: PlainObjects, tools: RenderTools): SubstituteLookup {
  return { declared: (kind, ns, name) => declaredObject(git, kind, ns, name), live: (kind, ns, name) => tools.readLive(kind, ns, name) };
}

/** A ConfigMap or Secret the folder's plain manifests declare. */
/** Where a source's secretRef is looked up: the Secret Git declares, else the live cluster's. */
function secretsOf(git: PlainObjects, tools: RenderTools): Parameters<typeof sourceCredentials>[2] {
  return {
    declared: (namespace, secret) => declaredObject(git, "Secret", namespace, secret),
    live: (namespace, secret) => tools.readLive("Secret", namespace, secret),
  };
}

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

/** The objects of one file of the config repo, at their own file and line. */
function parseFile(text: string, file: string, errors: ManifestError[]): SourceObject[] {
  const parsed = parseManifests(text, file);
  errors.push(...parsed.errors);
  return parsed.objects.map((p) => ({ object: p.object, location: p.location, prune: true }));
}

/**
 * Items in dependsOn order. A dependency on a unit that failed to build is left out of the order (the
 * item still names it, and waits for it: the pipeline holds it back with the failed unit).
 */
function ordered<
  T extends { name: string; namespace: string; dependsOn: readonly { name: string; namespace: string }[]; location: SourceLocation },
>(items: readonly T[], kind: "HelmRelease" | "Kustomization", errors: ManifestError[], failed: readonly FailedUnit[]): T[] {
  const gone = new Set(failed.filter((f) => f.kind === kind).map((f) => f.name));
  const copies = items.map((item) => ({ item, dependsOn: item.dependsOn.filter((d) => !gone.has(`${d.namespace}/${d.name}`)) }));
  const original = new Map(copies.map((c, i) => [`${c.item.namespace}/${c.item.name}#${i}`, c.item]));
  try {
    return orderByDependsOn(
      copies.map((c, i) => ({ name: c.item.name, namespace: c.item.namespace, dependsOn: c.dependsOn, i })),
      kind,
    ).map((o) => original.get(`${o.namespace}/${o.name}#${o.i}`)!);
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

/** Whether an object is one ferry interprets rather than applies (a HelmRelease, Flux Kustomization or Flux source). */
function isFluxObject(obj: KubeObject): boolean {
  return isHelmRelease(obj) || isFluxKustomization(obj) || isFluxSource(obj);
}

/** `namespace/name` of a Flux object as written (before its spec is read), for naming a unit that failed. */
function fluxKey(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? "default"}/${obj.metadata.name ?? "?"}`;
}

function withNamespace(o: SourceObject, namespace: string): SourceObject {
  return { ...o, object: { ...o.object, metadata: { ...o.object.metadata, namespace } } };
}

/** The GitRepository `flux bootstrap` writes (`flux-system/flux-system`): the repository Flux syncs from, ferry's config repo. */
function isBootstrapSource(ref: { readonly kind: string; readonly name: string; readonly namespace: string }): boolean {
  return ref.kind === "GitRepository" && ref.name === BOOTSTRAP_NAME && ref.namespace === BOOTSTRAP_NAME;
}
const BOOTSTRAP_NAME = "flux-system";

/**
 * Reads a Flux Kustomization found anywhere, or records why not: its walls, its source's kind, and a
 * cycle (a Kustomization that its own path yields, through any others).
 */
function admitKustomization(
  found: FluxFound,
  policy: SourcePolicy,
  errors: ManifestError[],
  fatal: ManifestError[],
): FluxKustomizationSpec | undefined {
  let spec: FluxKustomizationSpec;
  try {
    spec = parseFluxKustomization(found.obj, found.location);
  } catch (err) {
    errors.push(asManifestError(err, found.location));
    return undefined;
  }
  const refused = kustomizationWalls(spec, policy);
  if (refused.length > 0) {
    errors.push(...refused);
    return undefined;
  }
  const key = `${spec.namespace}/${spec.name}`;
  if (spec.sourceRef && spec.sourceRef.kind !== "GitRepository" && spec.sourceRef.kind !== "OCIRepository") {
    errors.push(
      new ManifestError(
        spec.location,
        `Kustomization/${key}: spec.sourceRef kind ${spec.sourceRef.kind} is not supported by ferry yet: it reads a Kustomization's path from a GitRepository, an OCIRepository (or the config repo) only`,
        "point spec.sourceRef at a GitRepository or an OCIRepository, or move the manifests into the config repo",
      ),
    );
    return undefined;
  }
  const at = found.origin.chain.indexOf(key);
  if (at >= 0) {
    const cycle = [...found.origin.chain.slice(at), key].map((k) => `Kustomization/${k}`).join(" -> ");
    fatal.push(
      new ManifestError(
        spec.location,
        `Kustomization cycle: ${cycle} (each one's path yields the next)`,
        "change the path of one of these Kustomizations so the chain has an end",
      ),
    );
    return undefined;
  }
  return spec;
}

/** The source a Kustomization's path is read from: the config repo, another GitRepository, an OCIRepository, or one not found (yet). */
function kustomizationSource(
  spec: FluxKustomizationSpec,
  sources: readonly KubeObject[],
):
  | { readonly kind: "config" }
  | { readonly kind: "git"; readonly repo: KubeObject }
  | { readonly kind: "oci"; readonly repo: KubeObject }
  | { readonly kind: "missing" } {
  const ref = spec.sourceRef;
  // No sourceRef (Flux requires one; ferry's own tradition) or the bootstrap source: the config repo.
  if (!ref || isBootstrapSource(ref)) return { kind: "config" };
  const repo = sources.find(
    (s) => s.kind === ref.kind && s.metadata.name === ref.name && (s.metadata.namespace || "default") === ref.namespace,
  );
  if (!repo) return { kind: "missing" };
  return repo.kind === "OCIRepository" ? { kind: "oci", repo } : { kind: "git", repo };
}

function gitRepositoryOf(spec: FluxKustomizationSpec, repo: KubeObject): GitRepositorySpec {
  const what = `Kustomization/${spec.namespace}/${spec.name}: GitRepository/${repo.metadata.namespace || "default"}/${repo.metadata.name}`;
  return gitRepositorySpec(repo, { what, location: spec.location });
}

/** Whether a Kustomization's path is read from the config repo (no sourceRef, the bootstrap source, or a GitRepository at its URL). */
function readsConfigRepo(spec: FluxKustomizationSpec, sources: readonly KubeObject[], repoUrl: string | undefined): boolean {
  const source = kustomizationSource(spec, sources);
  if (source.kind !== "git") return source.kind === "config";
  try {
    return repoUrl !== undefined && isConfigRepoUrl(gitRepositoryOf(spec, source.repo).url, repoUrl);
  } catch {
    return false; // reported when it is built
  }
}

/** Whether a Kustomization builds the very cluster folder ferry syncs (the bootstrap `flux-system` one). */
function isClusterFolder(
  spec: FluxKustomizationSpec,
  loaded: LoadedFolder,
  sources: readonly KubeObject[],
  repoUrl: string | undefined,
): boolean {
  return spec.path === (loaded.path || ".") && readsConfigRepo(spec, sources, repoUrl);
}

/** What a Kustomization of the cluster folder itself sets that ferry, syncing the folder directly, would not apply: refused. */
function rootFields(spec: FluxKustomizationSpec): string | undefined {
  const fields = [
    ...(spec.targetNamespace !== undefined ? ["spec.targetNamespace"] : []),
    ...(Object.keys(spec.substitute).length > 0 ? ["spec.postBuild.substitute"] : []),
    ...(spec.substituteFrom.length > 0 ? ["spec.postBuild.substituteFrom"] : []),
    ...(spec.suspend ? ["spec.suspend"] : []),
  ];
  if (fields.length === 0) return undefined;
  return (
    `Kustomization/${spec.namespace}/${spec.name} builds ${spec.path}, the cluster folder ferry syncs: ferry applies that folder itself ` +
    `and cannot apply ${fields.join(", ")} to it`
  );
}

/** What a build reads and records while it follows a Kustomization's source. */
interface SourceContext {
  readonly git: PlainObjects;
  readonly sensitive: Set<string>;
  readonly policy: SourcePolicy;
}

/**
 * The folder a Kustomization's path is relative to: the config repo's checkout, or a checkout of the
 * GitRepository it names (its own URL and ref, with only its own secretRef's credentials); every path
 * it reads stays inside that checkout.
 */
async function kustomizationRoot(
  spec: FluxKustomizationSpec,
  sources: readonly KubeObject[],
  loaded: LoadedFolder,
  repoUrl: string | undefined,
  tools: RenderTools,
  context: SourceContext,
): Promise<string> {
  const source = kustomizationSource(spec, sources);
  if (source.kind === "oci") return ociArtifactRoot(spec, source.repo, tools, context);
  if (source.kind !== "git") return loaded.checkout;
  const repo = gitRepositoryOf(spec, source.repo);
  if (repoUrl !== undefined && isConfigRepoUrl(repo.url, repoUrl)) return loaded.checkout;
  const name = `Kustomization/${spec.namespace}/${spec.name}`;
  const auth = await sourceCredentials(repo.secretRef, name, secretsOf(context.git, tools), context.policy);
  for (const v of [auth?.password, auth?.identity]) if (v) for (const f of sensitiveForms(v)) context.sensitive.add(f);
  return tools.checkoutGit(repo.url, repo.ref, { unit: name, ...(auth ? { auth } : {}) });
}

/**
 * The folder an OCIRepository's artifact unpacks to (pulled with only its own secretRef's registry
 * login, whose values join the sensitive set); every path the Kustomization reads stays inside it.
 */
async function ociArtifactRoot(spec: FluxKustomizationSpec, repo: KubeObject, tools: RenderTools, context: SourceContext): Promise<string> {
  const name = `Kustomization/${spec.namespace}/${spec.name}`;
  const what = `${name}: OCIRepository/${repo.metadata.namespace || "default"}/${repo.metadata.name}`;
  const source = ociRepositorySource(repo, { what, location: spec.location });
  const auth = await sourceCredentials(source.secretRef, name, secretsOf(context.git, tools), context.policy, source.host);
  for (const v of [auth?.password]) if (v) for (const f of sensitiveForms(v)) context.sensitive.add(f);
  return tools.pullOciArtifact({ unit: name, source, ...(auth ? { auth } : {}) });
}

/**
 * What waits for what, from where each Kustomization and HelmRelease was found (`chain`: the
 * Kustomizations that yielded it). Returns the dependsOn of one unit: the Kustomizations it (or one
 * on its way) waits for, each with everything it yields, and `extra`; never itself, what it is inside
 * of, or what it yields.
 */
function dependencyKeys(
  kustomizations: readonly { key: string; chain: readonly string[] }[],
  helmReleases: readonly { key: string; chain: readonly string[] }[],
): (own: string, chain: readonly string[], waitsFor: readonly string[], extra: readonly string[]) => string[] {
  const yields = new Map<string, string[]>();
  for (const u of [...kustomizations, ...helmReleases]) {
    for (const k of u.chain) yields.set(k, [...(yields.get(k) ?? []), u.key]);
  }
  return (own, chain, waitsFor, extra) => {
    const self = chain.at(-1);
    const excluded = new Set([
      own,
      ...chain.map((k) => unitKey({ kind: "Kustomization", name: k })),
      ...(self !== undefined && own === unitKey({ kind: "Kustomization", name: self }) ? (yields.get(self) ?? []) : []),
    ]);
    const keys = [...waitsFor.flatMap((k) => [unitKey({ kind: "Kustomization", name: k }), ...(yields.get(k) ?? [])]), ...extra];
    return [...new Set(keys)].filter((k) => !excluded.has(k));
  };
}

/** Whether a HelmRelease renders the chart folder `dir` of the config repo (then the folder is that release's chart, not a unit of its own). */
function rendersChartFolder(spec: HelmReleaseSpec, dir: string, repoUrl: string | undefined): boolean {
  if (spec.chart.type !== "git" || spec.chart.path !== dir) return false;
  return readsConfigRepoChart(spec, repoUrl);
}

/** Whether a HelmRelease's chart comes from the config repo (no URL, the bootstrap GitRepository, or one at the config repo's URL). */
function readsConfigRepoChart(spec: HelmReleaseSpec, repoUrl: string | undefined): boolean {
  if (spec.chart.type !== "git") return false;
  if (spec.chart.url === undefined || (spec.sourceRef && isBootstrapSource(spec.sourceRef))) return true;
  return repoUrl !== undefined && isConfigRepoUrl(spec.chart.url, repoUrl);
}
