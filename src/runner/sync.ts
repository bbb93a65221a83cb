import * as fs from "node:fs";
import { ConcurrentUpdateError } from "@pulumi/pulumi/automation";
import * as path from "node:path";
import { allObjects, DesiredState } from "../desired-state/desired-state";
import { loadConfigFolder } from "../desired-state/load-desired-state";
import { DesiredStateError, GuardError } from "../desired-state/manifest-error";
import { resourceName } from "../desired-state/object-id";
import { buildDesiredState, serializeDesiredState } from "../render/build-desired-state";
import { localRenderTools } from "../render/render-tools";
import { changeOf, countChanges, hasChanges, isKubernetesObject, objectDisplayName, StepEvent } from "./change-summary";
import { checkoutSource, redactUrl, normalizeRepoUrl, Revision } from "./git-source";
import { summarizeDiagnostics } from "./pulumi-diagnostics";
import { WatchedObject } from "./live-watch";
import { decidePrune } from "./prune-guard";
import { clearStaleLocks, repairCheckpoint } from "./stack-recovery";
import { applyStack, clearPendingCreates, openStack, previewStack, revisionEnv, snapshotStack } from "./pulumi-stack";
import { ObjectStep, ReconcileResult } from "./reconcile-result";
import { SyncSettings } from "./stack-settings";

/** What a sync reports while it runs. */
export interface SyncProgress {
  readonly phase: (phase: "fetch" | "build" | "apply" | "done", detail: string) => void;
  readonly object: (step: ObjectStep) => void;
}

/** Toolchain components a sync runs. */
export const SYNC_COMPONENTS = ["pulumi", "pulumi-resource-kubernetes", "helm", "kubectl"] as const;

/** Options of {@link sync} beyond the stack's settings. */
export interface SyncRuntime {
  readonly pulumiRoot: string;
  /** The helm and kubectl binaries the render stage runs. */
  readonly helm: string;
  readonly kubectl: string;
  readonly progress?: SyncProgress;
  readonly signal?: AbortSignal;
  /** What kind of run this is, for the update's message (sync, drift, rollback, manual). */
  readonly trigger?: string;
  /** Detect only: a refreshing preview that reports drift and changes nothing. */
  readonly detectOnly?: boolean;
  /** Heal only these objects (resource names) when all of them are in the stack: `up --target`. */
  readonly targets?: readonly string[];
  /** Receives the desired objects once they are built (the runner watches them). */
  readonly onDesired?: (objects: WatchedObject[]) => void;
}

/**
 * One reconcile of a stack:
 * 1. fetch the source and check out the commit asked for;
 * 2. build the desired state from the cluster folder (render charts and Kustomize), refusing bad
 *    input before anything is applied;
 * 3. guard against a prune that is too large, then apply with `pulumi up --refresh`, which corrects
 *    drift and prunes what Git no longer declares;
 * 4. record the change summary (the update itself carries the commit, author and subject).
 */
