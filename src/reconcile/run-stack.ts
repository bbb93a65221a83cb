import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { isProcessAlive } from "../lib/process-alive";
import { ClusterAccess, isNotFound, kubeConfig } from "../lib/kube-config";
import { Logger } from "../lib/log";
import { liveObjectId, resourceName } from "../desired-state/object-id";
import { impersonatedUser } from "../desired-state/service-account";
import { ClusterDiscovery } from "../render/cluster-discovery";
import { renderCheckout } from "../render/render-checkout";
import { UntypedObjectApi } from "./untyped-object-api";
import { changedPaths, checkoutSource, GitSource, normalizeRepoUrl, redactUrl, remoteHead } from "../source/git-source";
import type { Toolchain } from "../toolchain/install";
import { liveHookApi, runHelmHooks } from "./helm-hook-runner";
import { Mode, writes } from "./mode";
import { defaultPipelineOptions, PipelineOptions, Progress, reconcile } from "./pipeline";
import { Cluster, Observed, Ports, Source } from "./ports";
import { EngineSettings, pulumiEngine } from "./pulumi-stack";
import { kindName } from "./run-scope";
import { ReconcileResult } from "./reconcile-result";
import { fileStackLock } from "./stack-lock";
import { SyncSettings } from "./stack-settings";

/** Toolchain components a run needs. */
export const SYNC_COMPONENTS = ["pulumi", "pulumi-resource-kubernetes", "helm", "kubectl"] as const;

/** The binaries a run uses: the Pulumi CLI (with the provider plugin) and, to render, helm and kubectl. */
export interface SyncBinaries {
  readonly pulumiRoot: string;
  readonly helm: string;
  readonly kubectl: string;
}

/** The binaries of a run, from a toolchain that holds {@link SYNC_COMPONENTS}. */
export function syncBinaries(toolchain: Toolchain): SyncBinaries {
  return { pulumiRoot: toolchain.pulumiRoot, helm: toolchain.bin("helm"), kubectl: toolchain.bin("kubectl") };
}

/** How a caller runs a stack: the binaries, and the hooks and limits of {@link PipelineOptions}. */
export interface RunRuntime extends SyncBinaries {
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
  readonly onDesired?: PipelineOptions["onDesired"];
  /** How long to wait for another run of the stack; 0 gives up at once with `Locked`. Default 0. */
  readonly lockWaitMs?: number;
  /** Where the render stage logs each outbound fetch (with the stack and unit); ferry's own logger when absent. */
  readonly log?: Logger;
}

/** The config repo of a stack as a git source. */
export function sourceOf(settings: SyncSettings): GitSource {
  return { url: settings.repo, ref: settings.ref, auth: settings.auth };
}

/**
 * One run of a stack with the real ports: git, the render tools, the live cluster, the Pulumi
 * engine and the stack lock of this machine. Only runs that write create the stack in the backend;
 * a preview or detect of a stack the backend does not have plans against an empty state in a
 * scratch folder. A preview works in a checkout and workspace of its own. Scratch folders are
 * removed afterwards (those of killed runs at the start of the next). The program input (it holds
 * Secret data) is encrypted on disk and exists only while the engine runs the program.
 */
