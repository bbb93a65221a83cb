import { ChangeCounts } from "../reconcile/change-summary";
import { FieldDiff, PreviewObjectChange, PreviewOp, PreviewReport, previewHasChanges } from "../reconcile/preview-report";

/** Terminal colours, shaped like `styler()` in `src/cli/output.ts`; every function returns its input when colour is off. */
export interface Styler {
  readonly green: (s: string) => string;
  readonly red: (s: string) => string;
  readonly yellow: (s: string) => string;
  readonly dim: (s: string) => string;
  readonly bold: (s: string) => string;
}

/** GitHub rejects issue comments longer than this many characters. */
export const GITHUB_COMMENT_LIMIT = 65536;

const plain = (s: string): string => s;
const NO_COLOR: Styler = { green: plain, red: plain, yellow: plain, dim: plain, bold: plain };

const TEXT_VALUE_MAX = 80;
const MARKDOWN_VALUE_MAX = 300;
const MARKDOWN_FIELDS_MAX = 200;
const MARKDOWN_MESSAGE_MAX = 20_000;
const STATUS_MAX = 140;
// Room kept below the limit for the "left out" note and for renderers that count differently.
const MARKDOWN_BUDGET = GITHUB_COMMENT_LIMIT - 1_000;

const TEXT_MARK: Record<PreviewOp, string> = { create: "+", update: "~", replace: "+-", delete: "-" };
const MARKDOWN_ICON: Record<PreviewOp, string> = { create: "➕", update: "🔄", replace: "♻️", delete: "➖" };

/** The hidden first line of a stack's PR comment, by which the comment is found and updated. */
export function previewCommentMarker(stack: string): string {
  // Encoding keeps `-->` (and anything else odd) out of the HTML comment; plain stack names stay readable.
  return `<!-- ferry-preview stack=${encodeURIComponent(stack).replace(/%2F/gi, "/")} -->`;
}

/** A terminal summary of a preview, like `pulumi preview`: a header, one line per object, one per changed field. */
export function renderPreviewText(report: PreviewReport, options: { color?: Styler } = {}): string {
  const c = options.color ?? NO_COLOR;
  if (!report.succeeded) {
    const head = c.red(`✗ stack ${report.stack}: ${report.reason ?? "failed"} at ${shortRevision(report)}`);
    return report.message ? `${head}\n${report.message}` : head;
  }
  const { counts, unchangedKnown } = summaryCounts(report);
  const at = `stack ${report.stack} @ ${shortRevision(report)}${refLabel(report)}`;
  if (!previewHasChanges(report)) {
    return `${c.bold(at)}: no changes${unchangedKnown ? ` (${counts.unchanged} unchanged)` : ""}`;
  }
  const parts = [`${counts.created} to create`, `${counts.updated} to update`];
  if (counts.replaced) parts.push(`${counts.replaced} to replace`);
  parts.push(`${counts.deleted} to delete`);
  if (unchangedKnown) parts.push(`${counts.unchanged} unchanged`);
  const lines = [`${c.bold(at)}: ${parts.join(", ")}`];
  for (const o of report.objects) {
    const colour = opColour(o.op, c);
    lines.push(`${colour(TEXT_MARK[o.op].padEnd(2))} ${o.object}`);
    for (const f of o.fields) lines.push(`    ${fieldText(f, c)}`);
  }
  return lines.join("\n");
}

