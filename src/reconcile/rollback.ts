import * as os from "node:os";
import { HistoryEntry, historyEntries, resolveRollbackTarget } from "./history";
import { Pin } from "./pin";
import { openStack, stackHistory } from "./pulumi-stack";
import { ReconcileResult } from "./reconcile-result";
import { RunRuntime, runStack } from "./run-stack";
import { SyncSettings } from "./stack-settings";

/** The stack's whole history as `ferry history` shows it, newest first. */
export async function readHistory(settings: SyncSettings, pulumiRoot: string, limit = Infinity): Promise<HistoryEntry[]> {
  const stack = await openStack(
    {
      stack: settings.stack,
      pulumiRoot,
      workDir: settings.workDir,
      backendUrl: settings.backendUrl,
      env: settings.pulumiEnv,
    },
    { create: false },
  );
  return historyEntries(await stackHistory(stack)).slice(0, limit);
}

/** Who is acting, for the record: $FERRY_ACTOR, the CI's user ($GITHUB_ACTOR, $GITLAB_USER_LOGIN), else user@host. */
export function actor(env: NodeJS.ProcessEnv = process.env): string {
  return env.FERRY_ACTOR ?? env.GITHUB_ACTOR ?? env.GITLAB_USER_LOGIN ?? `${os.userInfo().username}@${os.hostname()}`;
}

/** Options of {@link rollback}. */
export interface RollbackOptions {
  /** A commit SHA (or prefix), an update number of `ferry history`, or `previous`. */
  readonly to: string;
  readonly by: string;
  /** When the pin is lifted: on `ferry resume` only, or also when the branch gets a new commit. */
  readonly policy: Pin["policy"];
}

/**
 * Goes back to a commit the stack applied successfully before: resolves the target in the stack's
 * history (refusing one that is not there), then runs the pipeline in rollback mode, which applies
 * that commit's desired state like any sync (a commit whose files no longer load is refused before
 * anything is applied), records the rollback (to, from, who) and pins the stack to it so a runner
 * does not roll it forward. Throws RollbackTargetError when the target is refused.
 */
export async function rollback(
  settings: SyncSettings,
  runtime: RunRuntime,
  options: RollbackOptions,
): Promise<ReconcileResult & { readonly target: HistoryEntry }> {
  const history = await readHistory(settings, runtime.pulumiRoot);
  const { sha, entry } = resolveRollbackTarget(history, options.to);
  const current = history.find((e) => e.result === "succeeded" && e.sha)?.sha;
  const result = await runStack(
    settings,
    { kind: "rollback", pin: { revision: sha, from: current, by: options.by, policy: options.policy } },
    runtime,
  );
  return { ...result, target: entry };
}