export async function runStack(settings: SyncSettings, mode: Mode, runtime: RunRuntime): Promise<ReconcileResult> {
  const previews = mkdirp(path.join(settings.stateDir, "previews"));
  removeAbandonedScratch(previews);
  const scratch = writes(mode) ? undefined : fs.mkdtempSync(path.join(previews, `${settings.stack}-${process.pid}-`));
  const dirs =
    scratch && mode.kind === "preview"
      ? { checkoutDir: path.join(scratch, "checkout"), workDir: path.join(scratch, "workspace") }
      : { checkoutDir: settings.checkoutDir, workDir: settings.workDir };
  const inputFile = path.join(dirs.workDir, "program-input.json");
  try {
    return await reconcile(
      mode,
      localPorts({ ...settings, ...dirs }, runtime, inputFile, {
        create: writes(mode),
        // A pull request's charts never read the cluster; the branch's do, as under helm-controller.
        clusterLookup: mode.kind !== "preview",
        emptyStateDir: scratch && path.join(scratch, "empty-state"),
      }),
      defaultPipelineOptions({
        stack: settings.stack,
        path: settings.path,
        maxPruneShare: settings.maxPruneShare,
        allowPrune: settings.allowPrune,
        lockWaitMs: writes(mode) || mode.kind === "detect" ? (runtime.lockWaitMs ?? 0) : 0,
        progress: runtime.progress,
        signal: runtime.signal,
        onDesired: runtime.onDesired,
      }),
    );
  } finally {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The real ports of a run whose checkout and workspace are the settings' folders; `stack` says
 * whether the engine may create the stack, and where it plans against an empty state if not.
 */
export function localPorts(
  settings: SyncSettings,
  binaries: SyncBinaries & { readonly log?: Logger },
  inputFile: string,
  stack: Pick<EngineSettings, "create" | "emptyStateDir"> & { readonly clusterLookup: boolean },
): Ports {
  const access: ClusterAccess = { kubeconfig: settings.kubeconfig, context: settings.context };
  return {
    source: gitSource(settings),
    renderer: {
      readsCluster: stack.clusterLookup,
      build: () =>
        renderCheckout({
          checkout: settings.checkoutDir,
          path: settings.path,
          allowEmpty: settings.allowEmpty,
          helm: binaries.helm,
          kubectl: binaries.kubectl,
          ...access,
          cacheDir: path.join(settings.workDir, "render-cache"),
          repoUrl: settings.repo,
          gitAuth: settings.auth,
          policy: settings.policy,
          clusterLookup: stack.clusterLookup,
          log: binaries.log,
          stack: settings.stack,
        }),
    },
    cluster: liveCluster(access),
    engine: pulumiEngine({
      stack: settings.stack,
      pulumiRoot: binaries.pulumiRoot,
      workDir: settings.workDir,
      backendUrl: settings.backendUrl,
      env: settings.pulumiEnv,
      config: programConfig(settings),
      inputFile,
      ...stack,
      repoUrl: normalizeRepoUrl(redactUrl(settings.repo)),
      parallel: settings.throughput.parallel,
    }),
    lock: fileStackLock(settings.stateDir, settings.stack),
  };
}

/** The stack's config repo, checked out into the settings' checkout folder. */
function gitSource(settings: SyncSettings): Source {
  const source = sourceOf(settings);
  return {
    head: () => remoteHead(source),
    checkout: (ref) => checkoutSource({ ...source, ref: ref ?? source.ref }, settings.checkoutDir),
    changedPaths: (base, head) => changedPaths(settings.checkoutDir, base, head, settings.auth),
  };
}

/** The live cluster, through its API (discovery cached for the run). */
function liveCluster(access: ClusterAccess): Cluster {
  const discovery = new ClusterDiscovery(access);
  let core: k8s.CoreV1Api | undefined;
  let api: k8s.KubernetesObjectApi | undefined;
  let untyped: UntypedObjectApi | undefined;
  const impersonating = new Map<string, UntypedObjectApi>();
  return {
    serves: async (apiVersion, kind) => (await discovery.kind(apiVersion, kind)) !== undefined,
    async runHooks(hooks, options) {
      // The hooks of one release share its account (HelmRelease serviceAccountName): run as it.
      const account = hooks.find((h) => h.serviceAccount)?.serviceAccount;
      const as = account ? { ...access, impersonate: impersonatedUser(account) } : access;
      const outcome = await runHelmHooks(hooks, liveHookApi(as, discovery), options).catch((err: unknown) => ({
        ok: false as const,
        message: err instanceof k8s.ApiException ? apiMessage(err) : err instanceof Error ? err.message : String(err),
      }));
      return outcome.ok ? undefined : outcome.message;
    },
    async dryRun(object, options) {
      const user = options?.impersonate;
      let client: UntypedObjectApi;
      if (user === undefined) client = untyped ??= kubeConfig(access).makeApiClient(UntypedObjectApi);
      else {
        client = impersonating.get(user) ?? kubeConfig({ ...access, impersonate: user }).makeApiClient(UntypedObjectApi);
        impersonating.set(user, client);
      }
      try {
        // The field manager of the provider's own applies would take ownership were this not a dry
        // run; force, as the update does (Git wins over kubectl edits).
        await client.applyDryRun(object as k8s.KubernetesObject, "ferry-dry-run");
        return undefined;
      } catch (err) {
        if (err instanceof k8s.ApiException) return apiMessage(err);
        throw err;
      }
    },
    async read(ref) {
      api ??= kubeConfig(access).makeApiClient(k8s.KubernetesObjectApi);
      try {
        const metadata = ref.namespace !== undefined ? { name: ref.name, namespace: ref.namespace } : { name: ref.name };
        return (await api.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata })) as unknown as Record<string, unknown>;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async observe(kinds) {
      api ??= kubeConfig(access).makeApiClient(k8s.KubernetesObjectApi);
      const seen = new Map<string, Observed>();
      const unlisted: string[] = [];
      for (const k of kinds) {
        try {
          const list = await api.list(k.apiVersion, k.kind, k.namespace);
          for (const item of list.items) {
            // A list's items carry no apiVersion or kind of their own.
            const id = liveObjectId({ apiVersion: k.apiVersion, kind: k.kind, metadata: item.metadata } as Parameters<
              typeof liveObjectId
            >[0]);
            if (!id) continue;
            const m = item.metadata ?? {};
            seen.set(resourceName(id), {
              ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
              ...(typeof m.generation === "number" ? { generation: m.generation } : {}),
            });
          }
        } catch {
          unlisted.push(kindName(k));
        }
      }
      return { seen, unlisted };
    },
    async uid() {
      core ??= kubeConfig(access).makeApiClient(k8s.CoreV1Api);
      return (await core.readNamespace({ name: "kube-system" })).metadata?.uid;
    },
    async hasNamespace(name) {
      core ??= kubeConfig(access).makeApiClient(k8s.CoreV1Api);
      try {
        await core.readNamespace({ name });
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
  };
}

/** The API server's message of a refused request (its Status body), else the error's text. */
function apiMessage(err: k8s.ApiException<unknown>): string {
  const body: unknown = typeof err.body === "string" ? safeJson(err.body) : err.body;
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : `HTTP ${err.code}`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The program's `ferry:*` configuration for a stack (the program input file is added by the engine). */
export function programConfig(settings: SyncSettings): Record<string, string> {
  const config: Record<string, string> = {
    checkout: settings.checkoutDir,
    path: settings.path,
    clusterIdentifier: settings.clusterIdentifier,
    allowEmpty: String(settings.allowEmpty),
    policy: JSON.stringify(settings.policy),
  };
  if (settings.kubeconfig) config.kubeconfig = settings.kubeconfig;
  if (settings.context) config.context = settings.context;
  if (settings.throughput.qps !== undefined) config.kubeClientQps = String(settings.throughput.qps);
  if (settings.throughput.burst !== undefined) config.kubeClientBurst = String(settings.throughput.burst);
  return config;
}

/** Removes the scratch folders (`<stack>-<pid>-<random>`) of runs whose process is gone: a killed preview's checkout and input. */
function removeAbandonedScratch(previews: string): void {
  for (const name of fs.readdirSync(previews)) {
    const pid = /-(\d+)-[^-]+$/.exec(name)?.[1];
    if (pid && !isProcessAlive(Number(pid))) fs.rmSync(path.join(previews, name), { recursive: true, force: true });
  }
}

function mkdirp(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
