import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { backoffDelay } from "../../src/agent/backoff";
import { notificationBody } from "../../src/agent/notifier";
import { loadRunnerConfig } from "../../src/agent/runner-config";
import { parseDuration } from "../../src/lib/duration";
import { isStaleLock } from "../../src/reconcile/stack-recovery";
import { pushedBranch, verifyWebhook } from "../../src/agent/webhook";
import { decidePrune } from "../../src/reconcile/prune-guard";
import { tempDir } from "../helpers/temp-dir";

const body = Buffer.from(JSON.stringify({ ref: "refs/heads/main" }));
const hmac = (secret: string) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

describe("webhook verification", () => {
  it("accepts only the right signature for each receiver", () => {
    assert.equal(verifyWebhook("github", { "x-hub-signature-256": hmac("s") }, body, "s"), true);
    assert.equal(verifyWebhook("github", { "x-hub-signature-256": hmac("other") }, body, "s"), false);
    assert.equal(verifyWebhook("github", {}, body, "s"), false);
    assert.equal(verifyWebhook("generic", { "x-signature": hmac("s") }, body, "s"), true);
    assert.equal(verifyWebhook("generic", { "x-hub-signature-256": hmac("s") }, body, "s"), false);
    assert.equal(verifyWebhook("gitlab", { "x-gitlab-token": "s" }, body, "s"), true);
    assert.equal(verifyWebhook("gitlab", { "x-gitlab-token": "s2" }, body, "s"), false);
    // No secret configured: every push is refused.
    assert.equal(verifyWebhook("gitlab", { "x-gitlab-token": "" }, body, ""), false);
  });

  it("reads the pushed branch", () => {
    assert.equal(pushedBranch(body), "main");
    assert.equal(pushedBranch(Buffer.from('{"ref":"refs/tags/v1"}')), undefined);
    assert.equal(pushedBranch(Buffer.from("not json")), undefined);
  });
});

