import { ManifestError, SourceLocation } from "./manifest-error";
import { KubeObject } from "./object-id";
import type { ServiceAccountRef } from "./service-account";

/** The hook events of Helm 3 (`helm.sh/hook`), and Helm 2's `crd-install`. */
export const HOOK_EVENTS = [
  "pre-install",
  "post-install",
  "pre-upgrade",
  "post-upgrade",
  "pre-delete",
  "post-delete",
  "pre-rollback",
  "post-rollback",
  "test",
  "test-success",
  "crd-install",
] as const;

/** One `helm.sh/hook` event. */
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** The Argo CD sync phases ferry runs hooks at (`argocd.argoproj.io/hook`; see `argo-hooks.ts`). */
export type ArgoHookPhase = "PreSync" | "Sync" | "PostSync";

/**
 * The events ferry runs hooks at: a HelmRelease's install and upgrade, as helm-controller does, and
 * the Argo CD sync phases of the other units.
 */
export type RunHookEvent = "pre-install" | "post-install" | "pre-upgrade" | "post-upgrade" | ArgoHookPhase;

/** The delete policies of `helm.sh/hook-delete-policy`. */
export const HOOK_DELETE_POLICIES = ["before-hook-creation", "hook-succeeded", "hook-failed"] as const;

/** One `helm.sh/hook-delete-policy`. */
export type HookDeletePolicy = (typeof HOOK_DELETE_POLICIES)[number];

/**
 * A hook object (a chart's `helm.sh/hook`, or an Argo CD `argocd.argoproj.io/hook`): not a managed
 * object; run at its events by the pipeline.
 */
export interface HelmHook {
  /** The object to create; an Argo CD hook may have only `metadata.generateName` (the server names each instance). */
  readonly object: KubeObject;
  /** The namespace it goes to when it names none and its kind is namespaced (the release's). */
  readonly namespace: string;
  /** The events ferry runs it at (never empty). */
  readonly events: readonly RunHookEvent[];
  /** `helm.sh/hook-weight` (an Argo CD hook's sync wave): lower runs first. */
  readonly weight: number;
  /** `helm.sh/hook-delete-policy`; `before-hook-creation` when the chart names none (Helm's default). */
  readonly deletePolicies: readonly HookDeletePolicy[];
  /**
   * The value of the `ferry.dev/hook` label the object carries (set on Argo CD hooks): how a hook
   * with only `generateName` finds its earlier instances to delete (`before-hook-creation`).
   */
  readonly label?: string;
  /** The ServiceAccount its release is applied as (HelmRelease `serviceAccountName`): the hook runs as it too. */
  readonly serviceAccount?: ServiceAccountRef;
}

/** What {@link splitHooks} returns: the release's objects and its hooks. */
export interface HookSplit<T> {
  readonly objects: T[];
  readonly hooks: HelmHook[];
  /** Hooks that are never run (tests, delete and rollback hooks, Helm 2's crd-install), as `Kind/name (events)`. */
  readonly notRun: string[];
}

const RUN_EVENTS: ReadonlySet<string> = new Set<RunHookEvent>(["pre-install", "post-install", "pre-upgrade", "post-upgrade"]);

/**
 * Splits a rendered chart as Helm does: objects annotated `helm.sh/hook` are hooks, never managed
 * objects. Install and upgrade hooks are kept to run; tests (Flux runs none by default), delete and
 * rollback hooks and Helm 2's `crd-install` are dropped. An unknown event, delete policy or weight is
 * refused, naming the object.
 */
export function splitHooks<T extends { readonly object: KubeObject }>(
  rendered: readonly T[],
  namespace: string,
  where: SourceLocation,
  release: string,
): HookSplit<T> {
  const objects: T[] = [];
  const hooks: HelmHook[] = [];
  const notRun: string[] = [];
  for (const r of rendered) {
    const annotations = r.object.metadata.annotations ?? {};
    const hook = annotations["helm.sh/hook"];
    if (hook === undefined) {
      objects.push(r);
      continue;
    }
    const name = `${release}: hook ${r.object.kind}/${r.object.metadata.name ?? "?"}`;
    // A hook is replaced and deleted by its name: without one, a delete would address the whole collection.
    if (!r.object.metadata.name) {
      throw new ManifestError(
        where,
        `${name} has no metadata.name (only generateName)`,
        "give the hook object a fixed name, as Helm's hooks need",
      );
    }
    const events = list(hook);
    const unknown = events.filter((e) => !(HOOK_EVENTS as readonly string[]).includes(e));
    if (unknown.length > 0 || events.length === 0) {
      throw new ManifestError(
        where,
        `${name} has helm.sh/hook "${hook}", which names no Helm hook event${unknown.length > 0 ? ` (${unknown.join(", ")})` : ""}`,
        `use ${HOOK_EVENTS.join(", ")}`,
      );
    }
    const policies = list(annotations["helm.sh/hook-delete-policy"] ?? "");
    const badPolicy = policies.filter((p) => !(HOOK_DELETE_POLICIES as readonly string[]).includes(p));
    if (badPolicy.length > 0) {
      throw new ManifestError(
        where,
        `${name} has helm.sh/hook-delete-policy "${badPolicy.join(", ")}", which Helm does not know`,
        `use ${HOOK_DELETE_POLICIES.join(", ")}`,
      );
    }
    const weightText = (annotations["helm.sh/hook-weight"] ?? "0").trim() || "0";
    if (!/^[+-]?\d+$/.test(weightText)) {
      throw new ManifestError(
        where,
        `${name} has helm.sh/hook-weight "${weightText}", which is not a whole number`,
        'write a number, e.g. "-5"',
      );
    }
    const runAt = events.filter((e): e is RunHookEvent => RUN_EVENTS.has(e));
    if (runAt.length === 0) {
      notRun.push(`${r.object.kind}/${r.object.metadata.name ?? "?"} (${events.join(", ")})`);
      continue;
    }
    hooks.push({
      object: r.object,
      namespace,
      events: runAt,
      weight: Number(weightText),
      deletePolicies: policies.length > 0 ? (policies as HookDeletePolicy[]) : ["before-hook-creation"],
    });
  }
  return { objects, hooks, notRun };
}

/** Kinds in Helm's install order (releaseutil.InstallOrder): hooks of one weight run in this order. */
const INSTALL_ORDER = [
  "PriorityClass",
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
  "IngressClass",
  "Ingress",
  "APIService",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
];

/** The hooks of one event, in the order Helm runs them (hookByWeight over a sort by kind): weight, then name, then kind's install order. */
export function hooksFor(hooks: readonly HelmHook[], event: RunHookEvent): HelmHook[] {
  const rank = (kind: string) => {
    const i = INSTALL_ORDER.indexOf(kind);
    return i < 0 ? INSTALL_ORDER.length : i;
  };
  return hooks
    .filter((h) => h.events.includes(event))
    .sort(
      (a, b) =>
        a.weight - b.weight ||
        compare(a.object.metadata.name ?? "", b.object.metadata.name ?? "") ||
        rank(a.object.kind) - rank(b.object.kind),
    );
}

/** What a run does with a hook after it ran: delete it or leave it, by its delete policy. */
export function deleteAfter(hook: HelmHook, succeeded: boolean): boolean {
  return hook.deletePolicies.includes(succeeded ? "hook-succeeded" : "hook-failed");
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
