import { createHash } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { DesiredState, DesiredUnit, unitKey } from "../desired-state/desired-state";
import { argoHooksFor, HOOK_LABEL } from "../desired-state/argo-hooks";
import { ArgoHookPhase, deleteAfter, HelmHook, hooksFor, RunHookEvent } from "../desired-state/helm-hooks";
import { KubeObject } from "../desired-state/object-id";
import { ClusterAccess, isNotFound, kubeConfig } from "../lib/kube-config";
import { ClusterDiscovery } from "../render/cluster-discovery";

/** How a hook's run went: done, or failed with why. */
export type HookOutcome = { readonly ok: true } | { readonly ok: false; readonly message: string };

/** Where a hook object stands once created: Jobs and Pods finish; anything else is done when created. */
export type HookStatus = "running" | "succeeded" | { readonly failed: string };

/** The cluster operations a hook run needs (client-node in {@link liveHookApi}, fakes in tests). */
export interface HookApi {
  /** The object with its namespace set when its kind is namespaced and it names none; throws when the kind is not served. */
  place(object: KubeObject, namespace: string): Promise<KubeObject>;
  /** Deletes the object if it exists and waits until it is gone. */
  remove(object: KubeObject, signal?: AbortSignal): Promise<void>;
  /** The objects of the hook's kind and namespace that carry `ferry.dev/hook: <label>`: its earlier instances. */
  instances(object: KubeObject, label: string): Promise<KubeObject[]>;
  /** Creates the object and returns it as the server made it (with the name it gave a `generateName` object). */
  create(object: KubeObject): Promise<KubeObject>;
  /** Creates the Namespace unless it exists. */
  ensureNamespace(namespace: KubeObject): Promise<void>;
  status(object: KubeObject): Promise<HookStatus>;
}

/** Options of {@link runHelmHook}. */
export interface HookRunOptions {
  /** How long a Job or Pod hook may run (helm-controller's default timeout: 5 minutes). */
  readonly timeoutMs: number;
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  /**
   * The Namespaces Git declares, by name: pre-install hooks run before the update that creates
   * their namespace, so it is created first when missing (the update's server-side apply then takes it over).
   */
  readonly namespaces?: ReadonlyMap<string, KubeObject>;
}

/**
 * Runs one event's hooks of a release (or one Argo CD phase's hooks of a unit) as Helm does
 * (`execHook`): in the order given (weight, then kind and name), each replaced first
 * (`before-hook-creation`: for a `generateName` hook, every earlier instance, found by its
 * `ferry.dev/hook` label), created, and waited for under the name the server gave it when it is a
 * Job or Pod (until the timeout); a failed hook stops the rest and is deleted when its policy says
 * `hook-failed`. Only once every hook succeeded are those with `hook-succeeded` deleted, in reverse
 * order: a hook Job may need the ServiceAccount or ConfigMap an earlier hook of the same event made.
 */
export async function runHelmHooks(hooks: readonly HelmHook[], api: HookApi, options: HookRunOptions): Promise<HookOutcome> {
  const ran: { hook: HelmHook; object: KubeObject }[] = [];
  for (const hook of hooks) {
    const placed = await api.place(hook.object, hook.namespace);
    const namespace = placed.metadata.namespace ? options.namespaces?.get(placed.metadata.namespace) : undefined;
    if (namespace) await api.ensureNamespace(namespace);
    if (hook.deletePolicies.includes("before-hook-creation")) {
      if (placed.metadata.name) await api.remove(placed, options.signal);
      else if (hook.label) for (const earlier of await api.instances(placed, hook.label)) await api.remove(earlier, options.signal);
    }
    const object = await api.create(placed);
    if (!object.metadata.name) return { ok: false, message: `${hookName(placed)}: the server returned no name for it` };
    const outcome = await finished(object, api, options);
    if (!outcome.ok) {
      if (deleteAfter(hook, false)) await api.remove(object, options.signal);
      return { ok: false, message: `${hookName(object)}: ${outcome.message}` };
    }
    ran.push({ hook, object });
  }
  for (const { hook, object } of ran.reverse()) if (deleteAfter(hook, true)) await api.remove(object, options.signal);
  return { ok: true };
}

/** Waits for a created hook: a Job or Pod until it finishes or the timeout passes; anything else is done. */
async function finished(object: KubeObject, api: HookApi, options: HookRunOptions): Promise<HookOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const status = await api.status(object);
    if (status === "succeeded") return { ok: true };
    if (status !== "running") return { ok: false, message: status.failed };
    if (Date.now() > deadline) return { ok: false, message: `did not finish within ${Math.round(options.timeoutMs / 1000)}s` };
    if (options.signal?.aborted) return { ok: false, message: "the run was cancelled" };
    await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
  }
}

/** One unit's hooks to run at one event (a HelmRelease's Helm event, any other unit's Argo CD phase). */
export interface ReleaseHookRun {
  /** The unit's key: `HelmRelease/<ns>/<name>`, `ManifestFile/clusters/dev/app.yaml`... */
  readonly release: string;
  readonly event: RunHookEvent;
  readonly hooks: readonly HelmHook[];
}

/**
 * Which hooks an update runs, before (`pre`) or after (`post`) it applies: a unit none of whose
 * objects the stack's state holds is installed; one with objects the update creates or changes is
 * upgraded; an unchanged one runs none (helm-controller upgrades only when the release changes; an
 * Argo CD automated sync runs only when the application is out of sync). A HelmRelease runs its
 * `pre-`/`post-install` or `-upgrade` hooks; any other unit its Argo CD `PreSync` hooks before, and
 * its `Sync` then `PostSync` hooks after.
 */