/** A pull-request comment body for a preview, starting with `previewCommentMarker(stack)` and kept under GitHub's size limit. */
export function renderPreviewMarkdown(report: PreviewReport): string {
  const head = [previewCommentMarker(report.stack), `### ferry preview: ${inlineCode(report.stack)}`, "", commitLine(report), ""];
  if (!report.succeeded) {
    const message = truncateMessage(report.message ?? "(no message)", MARKDOWN_MESSAGE_MAX);
    head.push(`#### ❌ preview failed: ${report.reason ?? "unknown reason"}`, "", codeBlock("text", message.split("\n")), "");
    head.push("The preview runs again on the next push.");
    return head.join("\n") + "\n";
  }
  const { counts, unchangedKnown } = summaryCounts(report);
  if (!previewHasChanges(report)) {
    head.push(`No changes: merging leaves the cluster as it is.${unchangedKnown ? ` (${counts.unchanged} objects unchanged)` : ""}`);
    return head.join("\n") + "\n";
  }
  head.push(
    "| create | update | replace | delete | unchanged |",
    "| -----: | -----: | ------: | -----: | --------: |",
    `| ${counts.created} | ${counts.updated} | ${counts.replaced} | ${counts.deleted} | ${unchangedKnown ? counts.unchanged : "?"} |`,
    "",
  );
  let body = head.join("\n") + "\n";
  const footer = `<sub>ferry preview in ${(report.durationMs / 1000).toFixed(1)} s</sub>\n`;
  let shown = 0;
  for (const o of report.objects) {
    const block = objectMarkdown(o);
    // Stop at the first block that does not fit so the objects shown stay in preview order.
    if (body.length + block.length + footer.length > MARKDOWN_BUDGET) break;
    body += block;
    shown++;
  }
  const left = report.objects.length - shown;
  if (left > 0) {
    body += `\n_…and ${left} more ${left === 1 ? "object" : "objects"} not shown: a comment is limited to ${GITHUB_COMMENT_LIMIT} characters. Run \`ferry preview\` for the full list._\n`;
  }
  return body + "\n" + footer;
}

/** A commit-status description of at most 140 characters: `3 to change (1 create, 1 update, 1 delete)`, `no changes` or `failed: <reason>: <message>`. */
export function previewStatusDescription(report: PreviewReport): string {
  if (!report.succeeded) {
    const firstLine = (report.message ?? "").split("\n", 1)[0]?.trim() ?? "";
    const head = `failed: ${report.reason ?? "unknown reason"}`;
    return shorten(firstLine ? `${head}: ${firstLine}` : head, STATUS_MAX);
  }
  if (!previewHasChanges(report)) return "no changes";
  const { counts } = summaryCounts(report);
  const parts: string[] = [];
  if (counts.created) parts.push(`${counts.created} create`);
  if (counts.updated) parts.push(`${counts.updated} update`);
  if (counts.replaced) parts.push(`${counts.replaced} replace`);
  if (counts.deleted) parts.push(`${counts.deleted} delete`);
  const total = counts.created + counts.updated + counts.replaced + counts.deleted;
  return shorten(`${total} to change (${parts.join(", ")})`, STATUS_MAX);
}

/** Counts from the report, or from its objects when the engine gave none (then `unchanged` is unknown). */
function summaryCounts(report: PreviewReport): { counts: ChangeCounts; unchangedKnown: boolean } {
  if (report.changes) return { counts: report.changes, unchangedKnown: true };
  const counts = { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 0 };
  const key = { create: "created", update: "updated", replace: "replaced", delete: "deleted" } as const;
  for (const o of report.objects) counts[key[o.op]]++;
  return { counts, unchangedKnown: false };
}

function shortRevision(report: PreviewReport): string {
  return report.revision ? report.revision.sha.slice(0, 7) : report.ref;
}

/** ` (branch feature)`, or nothing when the ref is itself a SHA or already shown. */
function refLabel(report: PreviewReport): string {
  if (!report.revision || !report.ref || isShaLike(report.ref)) return "";
  const tag = /^refs\/tags\/(.+)$/.exec(report.ref);
  if (tag) return ` (tag ${tag[1]})`;
  return ` (branch ${report.ref.replace(/^refs\/heads\//, "")})`;
}

function isShaLike(ref: string): boolean {
  return /^[0-9a-f]{7,64}$/i.test(ref);
}

function opColour(op: PreviewOp, c: Styler): (s: string) => string {
  switch (op) {
    case "create":
      return c.green;
    case "update":
      return c.yellow;
    case "replace":
      return (s) => c.bold(c.yellow(s));
    case "delete":
      return c.red;
  }
}

