import { Command, CommanderError } from "commander";
import { SettingsError } from "../reconcile/stack-settings";
import { bootstrapCommand } from "./commands/bootstrap-command";
import { demoCommand } from "./commands/demo-command";
import { devCommand } from "./commands/dev-command";
import { historyCommand, rollbackCommand } from "./commands/history-command";
import { initCommand } from "./commands/init-command";
import { operatorCommand } from "./commands/operator-command";
import { previewCommand } from "./commands/preview-command";
import { runCommand, runnerClientCommands } from "./commands/run-command";
import { syncCommand } from "./commands/sync-command";
import { toolchainCommand } from "./commands/toolchain-command";
import { EXIT, styler } from "./output";

/** The `ferry` command line. */
export function program(): Command {
  const root = new Command("ferry")
    .description("GitOps for Kubernetes on Pulumi: keeps each cluster equal to its folder in a Git repository")
    .version(require("../../../package.json").version as string)
    .addCommand(syncCommand())
    .addCommand(previewCommand())
    .addCommand(historyCommand())
    .addCommand(rollbackCommand())
    .addCommand(runCommand())
    .addCommand(operatorCommand())
    .addCommand(initCommand())
    .addCommand(demoCommand())
    .addCommand(devCommand())
    .addCommand(toolchainCommand())
    .addCommand(bootstrapCommand());
  for (const c of runnerClientCommands()) root.addCommand(c);
  // Commands added with addCommand() do not inherit settings: make every one exit through main().
  const configure = (c: Command): void => {
    c.exitOverride().showHelpAfterError();
    c.commands.forEach(configure);
  };
  configure(root);
  return root;
}

async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage mistakes exit 2.
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    const s = styler(process.stderr);
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${s.red("error:")} ${message}\n`);
    process.exitCode = err instanceof SettingsError ? EXIT.usage : EXIT.failed;
  }
}

void main(process.argv);
