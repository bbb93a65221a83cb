import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PreviewObjectChange, PreviewReport } from "../../src/reconcile/preview-report";
import {
  previewCommentMarker,
  previewStatusDescription,
  renderPreviewMarkdown,
  renderPreviewText,
  Styler,
} from "../../src/preview/render-preview";
import { Revision } from "../../src/source/git-source";

const revision: Revision = {
  sha: "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
  ref: "feature",
  author: "Ann",
  authorEmail: "ann@example.com",
  committer: "Ann",
  committerEmail: "ann@example.com",
  date: "2025-01-02T03:04:05Z",
  subject: "Say bye",
};

const changed: PreviewReport = {
  stack: "dev",
  ref: "feature",
  succeeded: true,
  revision,
  changes: { created: 1, updated: 1, replaced: 0, deleted: 1, unchanged: 5 },
  objects: [
    { op: "create", object: "ConfigMap/demo/new", fields: [] },
    {
      op: "update",
      object: "ConfigMap/demo/greeting",
      fields: [
        { path: "data.GREETING", kind: "update", old: "hello", new: "bye" },
        { path: "data.NEW", kind: "add", new: "x" },
        { path: "data.OLD", kind: "delete", old: 1 },
      ],
    },
    { op: "delete", object: "Service/demo/old", fields: [] },
  ],
  durationMs: 4200,
};

const failed: PreviewReport = {
  stack: "dev",
  ref: "feature",
  succeeded: false,
  reason: "BuildFailed",
  message: "clusters/dev/app.yaml:12:3: mapping values are not allowed here\n  image: nginx: latest",
  revision,
  objects: [],
  durationMs: 900,
};

const unchanged: PreviewReport = {
  stack: "dev",
  ref: "feature",
  succeeded: true,
  revision,
  changes: { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 5 },
  objects: [],
  durationMs: 1000,
};

