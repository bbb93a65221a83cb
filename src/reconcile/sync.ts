import * as fs from "node:fs";
import { ConcurrentUpdateError, Stack } from "@pulumi/pulumi/automation";
import * as path from "node:path";
import { allObjects, DesiredState } from "../desired-state/desired-state";
import { loadConfigFolder } from "../desired-state/load-desired-state";
import { DesiredStateError, GuardError } from "../desired-state/manifest-error";
import { resourceName } from "../desired-state/object-id";
import { buildDesiredState, serializeDesiredState } from "../render/build-desired-state";
import { localRenderTools } from "../render/render-tools";
import { changeOf, countChanges, hasChanges, isKubernetesObject, objectDisplayName, StepEvent } from "./change-summary";
import { checkoutSource, GitSource, normalizeRepoUrl, redactUrl, remoteHead, Revision } from "../source/git-source";
import { summarizeDiagnostics } from "./pulumi-diagnostics";
import { WatchedObject } from "../agent/live-watch";
import { decidePrune } from "./prune-guard";
import { clearStaleLocks, repairCheckpoint } from "./stack-recovery";
import { decideRef, Pin } from "./pin";
import {
  applyStack,
  clearPendingCreates,
  openStack,
  previewStack,
  revisionEnv,
  setProgramConfig,
  snapshotStack,
  StackSnapshot,
} from "./pulumi-stack";
import { FailureReason, ObjectStep, ReconcileResult } from "./reconcile-result";
import { SyncSettings } from "./stack-settings";
import type { Toolchain } from "../toolchain/install";
import { formatUpdateMessage, RunKind } from "./update-message";

/** What a sync reports while it runs. */
export interface SyncProgress {
  readonly phase: (phase: "fetch" | "build" | "apply" | "done", detail: string) => void;
  readonly object: (step: ObjectStep) => void;
}

/** Toolchain components a sync runs. */
export const SYNC_COMPONENTS = ["pulumi", "pulumi-resource-kubernetes", "helm", "kubectl"] as const;

/** The binaries a sync runs: the Pulumi CLI (with the provider plugin) and, to render, helm and kubectl. */
export interface SyncBinaries {
  readonly pulumiRoot: string;
  readonly helm: string;
  readonly kubectl: string;
}

/** The binaries of a sync, from a toolchain that holds {@link SYNC_COMPONENTS}. */
export function syncBinaries(toolchain: Toolchain): SyncBinaries {
  return { pulumiRoot: toolchain.pulumiRoot, helm: toolchain.bin("helm"), kubectl: toolchain.bin("kubectl") };
}

/** Options of {@link sync} beyond the stack's settings. */
export interface SyncRuntime extends SyncBinaries {
  readonly progress?: SyncProgress;
  readonly signal?: AbortSignal;
  /** What kind of run this is, for the update's message and `ferry history`. */
  readonly trigger?: RunKind;
  /** Detect only: a refreshing preview that reports drift and changes nothing. */
  readonly detectOnly?: boolean;
  /** Heal only these objects (resource names) when all of them are in the stack: `up --target`. */
  readonly targets?: readonly string[];
  /** Receives the desired objects once they are built (the runner watches them). */
  readonly onDesired?: (objects: WatchedObject[]) => void;
  /** Roll back: apply this commit and pin the stack to it. */
  readonly rollback?: Omit<Pin, "at" | "head">;
  /** Lift the stack's pin and follow its branch again. */
  readonly unpin?: boolean;
}

/**
 * One reconcile of a stack:
 * 1. open the stack and read its state: managed objects, and a pin left by `ferry rollback`;
 * 2. fetch the source and check out the commit to apply (the branch head, or the pinned commit);
 * 3. build the desired state from the cluster folder (render charts and Kustomize), refusing bad
 *    input before anything is applied;
 * 4. guard against a prune that is too large, then apply with `pulumi up --refresh`, which corrects
 *    drift and prunes what Git no longer declares;
 * 5. record the change summary (the update itself carries the commit, author and subject).
 */
