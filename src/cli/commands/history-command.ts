import { Command, Option } from "commander";
import { HistoryEntry, RollbackTargetError } from "../../reconcile/history";
import { actor, readHistory, rollback } from "../../reconcile/rollback";
import { SettingsError } from "../../reconcile/stack-settings";
import { EXIT, styler } from "../output";
import { settingsFromOptions, StackOptions, withStackOptions } from "./stack-options";
import { ensureSyncBinaries, lockTimeout, printResult, stderrProgress } from "./sync-command";

/** `ferry history`: who changed what and when, from the stack's update history. */
export function historyCommand(): Command {
  return withStackOptions(
    new Command("history")
      .description("List a stack's updates: time, commit, author, subject, result, changes, and the kind of run")
      .option("-s, --stack <name>", "stack (cluster)", "dev"),
  )
    .option("-n, --limit <count>", "show only the newest <count> updates (default: all)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (opts: StackOptions) => {
      const settings = settingsFromOptions(opts.stack as string, opts);
      const entries = await readHistory(settings, (await ensureSyncBinaries()).pulumiRoot, historyLimit(opts.limit as string | undefined));
      if (opts.output === "json") return void process.stdout.write(JSON.stringify(entries, null, 2) + "\n");
      process.stdout.write(formatHistory(entries, styler(process.stdout)));
    });
}

/** `--limit`: a positive whole number, or every update when absent. */
function historyLimit(text: string | undefined): number {
  if (text === undefined) return Infinity;
  if (!/^[1-9]\d*$/.test(text)) throw new SettingsError(`--limit "${text}" is not a positive whole number`);
  return Number(text);
}

/** The text table of `ferry history`. */
export function formatHistory(entries: readonly HistoryEntry[], s = styler(process.stdout)): string {
  if (entries.length === 0) return "no updates yet\n";
  const rows = entries.map((e) => {
    const c = e.changes;
    const changes = `+${c.create} ~${c.update + c.replace} -${c.delete}`;
    const result = e.result === "succeeded" ? s.green("ok") : e.result === "failed" ? s.red("failed") : s.yellow("running");
    const subject =
      e.run === "rollback" ? `${e.subject ?? ""} (rollback from ${e.from?.slice(0, 7) ?? "?"} by ${e.by ?? "?"})` : (e.subject ?? "");
    return [
      String(e.version),
      e.startedAt.replace(/\.\d+Z$/, "Z"),
      e.run,
      (e.sha ?? "-").slice(0, 7),
      e.author ?? "-",
      result,
      changes,
      subject,
    ];
  });
  const head = ["VERSION", "TIME", "RUN", "COMMIT", "AUTHOR", "RESULT", "CHANGES", "SUBJECT"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i]!).length)));
  const line = (r: string[]) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell + " ".repeat(widths[i]! - visible(cell).length))).join("  ") + "\n";
  return line(head) + rows.map(line).join("");
}

function visible(s: string): string {
  return s.replace(/\x1b\[[0-9;]*m/g, "");
}

/** `ferry rollback`: go back to a commit the stack applied before, and hold it there. */
export function rollbackCommand(): Command {
  return withStackOptions(
    new Command("rollback")
      .description(
        "Apply the desired state of an earlier commit from the stack's history, record the rollback, and pin the stack to it\n" +
          "(a runner applies the pinned commit, not the branch, until `ferry resume <stack>`)",
      )
      .option("-s, --stack <name>", "stack (cluster)", "dev")
      .requiredOption("--to <sha|version|previous>", "a commit of the history, an update number of `ferry history`, or `previous`"),
  )
    .addOption(
      new Option("--until <event>", "lift the pin on `ferry resume` only, or also when the branch gets a new commit")
        .choices(["resume", "new-commit"])
        .default("resume"),
    )
    .option("--by <name>", "who rolls back, for the record (default: $FERRY_ACTOR, $GITHUB_ACTOR, else user@host)")
    .option("--lock-timeout <duration>", "how long to wait for another run of the stack (30s, 10m...); 0 gives up at once", "10m")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (opts: StackOptions) => {
      const settings = settingsFromOptions(opts.stack as string, opts);
      const binaries = await ensureSyncBinaries();
      try {
        const result = await rollback(
          settings,
          { ...binaries, progress: stderrProgress(), lockWaitMs: lockTimeout(opts.lockTimeout as string) },
          { to: opts.to as string, by: (opts.by as string | undefined) ?? actor(), policy: opts.until as "resume" | "new-commit" },
        );
        printResult(result, opts.output === "json");
        if (result.succeeded && opts.output !== "json") {
          process.stdout.write(
            `pinned ${settings.stack} to ${result.revision?.sha.slice(0, 7)}: \`ferry resume ${settings.stack}\` (runner) or \`ferry sync --unpin\` follows the branch again\n`,
          );
        }
        process.exitCode = result.succeeded ? EXIT.ok : EXIT.failed;
      } catch (e) {
        if (!(e instanceof RollbackTargetError)) throw e;
        process.stderr.write(`${styler(process.stderr).red("refused:")} ${e.message} (nothing was applied)\n`);
        process.exitCode = EXIT.failed;
      }
    });
}