export function releaseHookRuns(
  state: DesiredState,
  when: "pre" | "post",
  managed: (unit: DesiredUnit) => { readonly installed: boolean; readonly changed: boolean },
): ReleaseHookRun[] {
  const runs: ReleaseHookRun[] = [];
  for (const unit of state.units) {
    if (!unit.hooks?.length || (unit.objects.length > 0 && unit.objects.every((o) => o.suspended))) continue;
    const { installed, changed } = managed(unit);
    if (installed && !changed) continue;
    if (unit.kind !== "HelmRelease") {
      const phases: ArgoHookPhase[] = when === "pre" ? ["PreSync"] : ["Sync", "PostSync"];
      for (const phase of phases) {
        const hooks = argoHooksFor(unit.hooks, phase);
        if (hooks.length > 0) runs.push({ release: unitKey(unit), event: phase, hooks });
      }
      continue;
    }
    const event: RunHookEvent = `${when}-${installed ? "upgrade" : "install"}`;
    const hooks = hooksFor(unit.hooks, event);
    if (hooks.length > 0) runs.push({ release: unitKey(unit), event, hooks });
  }
  return runs;
}

/**
 * A digest of each unit's hooks, recorded in the stack's outputs after an update: a unit whose
 * hooks are recorded was installed, and one whose hooks' digest differs changed, even when it has
 * no managed object to tell (a file holding only an Argo CD hook Job). Pure.
 */
export function hookDigests(state: DesiredState): Record<string, string> {
  return Object.fromEntries(
    state.units
      .filter((u) => u.hooks?.length)
      .map((u) => [unitKey(u), createHash("sha256").update(JSON.stringify(u.hooks)).digest("hex").slice(0, 32)]),
  );
}

/** `Job/ns/name` (`Job/ns/name-*` for a `generateName` hook not created yet) */
export function hookName(object: KubeObject): string {
  const ns = object.metadata.namespace;
  const generated = typeof object.metadata.generateName === "string" ? `${object.metadata.generateName}*` : "?";
  return `${object.kind}/${ns ? `${ns}/` : ""}${object.metadata.name || generated}`;
}

/** The hook operations against the live cluster, with client-node. */
export function liveHookApi(access: ClusterAccess, discovery: ClusterDiscovery): HookApi {
  let api: k8s.KubernetesObjectApi | undefined;
  const client = () => (api ??= kubeConfig(access).makeApiClient(k8s.KubernetesObjectApi));
  const read = async (object: KubeObject): Promise<k8s.KubernetesObject | undefined> => {
    try {
      return await client().read(header(object));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  return {
    async place(object, namespace) {
      const served = await discovery.kind(object.apiVersion, object.kind);
      if (!served) throw new Error(`the cluster does not serve ${object.apiVersion} ${object.kind}`);
      if (!served.namespaced || object.metadata.namespace) return object;
      return { ...object, metadata: { ...object.metadata, namespace } };
    },
    async remove(object, signal) {
      try {
        await client().delete(header(object), undefined, undefined, undefined, undefined, "Background");
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      const deadline = Date.now() + 60_000;
      while ((await read(object)) !== undefined) {
        if (Date.now() > deadline || signal?.aborted) throw new Error(`${hookName(object)} was not deleted within 60s`);
        await new Promise((r) => setTimeout(r, 300));
      }
    },
    async instances(object, label) {
      const list = await client().list(
        object.apiVersion,
        object.kind,
        object.metadata.namespace,
        undefined,
        undefined,
        undefined,
        undefined,
        `${HOOK_LABEL}=${label}`,
      );
      return list.items.map((o) => ({ ...(o as KubeObject), apiVersion: object.apiVersion, kind: object.kind }));
    },
    async create(object) {
      const created = await client().create(object as k8s.KubernetesObject, undefined, undefined, "ferry");
      return { ...(created as KubeObject), apiVersion: object.apiVersion, kind: object.kind };
    },
    async ensureNamespace(namespace) {
      if ((await read(namespace)) !== undefined) return;
      try {
        await client().create(namespace as k8s.KubernetesObject, undefined, undefined, "ferry");
      } catch (err) {
        if (!(err instanceof k8s.ApiException && err.code === 409)) throw err; // created meanwhile
      }
    },
    async status(object) {
      if (object.kind !== "Job" && object.kind !== "Pod") return "succeeded";
      const live = (await read(object)) as
        { status?: { phase?: string; conditions?: { type?: string; status?: string; message?: string }[] } } | undefined;
      if (!live) return { failed: "it was deleted while it ran" };
      if (object.kind === "Pod") {
        if (live.status?.phase === "Succeeded") return "succeeded";
        return live.status?.phase === "Failed" ? { failed: "the Pod failed" } : "running";
      }
      const conditions = live.status?.conditions ?? [];
      if (conditions.some((c) => (c.type === "Complete" || c.type === "SuccessCriteriaMet") && c.status === "True")) return "succeeded";
      const failed = conditions.find((c) => c.type === "Failed" && c.status === "True");
      return failed ? { failed: `the Job failed${failed.message ? `: ${failed.message}` : ""}` } : "running";
    },
  };
}

function header(object: KubeObject): k8s.KubernetesObject & { metadata: { name: string } } {
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: { name: object.metadata.name ?? "", ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}) },
  };
}