/** The Markdown outside fenced code blocks, where raw HTML would be rendered. */
function outsideCodeBlocks(markdown: string): string {
  const kept: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split("\n")) {
    const m = /^(`{3,})/.exec(line);
    if (fence === undefined && m) fence = m[1];
    else if (fence !== undefined && line === fence) fence = undefined;
    else if (fence === undefined) kept.push(line);
  }
  assert.equal(fence, undefined, "every code block is closed");
  return kept.join("\n");
}

describe("preview rendering", () => {
  it("renders a terminal summary with one line per object and per changed field", () => {
    assert.equal(
      renderPreviewText(changed),
      [
        "stack dev @ 1a2b3c4 (branch feature): 1 to create, 1 to update, 1 to delete, 5 unchanged",
        "+  ConfigMap/demo/new",
        "~  ConfigMap/demo/greeting",
        '    ~ data.GREETING: "hello" => "bye"',
        '    + data.NEW: "x"',
        "    - data.OLD: 1",
        "-  Service/demo/old",
      ].join("\n"),
    );
  });

  it("colours the terminal summary only through the styler it is given", () => {
    const tag = (name: string) => (s: string) => `<${name}>${s}</${name}>`;
    const color: Styler = { green: tag("g"), red: tag("r"), yellow: tag("y"), dim: tag("d"), bold: tag("b") };
    const lines = renderPreviewText(changed, { color }).split("\n");
    assert.equal(lines[1], "<g>+ </g> ConfigMap/demo/new");
    assert.equal(lines[3], '    <y>~ data.GREETING: "hello" => "bye"</y>');
    assert.equal(lines[6], "<r>- </r> Service/demo/old");
    assert.ok(!renderPreviewText(changed).includes("\x1b"));
  });

  it("marks replacements, shortens long values and shows masked secrets bare", () => {
    const text = renderPreviewText({
      ...changed,
      changes: { created: 0, updated: 0, replaced: 1, deleted: 0, unchanged: 2 },
      objects: [
        {
          op: "replace",
          object: "Deployment/demo/web",
          fields: [
            { path: "spec.selector.matchLabels.app", kind: "update", old: "web", new: "x".repeat(200) },
            { path: "data.PASSWORD", kind: "update", old: "[secret]", new: "[secret]" },
          ],
        },
      ],
    });
    const lines = text.split("\n");
    assert.equal(lines[0], "stack dev @ 1a2b3c4 (branch feature): 0 to create, 0 to update, 1 to replace, 0 to delete, 2 unchanged");
    assert.equal(lines[1], "+- Deployment/demo/web");
    assert.equal(lines[2], `    ~ spec.selector.matchLabels.app: "web" => "${"x".repeat(78)}…`);
    assert.equal(lines[3], "    ~ data.PASSWORD: [secret] => [secret]");
  });

  it("renders a PR comment with the marker, counts, and a diff per changed object", () => {
    const md = renderPreviewMarkdown(changed);
    const lines = md.split("\n");
    assert.equal(lines[0], "<!-- ferry-preview stack=dev -->");
    assert.equal(lines[1], "### ferry preview: `dev`");
    assert.ok(md.includes("Commit `1a2b3c4` on `feature`: `Say bye`"), md);
    assert.ok(md.includes("| 1 | 1 | 0 | 1 | 5 |"), md);
    assert.ok(md.includes("- ➕ create `ConfigMap/demo/new`\n"), md);
    assert.ok(md.includes("- ➖ delete `Service/demo/old`\n"), md);
    assert.ok(
      md.includes(
        [
          "<details><summary>🔄 update <code>ConfigMap/demo/greeting</code> (3 fields)</summary>",
          "",
          "```diff",
          '- data.GREETING: "hello"',
          '+ data.GREETING: "bye"',
          '+ data.NEW: "x"',
          "- data.OLD: 1",
          "```",
          "",
          "</details>",
          "",
          "- ➖ delete `Service/demo/old`",
        ].join("\n"),
      ),
      md,
    );
    outsideCodeBlocks(md);
  });

  it("renders a failed preview with its reason and the message that names file and line", () => {
    assert.equal(
      renderPreviewText(failed),
      "✗ stack dev: BuildFailed at 1a2b3c4\nclusters/dev/app.yaml:12:3: mapping values are not allowed here\n  image: nginx: latest",
    );
    const md = renderPreviewMarkdown(failed);
    assert.ok(md.startsWith("<!-- ferry-preview stack=dev -->\n"));
    assert.ok(md.includes("❌ preview failed: BuildFailed"), md);
    assert.ok(md.includes("```text\nclusters/dev/app.yaml:12:3: mapping values are not allowed here\n  image: nginx: latest\n```"), md);
    assert.equal(previewStatusDescription(failed), "failed: BuildFailed: clusters/dev/app.yaml:12:3: mapping values are not allowed here");
  });

  it("says so when merging changes nothing", () => {
    assert.equal(renderPreviewText(unchanged), "stack dev @ 1a2b3c4 (branch feature): no changes (5 unchanged)");
    const md = renderPreviewMarkdown(unchanged);
    assert.ok(md.startsWith("<!-- ferry-preview stack=dev -->\n"));
    assert.ok(md.includes("No changes: merging leaves the cluster as it is."), md);
    assert.ok(!md.includes("<details>"));
    assert.equal(previewStatusDescription(unchanged), "no changes");
  });

  it("keeps backticks and HTML from the repo from breaking out of code", () => {
    const hostile: PreviewReport = {
      ...changed,
      revision: { ...revision, subject: "fix `x` and <b>bold</b> @alice" },
      objects: [
        {
          op: "update",
          object: "ConfigMap/demo/<script>alert(1)</script>",
          fields: [{ path: "data.SCRIPT", kind: "update", old: "```", new: "````\n</details><script>alert(2)</script>" }],
        },
        { op: "create", object: "ConfigMap/demo/`odd`", fields: [] },
      ],
    };
    const md = renderPreviewMarkdown(hostile);
    assert.ok(md.includes("<summary>🔄 update <code>ConfigMap/demo/&lt;script&gt;alert(1)&lt;/script&gt;</code> (1 field)</summary>"), md);
    // The longest backtick run in the diff is 4, so the fence is 5.
    assert.ok(md.includes('`````diff\n- data.SCRIPT: "```"\n+ data.SCRIPT: "````\\n</details><script>alert(2)</script>"\n`````\n'), md);
    assert.ok(md.includes("- ➕ create `` ConfigMap/demo/`odd` ``"), md);
    assert.ok(md.includes(": ``fix `x` and <b>bold</b> @alice``"), md);
    const rendered = outsideCodeBlocks(md);
    assert.ok(!rendered.includes("<script>"), rendered);
    assert.equal(rendered.match(/<\/details>/g)?.length, 1, "only the block's own </details> is live HTML");
  });

  it("keeps a marker's stack name inside the HTML comment", () => {
    assert.equal(previewCommentMarker("acme/infra/prod"), "<!-- ferry-preview stack=acme/infra/prod -->");
    assert.equal(previewCommentMarker("a-->b c"), "<!-- ferry-preview stack=a--%3Eb%20c -->");
  });

  it("truncates the object details to fit a GitHub comment and keeps the counts complete", () => {
    const objects: PreviewObjectChange[] = Array.from({ length: 2000 }, (_, i) => ({
      op: "update",
      object: `ConfigMap/demo/cm-${i}`,
      fields: Array.from({ length: 5 }, (_, j) => ({ path: `data.K${j}`, kind: "update", old: "o".repeat(100), new: "n".repeat(100) })),
    }));
    const big: PreviewReport = { ...changed, changes: { created: 0, updated: 2000, replaced: 0, deleted: 0, unchanged: 7 }, objects };
    const md = renderPreviewMarkdown(big);
    assert.ok(md.length < 65536, `${md.length} characters`);
    assert.ok(md.includes("| 0 | 2000 | 0 | 0 | 7 |"));
    const shown = md.match(/<details>/g)?.length ?? 0;
    assert.ok(shown > 10 && shown < 2000, `${shown} shown`);
    assert.ok(md.includes(`…and ${2000 - shown} more objects not shown`), md.slice(-500));
    assert.ok(md.includes("<code>ConfigMap/demo/cm-0</code>"), "the first objects are the ones shown");
    outsideCodeBlocks(md);

    const long = renderPreviewMarkdown({ ...failed, message: "clusters/dev/a.yaml:1:1: bad\n" + "x".repeat(200_000) });
    assert.ok(long.length < 65536, `${long.length} characters`);
    assert.ok(long.includes("clusters/dev/a.yaml:1:1: bad"));
  });

  it("describes a preview for a commit status in at most 140 characters", () => {
    assert.equal(previewStatusDescription(changed), "3 to change (1 create, 1 update, 1 delete)");
    const long = previewStatusDescription({ ...failed, message: `clusters/dev/app.yaml:1:1: ${"y".repeat(500)}\nsecond line` });
    assert.equal(Array.from(long).length, 140);
    assert.ok(long.startsWith("failed: BuildFailed: clusters/dev/app.yaml:1:1: yyy"));
    assert.ok(long.endsWith("y…"));
  });
});
