import { Command, Option } from "commander";
import { formatCounts } from "../../runner/change-summary";
import { ReconcileResult } from "../../runner/reconcile-result";
import { resolveSyncSettings } from "../../runner/stack-settings";
import { sync, SYNC_COMPONENTS } from "../../runner/sync";
import { defaultToolchainOptions, ensureToolchain } from "../../toolchain/install";
import { EXIT, styler } from "../output";

const MARK: Record<string, string> = { created: "+", updated: "~", replaced: "+-", deleted: "-" };

/** `ferry sync`: one reconcile of a stack. */
export function syncCommand(): Command {
  return new Command("sync")
    .description("Reconcile a cluster once: fetch the config repo, then `pulumi up --refresh` its cluster folder")
    .option("-s, --stack <name>", "stack (cluster) to reconcile", "dev")
    .option("--repo <url|path>", "config repo: a local path, file://, https:// or ssh:// URL (default: ferry:repo of the stack)")
    .option("--ref <ref>", "branch, tag or commit to apply (default: ferry:ref, else the default branch)")
    .option("--path <folder>", "cluster folder inside the config repo (default: ferry:path)")
    .option("--kubeconfig <file>", "kubeconfig of the cluster (default: ferry:kubeconfig, else $KUBECONFIG)")
    .option("--context <name>", "kubeconfig context (default: the current context)")
    .option("--cluster-identifier <id>", "stable identity of the cluster (default: the stack name)")
    .option("--backend <url>", "Pulumi backend URL (default: $PULUMI_BACKEND_URL, else a local file backend)")
    .option("--stacks-dir <dir>", "folder of the stack files (default: ferry's stacks/)")
    .option("--allow-empty", "allow a cluster folder with no objects (prunes everything ferry manages)", false)
    .option("--allow-prune", "allow this run to delete more than ferry:maxPruneShare (default half) of the managed objects", false)
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const settings = resolveSyncSettings({
        stack: opts.stack as string,
        repo: opts.repo as string | undefined,
        ref: opts.ref as string | undefined,
        path: opts.path as string | undefined,
        kubeconfig: opts.kubeconfig as string | undefined,
        context: opts.context as string | undefined,
        clusterIdentifier: opts.clusterIdentifier as string | undefined,
        backendUrl: opts.backend as string | undefined,
        stacksDir: opts.stacksDir as string | undefined,
        allowEmpty: opts.allowEmpty as boolean,
        allowPrune: opts.allowPrune as boolean,
      });
      const toolchain = await ensureToolchain(defaultToolchainOptions({ only: SYNC_COMPONENTS }));
      const err = styler(process.stderr);
      const result = await sync(settings, {
        pulumiRoot: toolchain.pulumiRoot,
        helm: toolchain.bin("helm"),
        kubectl: toolchain.bin("kubectl"),
        progress: {
          phase: (phase, detail) => {
            if (phase !== "done") process.stderr.write(`${err.bold(phase.padEnd(5))} ${detail}\n`);
          },
          object: (s) => process.stderr.write(`  ${MARK[s.change] ?? " "} ${s.change.padEnd(8)} ${s.object}\n`),
        },
      });
      printResult(result, opts.output === "json");
      process.exitCode = result.succeeded ? EXIT.ok : EXIT.failed;
    });
}

/** Prints a reconcile result as text (summary line) or JSON. */
export function printResult(result: ReconcileResult, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  const out = styler(process.stdout);
  const rev = result.revision ? ` at ${result.revision.sha.slice(0, 7)}` : "";
  if (result.succeeded) {
    process.stdout.write(
      `${out.green("✓")} ${result.stack} synced${rev}: ${formatCounts(result.changes!)} (${(result.durationMs / 1000).toFixed(1)}s)\n`,
    );
  } else {
    // Source, build and guard failures stop before Pulumi runs: the cluster was not touched.
    const untouched = result.reason === "ApplyFailed" ? "" : " (nothing was applied)";
    process.stdout.write(`${out.red("✗")} ${result.stack} ${result.reason}${rev}${untouched}:\n${result.message ?? ""}\n`);
  }
}
