import { createHash } from "node:crypto";
import { RenderedUnit, SourceObject, unitKey } from "./desired-state";
import { ArgoHookPhase, HelmHook, HOOK_DELETE_POLICIES, HOOK_EVENTS, HookDeletePolicy } from "./helm-hooks";
import { ManifestError } from "./manifest-error";
import { KubeObject } from "./object-id";
import { secretObjectForms } from "./sensitive-values";

/** The annotation that makes an object an Argo CD resource hook. */
export const ARGO_HOOK = "argocd.argoproj.io/hook";
/** Argo CD's hook delete policies annotation. */
export const ARGO_HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy";
/** Argo CD's sync wave annotation: an integer, lower waves first. */
export const SYNC_WAVE = "argocd.argoproj.io/sync-wave";
/** The label ferry sets on every Argo CD hook object it creates: finds earlier instances of a `generateName` hook. */
export const HOOK_LABEL = "ferry.dev/hook";
/** The annotation ferry sets on hook objects it creates, naming the unit and hook in words (labels cannot hold them). */
export const HOOK_OF_ANNOTATION = "ferry.dev/hook-of";

const ARGO_PHASES: readonly ArgoHookPhase[] = ["PreSync", "Sync", "PostSync"];
/** Hook types Argo CD knows that ferry does not run: refused by name, never applied as objects. */
const REFUSED_TYPES = ["SyncFail", "PreDelete", "PostDelete"];
const ARGO_DELETE_POLICIES: Readonly<Record<string, HookDeletePolicy>> = {
  BeforeHookCreation: "before-hook-creation",
  HookSucceeded: "hook-succeeded",
  HookFailed: "hook-failed",
};
/** The Helm hook events Argo CD runs in a Helm application, and the phase it runs each at (gitops-engine's helm hook types). */
const HELM_TO_ARGO: Readonly<Record<string, ArgoHookPhase>> = {
  "pre-install": "PreSync",
  "pre-upgrade": "PreSync",
  "post-install": "PostSync",
  "post-upgrade": "PostSync",
};

/** What {@link splitArgoHooks} returns. */
export interface ArgoSplit {
  /** The units, their hooks moved from `objects` to `hooks` and `Skip` objects dropped. */
  readonly units: RenderedUnit[];
  readonly errors: ManifestError[];
  /** Strings of hook Secrets' data: to join the run's sensitive set. */
  readonly sensitive: string[];
}

/**
 * Splits Argo CD resource hooks out of every unit that is not a HelmRelease, as Argo CD does: an
 * object annotated `argocd.argoproj.io/hook` is a hook run at its phase (`PreSync`, `Sync`,
 * `PostSync`), not a managed object; `Skip` alone means it is not applied at all. In a chart folder
 * (an Argo CD Helm application), `helm.sh/hook` install and upgrade hooks become PreSync/PostSync
 * hooks and the other Helm hooks (tests, delete, rollback) are dropped; an Argo annotation wins over
 * Helm's. Sync waves must be integers. An object with only `metadata.generateName` is refused unless
 * it is a hook. Every refusal names the object, its file:line and the fix. Pure.
 */
export function splitArgoHooks(units: readonly RenderedUnit[]): ArgoSplit {
  const errors: ManifestError[] = [];
  const sensitive: string[] = [];
  const out = units.map((unit): RenderedUnit => {
    const objects: SourceObject[] = [];
    const hooks: HelmHook[] = [...(unit.hooks ?? [])];
    for (const o of unit.objects) {
      const what = `${unitKey(unit)}: ${describe(o.object)}`;
      const fail = (problem: string, fix: string) => errors.push(new ManifestError(o.location, `${what} ${problem}`, fix));
      if (unit.kind === "HelmRelease") {
        // helm-controller knows no Argo CD annotations: they stay annotations of managed objects.
        if (!o.object.metadata.name) fail(GENERATE_NAME, "give the object a metadata.name");
        else objects.push(o);
        continue;
      }
      const hook = classify(o.object, unit.kind === "HelmChart", fail);
      if (hook === "invalid" || hook === "dropped") continue;
      if (hook === "managed") {
        if (!o.object.metadata.name) fail(GENERATE_NAME, `give the object a metadata.name, or make it an Argo CD hook (${ARGO_HOOK})`);
        else if (validWave(o.object, fail)) objects.push(o);
        continue;
      }
      if (o.object.kind === "Secret") sensitive.push(...secretObjectForms(o.object));
      const label = hookLabel(unitKey(unit), o.object);
      const { namespace, ...others } = o.object.metadata;
      const metadata = {
        ...others,
        // Flux's targetNamespace puts every namespaced object in the unit's namespace: hooks too.
        ...(namespace !== undefined && !unit.namespace.override ? { namespace } : {}),
        labels: { ...others.labels, [HOOK_LABEL]: label },
        annotations: { ...others.annotations, [HOOK_OF_ANNOTATION]: `${unitKey(unit)}: ${describe(o.object)}` },
      };
      hooks.push({ ...hook, object: { ...o.object, metadata }, namespace: unit.namespace.namespace, label });
    }
    return { ...unit, objects, hooks: hooks.length > 0 ? hooks : undefined };
  });
  return { units: out, errors, sensitive };
}