export async function sync(settings: SyncSettings, runtime: SyncRuntime): Promise<ReconcileResult> {
  const started = Date.now();
  const objects: ObjectStep[] = [];
  let pin: Pin | undefined;
  const result = (r: Omit<ReconcileResult, "stack" | "durationMs" | "objects">): ReconcileResult => ({
    stack: settings.stack,
    objects,
    durationMs: Date.now() - started,
    pin,
    ...r,
  });
  const progress = runtime.progress;

  // 1. Open the stack; recover first from a crashed run (an unreadable checkpoint, stale locks).
  let stack: Stack;
  let snapshot: StackSnapshot;
  const rendered = path.join(settings.workDir, "desired-state.json");
  try {
    const restored = repairCheckpoint(settings.backendUrl, "ferry", settings.stack);
    if (restored) progress?.phase("fetch", `repaired the stack's checkpoint a crash left unreadable (${restored})`);
    for (const lock of clearStaleLocks(settings.backendUrl, "ferry", settings.stack))
      progress?.phase("fetch", `removed a stale lock ${lock}`);
    stack = await openStack({
      stack: settings.stack,
      pulumiRoot: runtime.pulumiRoot,
      workDir: settings.workDir,
      backendUrl: settings.backendUrl,
      env: settings.pulumiEnv,
    });
    snapshot = await snapshotStack(stack);
    pin = snapshot.pin;
  } catch (err) {
    return result({ succeeded: false, reason: "ApplyFailed", message: errorMessage(err) });
  }

  // 2. Fetch the source at the commit to apply: the followed branch, or the commit pinned by a rollback.
  let revision: Revision;
  let unpinned: ReconcileResult["unpinned"];
  // The pin the update will record; `pin` stays the state's until an update records this one.
  let nextPin: Pin | undefined;
  try {
    let ref: string | undefined;
    if (runtime.rollback) {
      ref = runtime.rollback.revision;
      const head = runtime.rollback.policy === "new-commit" ? await remoteHead(sourceOf(settings)) : undefined;
      nextPin = { ...runtime.rollback, at: new Date().toISOString(), head };
    } else {
      const head = pin?.policy === "new-commit" && !runtime.unpin ? await remoteHead(sourceOf(settings)) : undefined;
      const decision = decideRef({ followed: settings.ref, pin, head, unpin: runtime.unpin });
      ref = decision.ref;
      nextPin = decision.pin;
      unpinned = decision.unpinned;
    }
    progress?.phase(
      "fetch",
      `fetching ${redactUrl(settings.repo)}${ref ? ` at ${ref}` : ""}${nextPin ? ` (pinned by ${nextPin.by}'s rollback)` : ""}`,
    );
    revision = await checkoutSource({ ...sourceOf(settings), ref }, settings.checkoutDir);
  } catch (err) {
    return result({ succeeded: false, reason: "SourceFailed", message: errorMessage(err), unpinned });
  }

  // 3. Build the desired state (load, render charts and Kustomize); refuse bad input before
  //    anything touches the cluster.
  progress?.phase("build", `${revision.sha.slice(0, 7)} ${revision.subject} (${revision.author})`);
  let state: DesiredState;
  try {
    state = await buildFromCheckout(settings, runtime);
  } catch (err) {
    return buildFailure(err, (r) => result({ ...r, revision, unpinned }));
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

  // 4. Guard and apply: refresh from the cluster, then create, update and prune to match Git.
  progress?.phase("apply", `${desired.length} objects from ${settings.path}`);
  const steps: StepEvent[] = [];
  const reported = new Set<string>();
  try {
    fs.mkdirSync(settings.workDir, { recursive: true });
    fs.writeFileSync(rendered, serializeDesiredState(state), { mode: 0o600 });
    // One CLI call sets the whole configuration, the pin included: the pin travels with every update
    // while it holds (the program exports it).
    await setProgramConfig(stack, { ...programConfig(settings, rendered), pin: nextPin ? JSON.stringify(nextPin) : "" });
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
      return result({ succeeded: true, revision, changes, drift: hasChanges(changes) });
    }
    const prune = decidePrune(
      [...managed.keys()],
      desired.map((o) => resourceName(o.id)),
      settings.maxPruneShare,
      settings.allowPrune,
    );
    if (!prune.allowed) return result({ succeeded: false, reason: "GuardRefused", revision, message: prune.message, unpinned });
    const targets = runtime.targets?.every((t) => managed.has(t)) ? runtime.targets.map((t) => managed.get(t)!) : undefined;
    const kind: RunKind = runtime.rollback ? "rollback" : unpinned ? "resume" : (runtime.trigger ?? "sync");
    await applyStack(stack, {
      message: formatUpdateMessage({
        kind,
        sha: revision.sha,
        subject: revision.subject,
        from: runtime.rollback?.from,
        by: runtime.rollback?.by,
      }),
      env: revisionEnv(revision, normalizeRepoUrl(redactUrl(settings.repo))),
      signal: runtime.signal,
      targets,
      onStep,
    });
  } catch (err) {
    // Another process is updating this stack: not a failure of the desired state; wait and retry.
    const reason = err instanceof ConcurrentUpdateError ? "Locked" : "ApplyFailed";
    return result({ succeeded: false, reason, revision, changes: countChanges(steps), message: errorMessage(err), unpinned });
  }

  // 5. Record.
  pin = nextPin;
  const changes = countChanges(steps);
  progress?.phase("done", "");
  return result({ succeeded: true, revision, changes, unpinned });
}

/** The config repo of a stack as a git source. */
export function sourceOf(settings: SyncSettings): GitSource {
  return { url: settings.repo, ref: settings.ref, auth: settings.auth };
}

/** Loads and renders the cluster folder of the settings' checkout; throws what {@link buildFailure} maps. */
export async function buildFromCheckout(settings: SyncSettings, runtime: Pick<SyncRuntime, "helm" | "kubectl">): Promise<DesiredState> {
  const loaded = loadConfigFolder({ checkout: settings.checkoutDir, path: settings.path });
  const tools = localRenderTools({
    helm: runtime.helm,
    kubectl: runtime.kubectl,
    kubeconfig: settings.kubeconfig,
    context: settings.context,
    cacheDir: path.join(settings.workDir, "render-cache"),
    gitAuth: settings.auth,
  });
  return buildDesiredState(loaded, tools, { allowEmpty: settings.allowEmpty });
}

/** Maps an error of the build stage to its reason: bad input (BuildFailed) or a guard (GuardRefused). */
export function buildFailure<T>(err: unknown, result: (r: { succeeded: false; reason: FailureReason; message: string }) => T): T {
  if (err instanceof DesiredStateError || err instanceof GuardError) {
    return result({ succeeded: false, reason: err instanceof GuardError ? "GuardRefused" : "BuildFailed", message: err.message });
  }
  return result({ succeeded: false, reason: "BuildFailed", message: errorMessage(err) });
}

/** The program's `ferry:*` configuration for a stack's checkout and its rendered desired state. */
export function programConfig(settings: SyncSettings, rendered: string): Record<string, string> {
  const config: Record<string, string> = {
    checkout: settings.checkoutDir,
    path: settings.path,
    desiredState: rendered,
    clusterIdentifier: settings.clusterIdentifier,
    allowEmpty: String(settings.allowEmpty),
  };
  if (settings.kubeconfig) config.kubeconfig = settings.kubeconfig;
  if (settings.context) config.context = settings.context;
  return config;
}

/** An error's message for a result; the Automation API's CLI output is cut to its diagnostics. */
export function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // The Automation API's CommandError carries the whole CLI output; keep the diagnostics.
  return err.message.includes("Diagnostics:") ? summarizeDiagnostics(err.message) : err.message.trim();
}
