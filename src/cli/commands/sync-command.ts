import { Command, Option } from "commander";
import { formatCounts } from "../../reconcile/change-summary";
import { ReconcileResult } from "../../reconcile/reconcile-result";
import { parseDuration } from "../../lib/duration";
import { Progress } from "../../reconcile/pipeline";
import { runStack, SYNC_COMPONENTS, SyncBinaries, syncBinaries } from "../../reconcile/run-stack";
import { defaultToolchainOptions, ensureToolchain } from "../../toolchain/install";
import { SettingsError } from "../../reconcile/stack-settings";
import { EXIT, styler } from "../output";
import { settingsFromOptions, StackOptions, withStackOptions } from "./stack-options";

const MARK: Record<string, string> = { created: "+", updated: "~", replaced: "+-", deleted: "-" };

/** `ferry sync`: one reconcile of a stack. */
export function syncCommand(): Command {
  return withStackOptions(
    new Command("sync")
      .description(
        "Reconcile a cluster once: fetch the config repo and apply what changed in its cluster folder since the last update (--full: refresh and update every object, which also corrects drift)",
      )
      .option("-s, --stack <name>", "stack (cluster) to reconcile", "dev")
      .option("--ref <ref>", "branch, tag or commit to apply (default: ferry:ref, else the default branch)"),
  )
    .option("--allow-empty", "allow a cluster folder with no objects (prunes everything ferry manages)", false)
    .option("--allow-prune", "allow this run to delete more than ferry:maxPruneShare (default half) of the managed objects", false)
    .option(
      "--full",
      "read every managed object from the cluster and update all of them (`pulumi up --refresh`): corrects drift made while no runner watched",
      false,
    )
    .option("--unpin", "lift a rollback's pin and apply the branch again (what `ferry resume` asks a runner to do)", false)
    .option("--lock-timeout <duration>", "how long to wait for another run of the stack (30s, 10m...); 0 gives up at once", "10m")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (opts: StackOptions) => {
      const settings = settingsFromOptions(opts.stack as string, opts, {
        ref: opts.ref as string | undefined,
        allowEmpty: opts.allowEmpty as boolean,
        allowPrune: opts.allowPrune as boolean,
      });
      const result = await runStack(
        settings,
        { kind: "apply", run: "sync", unpin: opts.unpin as boolean, scope: opts.full ? "full" : "changed" },
        { ...(await ensureSyncBinaries()), progress: stderrProgress(), lockWaitMs: lockTimeout(opts.lockTimeout as string) },
      );
      printResult(result, opts.output === "json");
      process.exitCode = result.succeeded ? EXIT.ok : EXIT.failed;
    });
}

/** The binaries a sync runs, from the toolchain (built on first use). */
export async function ensureSyncBinaries(progress?: (line: string) => void): Promise<SyncBinaries> {
  return syncBinaries(await ensureToolchain(defaultToolchainOptions({ only: SYNC_COMPONENTS, progress })));
}

/** `--lock-timeout`: a duration (`30s`, `10m`) or `0`. */
export function lockTimeout(text: string): number {
  if (text === "0") return 0;
  try {
    return parseDuration(text);
  } catch {
    throw new SettingsError(`--lock-timeout "${text}" is not a duration; write it like 30s, 10m or 1h (0 to give up at once)`);
  }
}

/** A run's progress on stderr: each phase, then a line per changed object. */
export function stderrProgress(prefix = ""): Progress {
  const err = styler(process.stderr);
  return {
    phase: (phase, detail) => {
      if (phase !== "done") process.stderr.write(`${err.bold(phase.padEnd(5))} ${prefix}${detail}\n`);
    },
    object: (s) => process.stderr.write(`  ${MARK[s.change] ?? " "} ${s.change.padEnd(8)} ${s.object}\n`),
  };
}

/** Prints a reconcile result as text (summary line) or JSON. */
export function printResult(result: ReconcileResult, json: boolean): void {
  const pin = result.pin
    ? ` (pinned by ${result.pin.by}'s rollback; \`ferry resume ${result.stack}\` or \`ferry sync --unpin\` follows the branch again)`
    : "";
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  const out = styler(process.stdout);
  const rev = result.revision ? ` at ${result.revision.sha.slice(0, 7)}` : "";
  if (result.succeeded) {
    const scope =
      result.scope?.kind === "none"
        ? ", nothing differed"
        : result.scope?.kind === "targets"
          ? `, ${result.scope.objects} object(s) touched`
          : "";
    process.stdout.write(
      `${out.green("✓")} ${result.stack} synced${rev}: ${formatCounts(result.changes!)} (${(result.durationMs / 1000).toFixed(1)}s${scope})${pin}\n`,
    );
    // Not ready is not a failure unless the unit asked to be waited for: said, not hidden.
    for (const u of result.units ?? []) {
      if (u.health === "Ready") continue;
      const what = u.objects.map((o) => `${o.object} ${o.status}: ${o.message}`).join("; ");
      process.stdout.write(`  ${u.health === "Failed" ? out.red("✗") : "…"} ${u.unit} ${u.health}: ${what}\n`);
    }
  } else {
    // Source, build and guard failures stop before Pulumi runs: the cluster was not touched. When
    // units failed but the update ran, the rest of the desired state was applied.
    const applied = result.changes
      ? ` (${result.failedUnits?.length ?? 0} unit(s) failed; the rest applied: ${formatCounts(result.changes)})`
      : result.reason === "ApplyFailed" || result.reason === "HealthCheckFailed"
        ? ""
        : " (nothing was applied)";
    process.stdout.write(`${out.red("✗")} ${result.stack} ${result.reason}${rev}${applied}:\n${result.message ?? ""}\n`);
  }
}