const GENERATE_NAME =
  "has no metadata.name (only generateName), which only an Argo CD hook may have: ferry tracks every object by its name";

/** What an object of a non-HelmRelease unit is: a hook (less its label), a managed object, dropped, or refused. */
function classify(
  object: KubeObject,
  helmApp: boolean,
  fail: (problem: string, fix: string) => void,
): Omit<HelmHook, "object" | "namespace" | "label"> | "managed" | "dropped" | "invalid" {
  const annotations = object.metadata.annotations ?? {};
  const argo = annotations[ARGO_HOOK];
  const helm = helmApp ? annotations["helm.sh/hook"] : undefined;
  if (argo === undefined && helm === undefined) return "managed";
  let events: ArgoHookPhase[];
  if (argo !== undefined) {
    const types = list(argo);
    const unknown = types.filter((t) => t !== "Skip" && !ARGO_PHASES.includes(t as ArgoHookPhase) && !REFUSED_TYPES.includes(t));
    if (types.length === 0 || unknown.length > 0) {
      fail(`has ${ARGO_HOOK} "${argo}", which names no Argo CD hook type`, `use ${[...ARGO_PHASES, "Skip"].join(", ")}`);
      return "invalid";
    }
    const refused = types.filter((t) => REFUSED_TYPES.includes(t));
    if (refused.length > 0) {
      fail(
        `is an Argo CD ${refused.join(", ")} hook, which ferry does not run (it runs PreSync, Sync and PostSync hooks when a unit is installed or changed)`,
        `remove ${refused.join(", ")} from ${ARGO_HOOK}, or move that work into a PreSync or PostSync hook`,
      );
      return "invalid";
    }
    // Argo CD: `Skip` alone means "do not apply"; next to other types it adds nothing.
    if (types.every((t) => t === "Skip")) return "dropped";
    events = [...new Set(types.filter((t): t is ArgoHookPhase => t !== "Skip"))];
  } else {
    const helmEvents = list(helm ?? "");
    const unknown = helmEvents.filter((e) => !(HOOK_EVENTS as readonly string[]).includes(e));
    if (helmEvents.length === 0 || unknown.length > 0) {
      fail(`has helm.sh/hook "${helm ?? ""}", which names no Helm hook event`, `use ${HOOK_EVENTS.join(", ")}`);
      return "invalid";
    }
    events = [...new Set(helmEvents.flatMap((e) => HELM_TO_ARGO[e] ?? []))];
    // Tests, delete and rollback hooks: Argo CD never runs them in a sync, nor applies them.
    if (events.length === 0) return "dropped";
  }
  const policies: HookDeletePolicy[] = [];
  for (const p of list(annotations[ARGO_HOOK_DELETE_POLICY] ?? "")) {
    const policy = ARGO_DELETE_POLICIES[p];
    if (!policy) {
      fail(`has ${ARGO_HOOK_DELETE_POLICY} "${p}", which Argo CD does not know`, `use ${Object.keys(ARGO_DELETE_POLICIES).join(", ")}`);
      return "invalid";
    }
    policies.push(policy);
  }
  // Argo CD reads Helm's delete policies on any hook too.
  for (const p of list(annotations["helm.sh/hook-delete-policy"] ?? "")) {
    if (!(HOOK_DELETE_POLICIES as readonly string[]).includes(p)) {
      fail(`has helm.sh/hook-delete-policy "${p}", which Helm does not know`, `use ${HOOK_DELETE_POLICIES.join(", ")}`);
      return "invalid";
    }
    policies.push(p as HookDeletePolicy);
  }
  const wave = hookWave(annotations, fail);
  if (wave === undefined) return "invalid";
  return {
    events,
    weight: wave,
    // BeforeHookCreation is Argo CD's default, as before-hook-creation is Helm's.
    deletePolicies: policies.length > 0 ? [...new Set(policies)] : ["before-hook-creation"],
  };
}

