import { DesiredStateError, GuardError } from "../desired-state/manifest-error";
import { loadDesiredState } from "../desired-state/load-desired-state";
import { allObjects } from "../desired-state/desired-state";
import { changeOf, countChanges, isKubernetesObject, objectDisplayName, StepEvent } from "./change-summary";
import { checkoutSource, redactUrl, normalizeRepoUrl, Revision } from "./git-source";
import { summarizeDiagnostics } from "./pulumi-diagnostics";
import { applyStack, openStack, revisionEnv } from "./pulumi-stack";
import { ObjectStep, ReconcileResult } from "./reconcile-result";
import { SyncSettings } from "./stack-settings";

/** What a sync reports while it runs. */
export interface SyncProgress {
  readonly phase: (phase: "fetch" | "build" | "apply" | "done", detail: string) => void;
  readonly object: (step: ObjectStep) => void;
}

/** Options of {@link sync} beyond the stack's settings. */
export interface SyncRuntime {
  readonly pulumiRoot: string;
  readonly progress?: SyncProgress;
  readonly signal?: AbortSignal;
  /** What kind of run this is, for the update's message (sync, drift, rollback, manual). */
  readonly trigger?: string;
}

/**
 * One reconcile of a stack:
 * 1. fetch the source and check out the commit asked for;
 * 2. build the desired state from the cluster folder, refusing bad input before anything is applied;
 * 3. apply with `pulumi up --refresh`, which corrects drift and prunes what Git no longer declares;
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

  // 2. Build and validate the desired state; nothing has touched the cluster yet.
  progress?.phase("build", `${revision.sha.slice(0, 7)} ${revision.subject} (${revision.author})`);
  let objectCount: number;
  try {
    const state = loadDesiredState({ checkout: settings.checkoutDir, path: settings.path, allowEmpty: settings.allowEmpty });
    objectCount = allObjects(state).length;
  } catch (err) {
    const reason = err instanceof GuardError ? "GuardRefused" : "BuildFailed";
    if (err instanceof DesiredStateError || err instanceof GuardError)
      return result({ succeeded: false, reason, revision, message: err.message });
    return result({ succeeded: false, reason: "BuildFailed", revision, message: errorMessage(err) });
  }

  // 3. Apply: refresh from the cluster, then create, update and prune to match Git.
  progress?.phase("apply", `${objectCount} objects from ${settings.path}`);
  const steps: StepEvent[] = [];
  try {
    const config: Record<string, string> = {
      checkout: settings.checkoutDir,
      path: settings.path,
      clusterIdentifier: settings.clusterIdentifier,
      allowEmpty: String(settings.allowEmpty),
    };
    if (settings.kubeconfig) config.kubeconfig = settings.kubeconfig;
    if (settings.context) config.context = settings.context;
    const stack = await openStack({
      stack: settings.stack,
      pulumiRoot: runtime.pulumiRoot,
      workDir: settings.workDir,
      backendUrl: settings.backendUrl,
      env: settings.pulumiEnv,
      config,
    });
    await applyStack(stack, {
      message: `${runtime.trigger ?? "sync"} ${revision.sha.slice(0, 7)}: ${revision.subject}`,
      env: revisionEnv(revision, normalizeRepoUrl(redactUrl(settings.repo))),
      signal: runtime.signal,
      onStep: (step) => {
        steps.push(step);
        const change = changeOf(step.op);
        if (change && change !== "unchanged" && isKubernetesObject(step.type)) {
          const s = { change, object: objectDisplayName(step.urn) };
          objects.push(s);
          progress?.object(s);
        }
      },
    });
  } catch (err) {
    return result({ succeeded: false, reason: "ApplyFailed", revision, changes: countChanges(steps), message: errorMessage(err) });
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