export async function sync(settings: SyncSettings, runtime: SyncRuntime): Promise<ReconcileResult> {
  const started = Date.now();
  const objects: ObjectStep[] = [];
  const result = (r: Omit<ReconcileResult, "stack" | "durationMs" | "objects">): ReconcileResult => ({
    stack: settings.stack,
    objects,
    durationMs: Date.now() - started,
    ...r,
  });
  const progress = runtime.progress;

  // 1. Fetch the source.
  progress?.phase("fetch", `fetching ${redactUrl(settings.repo)}${settings.ref ? ` at ${settings.ref}` : ""}`);
  let revision: Revision;
  try {
    revision = await checkoutSource({ url: settings.repo, ref: settings.ref, auth: settings.auth }, settings.checkoutDir);
  } catch (err) {
    return result({ succeeded: false, reason: "SourceFailed", message: errorMessage(err) });
  }

  // 2. Build the desired state (load, render charts and Kustomize); refuse bad input before
  //    anything touches the cluster.
  progress?.phase("build", `${revision.sha.slice(0, 7)} ${revision.subject} (${revision.author})`);
  let state: DesiredState;
  try {
    const loaded = loadConfigFolder({ checkout: settings.checkoutDir, path: settings.path });
    const tools = localRenderTools({
      helm: runtime.helm,
      kubectl: runtime.kubectl,
      kubeconfig: settings.kubeconfig,
      context: settings.context,
      cacheDir: path.join(settings.workDir, "render-cache"),
      gitAuth: settings.auth,
    });
    state = await buildDesiredState(loaded, tools, { allowEmpty: settings.allowEmpty });
  } catch (err) {
    if (err instanceof DesiredStateError || err instanceof GuardError) {
      return result({
        succeeded: false,
        reason: err instanceof GuardError ? "GuardRefused" : "BuildFailed",
        revision,
        message: err.message,
      });
    }
    return result({ succeeded: false, reason: "BuildFailed", revision, message: errorMessage(err) });
  }
  const desired = allObjects(state);
  runtime.onDesired?.(
    desired.map((o) => ({
      apiVersion: o.object.apiVersion,
      kind: o.object.kind,
      namespace: o.id.namespace,
      name: o.id.name,
      resourceName: resourceName(o.id),
    })),
  );

  // 3. Guard and apply: refresh from the cluster, then create, update and prune to match Git.
  progress?.phase("apply", `${desired.length} objects from ${settings.path}`);
  const steps: StepEvent[] = [];
  const reported = new Set<string>();
  try {
    fs.mkdirSync(settings.workDir, { recursive: true });
    const rendered = path.join(settings.workDir, "desired-state.json");
    fs.writeFileSync(rendered, serializeDesiredState(state), { mode: 0o600 });
    const config: Record<string, string> = {
      checkout: settings.checkoutDir,
      path: settings.path,
      desiredState: rendered,
      clusterIdentifier: settings.clusterIdentifier,
      allowEmpty: String(settings.allowEmpty),
    };
    if (settings.kubeconfig) config.kubeconfig = settings.kubeconfig;
    if (settings.context) config.context = settings.context;
    // Recover from a crashed run: a checkpoint left unreadable, locks of processes that are gone.
    const restored = repairCheckpoint(settings.backendUrl, "ferry", settings.stack);
    if (restored) progress?.phase("apply", `restored the stack's checkpoint from ${restored}`);
    for (const lock of clearStaleLocks(settings.backendUrl, "ferry", settings.stack))
      progress?.phase("apply", `removed a stale lock ${lock}`);
    const stack = await openStack({
      stack: settings.stack,
      pulumiRoot: runtime.pulumiRoot,
      workDir: settings.workDir,
      backendUrl: settings.backendUrl,
      env: settings.pulumiEnv,
      config,
    });
    let snapshot = await snapshotStack(stack);
    if (snapshot.pendingCreates > 0) {
      await clearPendingCreates(stack);
      progress?.phase("apply", `resolved ${snapshot.pendingCreates} create(s) left pending by an interrupted update`);
      snapshot = await snapshotStack(stack);
    }
    const managed = snapshot.managed;
    const onStep = (step: StepEvent): void => {
      steps.push(step);
      const change = changeOf(step.op);
      if (change && change !== "unchanged" && isKubernetesObject(step.type) && !reported.has(step.urn)) {
        reported.add(step.urn);
        const s = { change, object: objectDisplayName(step.urn) };
        objects.push(s);
        progress?.object(s);
      }
    };
    if (runtime.detectOnly) {
      // Detect mode: what an apply would change is the drift; nothing is applied.
      await previewStack(stack, { onStep, signal: runtime.signal });
      const changes = countChanges(steps);
      return result({
        succeeded: true,
        revision,
        changes,
        drift: hasChanges(changes),
      });
    }
    const prune = decidePrune(
      [...managed.keys()],
      desired.map((o) => resourceName(o.id)),
      settings.maxPruneShare,
      settings.allowPrune,
    );
    if (!prune.allowed) return result({ succeeded: false, reason: "GuardRefused", revision, message: prune.message });
    const targets = runtime.targets?.every((t) => managed.has(t)) ? runtime.targets.map((t) => managed.get(t)!) : undefined;
    await applyStack(stack, {
      message: `${runtime.trigger ?? "sync"} ${revision.sha.slice(0, 7)}: ${revision.subject}`,
      env: revisionEnv(revision, normalizeRepoUrl(redactUrl(settings.repo))),
      signal: runtime.signal,
      targets,
      onStep,
    });
  } catch (err) {
    // Another process is updating this stack: not a failure of the desired state; wait and retry.
    const reason = err instanceof ConcurrentUpdateError ? "Locked" : "ApplyFailed";
    return result({ succeeded: false, reason, revision, changes: countChanges(steps), message: errorMessage(err) });
  }

  // 4. Record.
  const changes = countChanges(steps);
  progress?.phase("done", "");
  return result({ succeeded: true, revision, changes });
}

function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // The Automation API's CommandError carries the whole CLI output; keep the diagnostics.
  return err.message.includes("Diagnostics:") ? summarizeDiagnostics(err.message) : err.message.trim();
}