/** A hook's wave: its sync wave, else its Helm hook weight (as Argo CD reads it), else 0. */
function hookWave(annotations: Readonly<Record<string, string>>, fail: (problem: string, fix: string) => void): number | undefined {
  if (annotations[SYNC_WAVE] !== undefined) return waveOf(SYNC_WAVE, annotations[SYNC_WAVE], fail);
  if (annotations["helm.sh/hook-weight"] !== undefined) return waveOf("helm.sh/hook-weight", annotations["helm.sh/hook-weight"], fail);
  return 0;
}

function validWave(object: KubeObject, fail: (problem: string, fix: string) => void): boolean {
  const text = object.metadata.annotations?.[SYNC_WAVE];
  return text === undefined || waveOf(SYNC_WAVE, text, fail) !== undefined;
}

function waveOf(annotation: string, text: string, fail: (problem: string, fix: string) => void): number | undefined {
  const wave = parseWave(text);
  if (wave === undefined) fail(`has ${annotation} "${text}", which is not a whole number`, 'write an integer in quotes, e.g. "-1" or "2"');
  return wave;
}

/** An integer as Go's strconv.Atoi reads it (Argo CD's rule), or undefined. */
function parseWave(text: string): number | undefined {
  if (!/^[+-]?\d{1,9}$/.test(text)) return undefined;
  return Number(text);
}

/**
 * An object's Argo CD sync wave (`argocd.argoproj.io/sync-wave`), 0 when it has none; an object
 * whose wave is not an integer was refused when the desired state was built. Pure.
 */
export function syncWave(object: KubeObject): number {
  const text = object.metadata.annotations?.[SYNC_WAVE];
  return text === undefined ? 0 : (parseWave(text) ?? 0);
}

/**
 * The value of a hook's `ferry.dev/hook` label: a digest of its unit and its kind and name (or
 * generateName), as a label value may hold neither slashes nor more than 63 characters. Pure.
 */
export function hookLabel(unit: string, object: KubeObject): string {
  const name = object.metadata.name || `${generateName(object)}*`;
  const identity = `${unit}/${object.apiVersion}/${object.kind}/${object.metadata.namespace ?? ""}/${name}`;
  return `h-${createHash("sha256").update(identity, "utf8").digest("hex").slice(0, 40)}`;
}

/** Kinds in Argo CD's sync order (gitops-engine's kindOrder); any other kind comes after them. */
const ARGO_KIND_ORDER = [
  "Namespace",
  "NetworkPolicy",
  "ResourceQuota",
  "LimitRange",
  "PodSecurityPolicy",
  "PodDisruptionBudget",
  "ServiceAccount",
  "Secret",
  "SecretList",
  "ConfigMap",
  "StorageClass",
  "PersistentVolume",
  "PersistentVolumeClaim",
  "CustomResourceDefinition",
  "ClusterRole",
  "ClusterRoleList",
  "ClusterRoleBinding",
  "ClusterRoleBindingList",
  "Role",
  "RoleList",
  "RoleBinding",
  "RoleBindingList",
  "Service",
  "DaemonSet",
  "Pod",
  "ReplicationController",
  "ReplicaSet",
  "Deployment",
  "HorizontalPodAutoscaler",
  "StatefulSet",
  "Job",
  "CronJob",
  "Ingress",
  "APIService",
];

/** The hooks of one Argo CD phase, in the order Argo CD runs them: wave, then kind (its sync order), then name. Pure. */
export function argoHooksFor(hooks: readonly HelmHook[], phase: ArgoHookPhase): HelmHook[] {
  const rank = (kind: string) => {
    const i = ARGO_KIND_ORDER.indexOf(kind);
    return i < 0 ? ARGO_KIND_ORDER.length : i;
  };
  const name = (h: HelmHook) => h.object.metadata.name || generateName(h.object);
  return hooks
    .filter((h) => h.events.includes(phase))
    .sort((a, b) => a.weight - b.weight || rank(a.object.kind) - rank(b.object.kind) || compare(name(a), name(b)));
}

/** `metadata.generateName`, or "". */
function generateName(object: KubeObject): string {
  const g = object.metadata.generateName;
  return typeof g === "string" ? g : "";
}

function describe(object: KubeObject): string {
  const name = object.metadata.name || `${generateName(object)}* (generateName)`;
  return `${object.kind}/${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${name}`;
}

/** Go's string order (bytes), not the locale's. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function list(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}
