import { Command, Option } from "commander";
import { githubTarget, setCommitStatus, upsertPreviewComment } from "../../github/github";
import { previewRef, SkippedPreview } from "../../reconcile/preview";
import { PreviewReport, previewHasChanges } from "../../reconcile/preview-report";
import { previewStatusDescription, renderPreviewMarkdown, renderPreviewText } from "../../preview/render-preview";
import { listStackFiles, stacksDirOf } from "../../reconcile/stack-settings";
import { styler } from "../output";
import { settingsFromOptions, StackOptions, withStackOptions } from "./stack-options";
import { ensureSyncBinaries, stderrProgress } from "./sync-command";

/** Exit codes of `ferry preview`, like `terraform plan -detailed-exitcode`: CI branches on them. */
export const PREVIEW_EXIT = { noChanges: 0, changes: 1, error: 2 } as const;

/** `ferry preview`: what merging a ref would change, for pull-request review. */
export function previewCommand(): Command {
  return withStackOptions(
    new Command("preview")
      .description(
        "Show what merging a ref would change in a cluster (a refreshing `pulumi preview`; the cluster and the stack are untouched).\n" +
          "Exit codes: 0 no changes, 1 changes, 2 or more an error.",
      )
      .option("-s, --stack <name...>", "stack(s) to preview (with --base, default: every stack of the stacks folder)")
      .requiredOption("--ref <branch|sha>", "the branch or commit to preview (a pull request's head)"),
  )
    .option("--base <ref>", "only preview the stacks whose folder (or a shared folder) changed since this ref (a pull request's base)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json", "markdown"]).default("text"))
    .option("--github-comment", "create or update one ferry comment per stack on the pull request", false)
    .option("--github-status", "set a commit status (context `ferry/preview: <stack>`) on the previewed commit", false)
    .option("--github-repo <owner/name>", "GitHub repository (default: $GITHUB_REPOSITORY)")
    .option("--github-pr <number>", "pull request number (default: from $GITHUB_EVENT_PATH)")
    .option("--github-sha <sha>", "commit that gets the status (default: the pull request's head, else the previewed commit)")
    .option("--github-api-url <url>", "GitHub REST API (default: $GITHUB_API_URL, else https://api.github.com)")
    .action(async (opts: StackOptions) => {
      process.exitCode = await runPreview(opts).catch((err: unknown) => {
        process.stderr.write(`${styler(process.stderr).red("error:")} ${err instanceof Error ? err.message : String(err)}\n`);
        return PREVIEW_EXIT.error;
      });
    });
}

async function runPreview(opts: StackOptions): Promise<number> {
  const ref = opts.ref as string;
  const base = opts.base as string | undefined;
  const stacksDir = stacksDirOf(opts.stacksDir as string | undefined);
  const names = (opts.stack as string[] | undefined) ?? (base ? listStackFiles(stacksDir) : ["dev"]);
  if (names.length === 0) throw new Error(`no stacks to preview: pass --stack <name>, or add stack files to ${stacksDir}`);
  const all = names.map((n) => settingsFromOptions(n, opts));
  const github =
    opts.githubComment || opts.githubStatus
      ? githubTarget({
          repo: opts.githubRepo as string | undefined,
          pr: opts.githubPr === undefined ? undefined : Number(opts.githubPr),
          sha: opts.githubSha as string | undefined,
          apiUrl: opts.githubApiUrl as string | undefined,
        })
      : undefined;
  const binaries = await ensureSyncBinaries();
  const reports: PreviewReport[] = [];
  const skipped: SkippedPreview[] = [];
  for (const settings of all) {
    const context = `ferry/preview: ${settings.stack}`;
    if (github && opts.githubStatus && github.sha) {
      await setCommitStatus(github, { state: "pending", context, description: "previewing…" });
    }
    const r = await previewRef(settings, ref, {
      ...binaries,
      base,
      stackFolders: all.map((s) => s.path),
      progress: stderrProgress(`${settings.stack}: `),
    });
    if ("skipped" in r) {
      process.stderr.write(`skip    ${settings.stack}: the change does not touch ${settings.path} or a shared folder\n`);
      skipped.push(r);
      continue;
    }
    reports.push(r);
    if (github && opts.githubComment) {
      const c = await upsertPreviewComment(github, settings.stack, renderPreviewMarkdown(r));
      process.stderr.write(`github  ${settings.stack}: comment ${c.action} ${c.url}\n`);
    }
    if (github && opts.githubStatus) {
      const sha = github.sha ?? r.revision?.sha;
      if (sha) {
        // A ref whose files do not load is the pull request's problem (failure); anything else is ferry's (error).
        const state = r.succeeded ? "success" : r.reason === "BuildFailed" || r.reason === "GuardRefused" ? "failure" : "error";
        await setCommitStatus({ ...github, sha }, { state, context, description: previewStatusDescription(r) });
      }
    }
  }
  print(reports, skipped, opts.output as string, { multi: !!base || names.length > 1, base, ref });
  if (reports.some((r) => !r.succeeded)) return PREVIEW_EXIT.error;
  return reports.some(previewHasChanges) ? PREVIEW_EXIT.changes : PREVIEW_EXIT.noChanges;
}

function print(
  reports: readonly PreviewReport[],
  skipped: readonly SkippedPreview[],
  output: string,
  o: { multi: boolean; base?: string; ref: string },
): void {
  if (output === "json") {
    const body = o.multi
      ? { ref: o.ref, base: o.base, stacks: reports, skipped: skipped.map((s) => ({ stack: s.stack, revision: s.revision.sha })) }
      : reports[0];
    process.stdout.write(JSON.stringify(body, null, 2) + "\n");
    return;
  }
  const parts = reports.map((r) =>
    output === "markdown" ? renderPreviewMarkdown(r) : renderPreviewText(r, { color: styler(process.stdout) }),
  );
  if (o.multi && skipped.length > 0) {
    const names = skipped.map((s) => s.stack).join(", ");
    parts.push(output === "markdown" ? `_Not touched by this change: ${names}._\n` : `not touched by this change: ${names}\n`);
  }
  process.stdout.write(parts.join("\n"));
}
