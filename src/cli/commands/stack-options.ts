import { Command } from "commander";
import { resolveSyncSettings, SyncSettings } from "../../reconcile/stack-settings";

/** The options every command that opens a stack shares (sync, preview, history, rollback). */
export function withStackOptions(c: Command): Command {
  return c
    .option("--repo <url|path>", "config repo: a local path, file://, https:// or ssh:// URL (default: ferry:repo of the stack)")
    .option("--path <folder>", "cluster folder inside the config repo (default: ferry:path)")
    .option("--kubeconfig <file>", "kubeconfig of the cluster (default: ferry:kubeconfig, else $KUBECONFIG)")
    .option("--context <name>", "kubeconfig context (default: the current context)")
    .option("--cluster-identifier <id>", "stable identity of the cluster (default: the stack name)")
    .option("--backend <url>", "Pulumi backend URL (default: $PULUMI_BACKEND_URL, else a local file backend)")
    .option("--stacks-dir <dir>", "folder of the stack files (default: ferry's stacks/)");
}

/** Options parsed by {@link withStackOptions} (plus what a command adds). */
export type StackOptions = Record<string, string | boolean | string[] | undefined>;

/** Resolves a stack's settings from the shared options; `ref` is the branch the stack follows. */
export function settingsFromOptions(
  stack: string,
  opts: StackOptions,
  extra: { ref?: string; allowEmpty?: boolean; allowPrune?: boolean } = {},
): SyncSettings {
  return resolveSyncSettings({
    stack,
    repo: opts.repo as string | undefined,
    ref: extra.ref,
    path: opts.path as string | undefined,
    kubeconfig: opts.kubeconfig as string | undefined,
    context: opts.context as string | undefined,
    clusterIdentifier: opts.clusterIdentifier as string | undefined,
    backendUrl: opts.backend as string | undefined,
    stacksDir: opts.stacksDir as string | undefined,
    allowEmpty: extra.allowEmpty,
    allowPrune: extra.allowPrune,
  });
}
