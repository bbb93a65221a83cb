// End to end: `ferry preview` of branches against a live cluster, and posting to a pull request.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { PreviewReport } from "../../src/reconcile/preview-report";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";
import { FakeGitHub, startFakeGitHub } from "../helpers/fake-github";

const secret = (value: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: web-credentials, namespace: demo}\nstringData: {password: "${value}"}\n`;
const worker = `apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec: {containers: [{name: worker, image: "busybox:1.36"}]}
`;

describe("ferry preview", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  let github: FakeGitHub;
  let stacksDir: string;

  /** What a preview must not change: the stack's state and the live objects (uid and resourceVersion). */
  const fingerprint = async (): Promise<string> => {
    const e = env();
    const exported = await e.pulumi("dev", ["stack", "export"]);
    const deployment = JSON.parse(exported) as { deployment: { resources?: { urn: string; outputs?: unknown }[] } };
    const live = await e.getJson<{ items: { kind: string; metadata: { name: string; uid: string; resourceVersion: string } }[] }>(
      "configmap,secret,deployment,service",
      "-n",
      "demo",
    );
    return JSON.stringify({
      state: deployment.deployment.resources?.map((r) => [r.urn, r.outputs]),
      live: live.items.map((o) => [o.kind, o.metadata.name, o.metadata.uid, o.metadata.resourceVersion]).sort(),
    });
  };
  const preview = async (ref: string, ...extra: string[]) => previewWith({}, ref, ...extra);
  const previewWith = async (extraEnv: NodeJS.ProcessEnv, ref: string, ...extra: string[]) => {
    const e = env();
    const args = ["--stack", "dev", "--ref", ref, "--repo", repo.dir, "--path", "clusters/dev", "--kubeconfig", e.cluster.kubeconfig];
    return e.ferry(["preview", ...args, ...extra], extraEnv);
  };
  const previewJson = async (ref: string, ...extra: string[]) => {
    const r = await preview(ref, "-o", "json", ...extra);
    try {
      return { code: r.code, report: JSON.parse(r.stdout) as PreviewReport, stderr: r.stderr };
    } catch {
      throw new Error(`ferry preview printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
  };

  before(async () => {
    const e = env();
    github = await startFakeGitHub();
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "foundation");
    await repo.commitStep("step1", "Add the web app");
    await repo.edit({ "clusters/dev/web/secret.yaml": secret("s3cr3t-old") }).commitAll("Add the web credentials");
    const { code, result } = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(code, 0, result.message);
    stacksDir = path.join(e.dir, "stacks");
    fs.mkdirSync(stacksDir);
    for (const name of ["dev", "staging"]) {
      fs.writeFileSync(
        path.join(stacksDir, `Pulumi.${name}.yaml`),
        `config:\n  ferry:repo: ${repo.dir}\n  ferry:path: clusters/${name}\n  ferry:kubeconfig: ${e.cluster.kubeconfig}\n`,
      );
    }
  });
  after(async () => {
    await github?.close();
  });

  it("previews a branch that changes a ConfigMap, adds a Deployment and removes a Service: exactly those three, exit 1, nothing touched", async () => {
    await repo.checkout("feature", true);
    const cm = fs.readFileSync(path.join(repo.dir, "clusters/dev/web/configmap.yaml"), "utf8");
    const sha = await repo
      .edit({
        "clusters/dev/web/configmap.yaml": cm.replace("hello from git", "hello from the feature branch"),
        "clusters/dev/web/worker.yaml": worker,
        "clusters/dev/web/service.yaml": undefined,
      })
      .commitAll("Feature: new worker, no service");
    await repo.checkout("main");
    const before = await fingerprint();

    const { code, report } = await previewJson("feature");
    assert.equal(code, 1, report.message);
    assert.equal(report.revision?.sha, sha);
    assert.deepEqual(report.changes, { created: 1, updated: 1, replaced: 0, deleted: 1, unchanged: 3 });
    const ops = report.objects.map((o) => `${o.op} ${o.object}`).sort();
    assert.deepEqual(ops, ["create Deployment/demo/worker", "delete Service/demo/web", "update ConfigMap/demo/web-settings"]);
    const update = report.objects.find((o) => o.op === "update")!;
    assert.deepEqual(update.fields, [
      { path: "data.GREETING", kind: "update", old: "hello from git", new: "hello from the feature branch" },
    ]);

    const text = await preview("feature");
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^~\s+ConfigMap\/demo\/web-settings$/m);
    assert.match(text.stdout, /data\.GREETING: "hello from git" => "hello from the feature branch"/);

    assert.equal(await fingerprint(), before, "the preview changed the cluster or the stack's state");
    assert.equal(await env().exists("deployment", "worker", "-n", "demo"), false);
  });

  it("exits 0 for a branch with no changes", async () => {
    await repo.checkout("docs-only", true);
    await repo.edit({ "README.md": "# config\n" }).commitAll("Docs only");
    await repo.checkout("main");
    const { code, report } = await previewJson("docs-only");
    assert.equal(code, 0, report.message);
    assert.deepEqual(report.objects, []);
    assert.equal(report.changes?.unchanged, 5);
  });

  it("exits 2 for a branch with broken YAML and names the file and line", async () => {
    await repo.checkout("broken", true);
    await repo.edit({ "clusters/dev/web/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n" }).commitAll("Broken");
    await repo.checkout("main");
    const before = await fingerprint();
    const { code, report } = await previewJson("broken");
    assert.equal(code, 2);
    assert.equal(report.reason, "BuildFailed");
    assert.match(report.message ?? "", /clusters\/dev\/web\/broken\.yaml:\d+/);
    assert.equal(await fingerprint(), before);
  });

  it("masks secret values in field diffs", async () => {
    await repo.checkout("rotate", true);
    await repo.edit({ "clusters/dev/web/secret.yaml": secret("s3cr3t-new") }).commitAll("Rotate the password");
    await repo.checkout("main");
    const r = await preview("rotate", "-o", "json");
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as PreviewReport;
    const change = report.objects.find((o) => o.object === "Secret/demo/web-credentials");
    assert.equal(change?.op, "update");
    assert.ok(change.fields.length > 0, JSON.stringify(change));
    for (const f of change.fields) if (f.kind !== "delete") assert.equal(f.new, "[secret]");
    const md = await preview("rotate", "-o", "markdown");
    for (const out of [r.stdout, md.stdout, r.stderr, md.stderr]) {
      assert.doesNotMatch(out, /s3cr3t/);
      assert.doesNotMatch(out, new RegExp(Buffer.from("s3cr3t-old").toString("base64")));
    }
  });

  it("with --base, previews only the stacks the change touches", async () => {
    const r = await env().ferry(["preview", "--base", "main", "--ref", "feature", "--stacks-dir", stacksDir, "-o", "json"]);
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as { stacks: PreviewReport[]; skipped: { stack: string }[] };
    assert.deepEqual(
      out.stacks.map((s) => s.stack),
      ["dev"],
    );
    assert.deepEqual(
      out.skipped.map((s) => s.stack),
      ["staging"],
    );
  });

  it("creates one comment on the pull request and updates it in place on the next push, and sets a commit status", async () => {
    github.addComment("acme/config", 7, "LGTM, but let's see the preview", "bob");
    const post = (sha: string) =>
      previewWith(
        { GITHUB_TOKEN: "test-token", GITHUB_API_URL: github.url },
        sha,
        ...["--github-comment", "--github-status", "--github-repo", "acme/config", "--github-pr", "7", "--github-sha", sha],
      );
    const head1 = await (await repo.checkout("feature")).head();
    const first = await post(head1);
    assert.equal(first.code, 1, first.stderr);
    let comments = github.comments("acme/config", 7);
    assert.equal(comments.length, 2);
    const ours = comments.find((c) => c.body.includes("ferry-preview stack=dev"))!;
    assert.ok(ours.body.includes(head1.slice(0, 7)));
    assert.match(ours.body, /Deployment\/demo\/worker/);

    // The next push to the pull request: the same comment is updated, not a new one added.
    const head2 = await repo
      .edit({ "clusters/dev/web/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: demo}\ndata: {a: b}\n" })
      .commitAll("Add an extra ConfigMap");
    await repo.checkout("main");
    const second = await post(head2);
    assert.equal(second.code, 1, second.stderr);
    comments = github.comments("acme/config", 7);
    assert.equal(comments.length, 2, "a second ferry comment was added instead of updating the first");
    const updated = comments.find((c) => c.id === ours.id)!;
    assert.ok(updated.body.includes(head2.slice(0, 7)));
    assert.match(updated.body, /ConfigMap\/demo\/extra/);
    assert.ok(comments.some((c) => c.body === "LGTM, but let's see the preview"));
    const writes = github.requests.filter((r) => r.method !== "GET" && r.path.includes("/comments"));
    assert.deepEqual(
      writes.map((r) => r.method),
      ["POST", "PATCH"],
    );
    const statuses = github.statuses(head2);
    assert.deepEqual(
      statuses.map((s) => s.state),
      ["pending", "success"],
    );
    assert.equal(statuses.at(-1)?.context, "ferry/preview: dev");
    assert.match(String(statuses.at(-1)?.description), /to change/);
  });
});