function fieldText(f: FieldDiff, c: Styler): string {
  switch (f.kind) {
    case "add":
      return c.green(`+ ${f.path}: ${formatValue(f.new, TEXT_VALUE_MAX)}`);
    case "delete":
      return c.red(`- ${f.path}: ${formatValue(f.old, TEXT_VALUE_MAX)}`);
    case "update":
      return c.yellow(`~ ${f.path}: ${formatValue(f.old, TEXT_VALUE_MAX)} => ${formatValue(f.new, TEXT_VALUE_MAX)}`);
  }
}

/** A value as JSON on one line, shortened; masked values stay the bare `[secret]`. */
function formatValue(value: unknown, max: number): string {
  if (value === "[secret]") return "[secret]";
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    s = undefined; // BigInt or a cycle: not JSON, but still worth showing
  }
  return shorten(s ?? String(value), max);
}

/** Cuts a string to `max` characters (code points), ending in `…` when cut. */
function shorten(s: string, max: number): string {
  const chars = Array.from(s);
  return chars.length <= max ? s : chars.slice(0, max - 1).join("") + "…";
}

function truncateMessage(s: string, max: number): string {
  return s.length <= max ? s : `${shorten(s, max)}\n(${s.length - max} more characters left out)`;
}

function commitLine(report: PreviewReport): string {
  const r = report.revision;
  if (!r) return report.ref ? `Ref ${inlineCode(report.ref)}` : "";
  const ref = report.ref && report.ref !== r.sha && !r.sha.startsWith(report.ref) ? ` on ${inlineCode(report.ref)}` : "";
  // The subject is free text from a commit: a code span keeps its Markdown, HTML and @mentions inert.
  const subject = r.subject ? `: ${inlineCode(shorten(r.subject, 200))}` : "";
  return `Commit ${inlineCode(r.sha.slice(0, 7))}${ref}${subject}`;
}

function objectMarkdown(o: PreviewObjectChange): string {
  const title = `${MARKDOWN_ICON[o.op]} ${o.op}`;
  if (o.fields.length === 0) return `- ${title} ${inlineCode(o.object)}\n`;
  const lines: string[] = [];
  for (const f of o.fields.slice(0, MARKDOWN_FIELDS_MAX)) {
    if (f.kind !== "add") lines.push(`- ${f.path}: ${formatValue(f.old, MARKDOWN_VALUE_MAX)}`);
    if (f.kind !== "delete") lines.push(`+ ${f.path}: ${formatValue(f.new, MARKDOWN_VALUE_MAX)}`);
  }
  const more = o.fields.length - MARKDOWN_FIELDS_MAX;
  if (more > 0) lines.push(`# … ${more} more fields left out`);
  const n = o.fields.length;
  // A <summary> line starts an HTML block, where Markdown is not parsed: HTML escaping is what keeps it inert.
  const summary = `${title} <code>${escapeHtml(o.object.replace(/[\r\n]+/g, " "))}</code> (${n} ${n === 1 ? "field" : "fields"})`;
  // Blank lines around the block: an HTML block runs until a blank line and would swallow a list item after it.
  return `\n<details><summary>${summary}</summary>\n\n${codeBlock("diff", lines)}\n\n</details>\n\n`;
}

/** A fenced code block whose fence is longer than any backtick run inside, so the content cannot close it. */
function codeBlock(lang: string, lines: readonly string[]): string {
  const content = lines.join("\n");
  const fence = "`".repeat(Math.max(3, longestBacktickRun(content) + 1));
  return `${fence}${lang}\n${content}\n${fence}`;
}

/** An inline code span that survives backticks and line breaks in its content. */
function inlineCode(s: string): string {
  const text = s.replace(/[\r\n]+/g, " ");
  const fence = "`".repeat(longestBacktickRun(text) + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

function longestBacktickRun(s: string): number {
  let longest = 0;
  for (const m of s.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  return longest;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
