import * as fs from "node:fs";
import * as path from "node:path";
import { ConcurrentUpdateError } from "@pulumi/pulumi/automation";
import { serializeDesiredState } from "../render/build-desired-state";
import { changedPaths, checkoutSource, redactUrl, Revision } from "../source/git-source";
import { openStack, PreviewStep, previewStack } from "./pulumi-stack";
import { SyncSettings } from "./stack-settings";
import { buildFailure, buildFromCheckout, errorMessage, programConfig, sourceOf, SyncBinaries } from "./sync";
import { summarizePreview } from "./field-diffs";
import { PreviewReport } from "./preview-report";
import { touchesStack } from "./touched-stacks";

/** Options of {@link previewRef} beyond the stack's settings. */
export interface PreviewRuntime extends SyncBinaries {
  /** Only preview when the change from this ref to the previewed one touches the stack (a PR's base). */
  readonly base?: string;
  /** The cluster folders of every stack, to tell a stack's own folder from shared folders. */
  readonly stackFolders?: readonly string[];
  readonly progress?: (phase: "fetch" | "build" | "preview", detail: string) => void;
  readonly signal?: AbortSignal;
}

/** A stack the change does not touch: nothing was previewed. */
export interface SkippedPreview {
  readonly stack: string;
  readonly skipped: true;
  readonly revision: Revision;
}

/**
 * What merging `ref` would do to a stack's cluster, without changing the cluster or the stack:
 * 1. check the ref out in a folder of its own (the stack's own checkout and workspace are untouched);
 * 2. with a base, stop when the change does not touch the stack's folder or a shared folder;
 * 3. build the desired state, refusing bad input with the file and line;
 * 4. run a refreshing `pulumi preview` against the live cluster (the state is not written);
 * 5. summarise each object to create, update, replace or delete, with field diffs, secrets masked.
 */
export async function previewRef(settings: SyncSettings, ref: string, runtime: PreviewRuntime): Promise<PreviewReport | SkippedPreview> {
  const started = Date.now();
  const report = (
    r: Omit<PreviewReport, "stack" | "ref" | "durationMs" | "objects"> & { objects?: PreviewReport["objects"] },
  ): PreviewReport => ({
    stack: settings.stack,
    ref,
    objects: [],
    durationMs: Date.now() - started,
    ...r,
  });
  const root = path.join(settings.stateDir, "previews");
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, `${settings.stack}-`));
  const isolated: SyncSettings = { ...settings, checkoutDir: path.join(dir, "checkout"), workDir: path.join(dir, "workspace") };
  try {
    // 1. Fetch the ref into a checkout of its own.
    runtime.progress?.("fetch", `fetching ${redactUrl(settings.repo)} at ${ref}`);
    let revision: Revision;
    try {
      revision = await checkoutSource({ ...sourceOf(settings), ref }, isolated.checkoutDir);
    } catch (err) {
      return report({ succeeded: false, reason: "SourceFailed", message: errorMessage(err) });
    }

    // 2. With a base: does the change touch this stack?
    if (runtime.base) {
      let changed: string[];
      try {
        changed = await changedPaths(isolated.checkoutDir, runtime.base, revision.sha, settings.auth);
      } catch (err) {
        return report({ succeeded: false, reason: "SourceFailed", revision, message: errorMessage(err) });
      }
      if (!touchesStack(changed, settings.path, runtime.stackFolders ?? [settings.path])) {
        return { stack: settings.stack, skipped: true, revision };
      }
    }

    // 3. Build the desired state of the ref.
    runtime.progress?.("build", `${revision.sha.slice(0, 7)} ${revision.subject} (${revision.author})`);
    let rendered: string;
    try {
      const state = await buildFromCheckout(isolated, runtime);
      fs.mkdirSync(isolated.workDir, { recursive: true });
      rendered = path.join(isolated.workDir, "desired-state.json");
      fs.writeFileSync(rendered, serializeDesiredState(state), { mode: 0o600 });
    } catch (err) {
      return buildFailure(err, (r) => report({ ...r, revision }));
    }

    // 4. A refreshing preview in a workspace of its own.
    runtime.progress?.("preview", `pulumi preview --refresh of stack ${settings.stack}`);
    const steps: PreviewStep[] = [];
    try {
      const stack = await openStack({
        stack: settings.stack,
        pulumiRoot: runtime.pulumiRoot,
        workDir: isolated.workDir,
        backendUrl: settings.backendUrl,
        env: settings.pulumiEnv,
        config: programConfig(isolated, rendered),
      });
      await previewStack(stack, { onStep: (s) => steps.push(s), signal: runtime.signal });
    } catch (err) {
      const reason = err instanceof ConcurrentUpdateError ? "Locked" : "ApplyFailed";
      return report({ succeeded: false, reason, revision, message: errorMessage(err) });
    }

    // 5. Summarise.
    const { objects, changes } = summarizePreview(steps);
    return report({ succeeded: true, revision, changes, objects });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
