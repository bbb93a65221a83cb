import { Revision } from "../source/git-source";
import { summarizePreview } from "./field-diffs";
import { PreviewReport } from "./preview-report";
import { RunRuntime, runStack } from "./run-stack";
import { SyncSettings } from "./stack-settings";

/** Options of {@link previewRef} beyond the stack's settings. */
export interface PreviewRuntime extends Omit<RunRuntime, "onDesired" | "lockWaitMs"> {
  /** Only preview when the change from this ref to the previewed one touches the stack (a PR's base). */
  readonly base?: string;
  /** The cluster folders of every stack, to tell a stack's own folder from shared folders. */
  readonly stackFolders?: readonly string[];
}

/** A stack the change does not touch: nothing was previewed. */
export interface SkippedPreview {
  readonly stack: string;
  readonly skipped: true;
  readonly revision: Revision;
}

/**
 * What merging `ref` would do to a stack's cluster, without changing the cluster or the stack: the
 * pipeline in preview mode (its own checkout and workspace, a refreshing plan, the same guards and
 * dry run as an apply), summarised per object with field diffs, secrets masked.
 */
export async function previewRef(settings: SyncSettings, ref: string, runtime: PreviewRuntime): Promise<PreviewReport | SkippedPreview> {
  const result = await runStack(settings, { kind: "preview", ref, base: runtime.base, stackFolders: runtime.stackFolders }, runtime);
  if (result.skipped && result.revision) return { stack: settings.stack, skipped: true, revision: result.revision };
  const { objects, changes } = summarizePreview(result.planned ?? []);
  return {
    stack: settings.stack,
    ref,
    succeeded: result.succeeded,
    reason: result.reason,
    message: result.message,
    revision: result.revision,
    changes: result.succeeded ? changes : undefined,
    objects: result.succeeded ? objects : [],
    durationMs: result.durationMs,
  };
}