describe("runner decisions", () => {
  it("backs off exponentially with jitter, capped", () => {
    assert.equal(
      backoffDelay(1, 1000, 60_000, () => 0.5),
      1000,
    );
    assert.equal(
      backoffDelay(3, 1000, 60_000, () => 0.5),
      4000,
    );
    assert.equal(
      backoffDelay(20, 1000, 60_000, () => 0.5),
      60_000,
    );
    assert.equal(
      backoffDelay(3, 1000, 60_000, () => 0),
      3200,
    );
    assert.equal(
      backoffDelay(3, 1000, 60_000, () => 1),
      4800,
    );
  });

  it("refuses a prune of more than the allowed share unless allowed", () => {
    assert.equal(decidePrune(["a", "b", "c", "d"], ["a", "b"], 0.5, false).allowed, true);
    const refused = decidePrune(["a", "b", "c", "d"], ["a"], 0.5, false);
    assert.equal(refused.allowed, false);
    assert.match(refused.message ?? "", /would delete 3 of the 4 objects ferry manages \(75%/);
    assert.equal(decidePrune(["a", "b", "c", "d"], ["a"], 0.5, true).allowed, true);
    assert.equal(decidePrune([], ["a"], 0.5, false).allowed, true);
  });

  it("clears only locks of dead processes of this host", () => {
    const alive = (pid: number) => pid === 1;
    assert.equal(isStaleLock({ pid: 99, hostname: "h" }, "h", alive), true);
    assert.equal(isStaleLock({ pid: 1, hostname: "h" }, "h", alive), false);
    assert.equal(isStaleLock({ pid: 99, hostname: "other" }, "h", alive), false);
  });

  it("formats Slack and generic notifications", () => {
    const n = { stack: "prod", event: "drift" as const, message: "ConfigMap/a changed", revision: "0123456789abcdef" };
    assert.deepEqual(notificationBody({ type: "slack", url: "http://x" }, n), {
      text: ":warning: ferry prod: drift at 0123456: ConfigMap/a changed",
    });
    assert.equal((notificationBody({ type: "generic", url: "http://x" }, n) as { event: string }).event, "drift");
  });
});

describe("runner config", () => {
  it("applies defaults and reads durations", () => {
    const dir = tempDir();
    const file = path.join(dir, "ferry.yaml");
    fs.writeFileSync(file, "stacks:\n  - {name: prod, repo: https://example.com/r.git, path: clusters/prod, kubeconfig: kc}\n");
    const c = loadRunnerConfig(file, { FERRY_WEBHOOK_SECRET: "s" });
    assert.equal(c.listen, "127.0.0.1:8080");
    assert.equal(c.stacks[0]?.pollInterval, 60_000);
    assert.equal(c.stacks[0]?.driftInterval, 300_000);
    assert.equal(c.stacks[0]?.mode, "enforce");
    assert.equal(c.stacks[0]?.kubeconfig, path.join(dir, "kc"));
    assert.equal(c.webhookSecret, "s");
    assert.equal(parseDuration("90s"), 90_000);
  });

  it("says what to fix in an invalid file", () => {
    const dir = tempDir();
    const file = path.join(dir, "ferry.yaml");
    fs.writeFileSync(file, "stacks:\n  - {name: 'bad name', repo: r, path: p, mode: sometimes, pollInterval: soon}\n");
    assert.throws(
      () => loadRunnerConfig(file, {}),
      (err: unknown) => {
        const m = (err as Error).message;
        assert.match(m, /ferry\.yaml: invalid runner config/);
        assert.match(m, /stacks\.0\.name: letters, digits/);
        assert.match(m, /stacks\.0\.mode/);
        assert.match(m, /stacks\.0\.pollInterval: a duration like 30s/);
        return true;
      },
    );
  });
});

describe("checkpoint repair", () => {
  it("restores a checkpoint a crash left empty from Pulumi's backup, and leaves good ones alone", async () => {
    const { repairCheckpoint } = await import("../../src/reconcile/stack-recovery");
    const backend = tempDir();
    const dir = path.join(backend, ".pulumi", "stacks", "ferry");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "prod.json"), '{"version": 3}');
    assert.equal(repairCheckpoint(`file://${backend}`, "ferry", "prod"), undefined);
    fs.writeFileSync(path.join(dir, "prod.json"), "");
    fs.writeFileSync(path.join(dir, "prod.json.bak"), '{"version": 3, "previous": true}');
    assert.equal(repairCheckpoint(`file://${backend}`, "ferry", "prod"), path.join(dir, "prod.json.bak"));
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "prod.json"), "utf8")), { version: 3, previous: true });
    assert.ok(fs.readdirSync(dir).some((f) => f.startsWith("prod.json.corrupt-")));
    assert.equal(repairCheckpoint("s3://bucket", "ferry", "prod"), undefined);
  });

  it("sets aside a metadata sidecar a crash left empty next to a good checkpoint, and leaves a good sidecar alone", async () => {
    const { repairCheckpoint } = await import("../../src/reconcile/stack-recovery");
    const backend = tempDir();
    const dir = path.join(backend, ".pulumi", "stacks", "ferry");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "prod.json"), '{"version": 3}');
    fs.writeFileSync(path.join(dir, "prod.json.attrs"), '{"user.content_type":"application/json"}\n');
    assert.equal(repairCheckpoint(`file://${backend}`, "ferry", "prod"), undefined);
    fs.writeFileSync(path.join(dir, "prod.json.attrs"), "");
    assert.equal(repairCheckpoint(`file://${backend}`, "ferry", "prod"), path.join(dir, "prod.json.attrs"));
    assert.equal(fs.existsSync(path.join(dir, "prod.json.attrs")), false);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "prod.json"), "utf8")), { version: 3 });
    assert.equal(repairCheckpoint(`file://${backend}`, "ferry", "prod"), undefined);
  });
});
