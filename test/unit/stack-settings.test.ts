import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { programConfig } from "../../src/reconcile/run-stack";
import { resolveSyncSettings, SettingsError } from "../../src/reconcile/stack-settings";

function stacksDir(config: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-settings-"));
  fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), JSON.stringify({ config }));
  return dir;
}

describe("stack settings: throughput", () => {
  const env = { FERRY_STATE_DIR: path.join(os.tmpdir(), "ferry-settings-state"), PULUMI_CONFIG_PASSPHRASE: "x" };

  it("leaves the provider's and the engine's defaults when the stack file says nothing", () => {
    const dir = stacksDir({ "ferry:repo": "https://example.com/r.git", "ferry:path": "clusters/dev" });
    try {
      const s = resolveSyncSettings({ stack: "dev", stacksDir: dir }, env);
      assert.deepEqual(s.throughput, { qps: undefined, burst: undefined, parallel: undefined });
      const config = programConfig(s);
      assert.equal(config.kubeClientQps, undefined);
      assert.equal(config.kubeClientBurst, undefined);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("passes ferry:kubeClientQps/Burst to the program and ferry:parallel to the engine", () => {
    const dir = stacksDir({
      "ferry:repo": "https://example.com/r.git",
      "ferry:path": "clusters/dev",
      "ferry:kubeClientQps": 200,
      "ferry:kubeClientBurst": 400,
      "ferry:parallel": 32,
    });
    try {
      const s = resolveSyncSettings({ stack: "dev", stacksDir: dir }, env);
      assert.deepEqual(s.throughput, { qps: 200, burst: 400, parallel: 32 });
      const config = programConfig(s);
      assert.equal(config.kubeClientQps, "200");
      assert.equal(config.kubeClientBurst, "400");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a burst that is not a positive whole number, naming the file and the key", () => {
    const dir = stacksDir({ "ferry:repo": "r", "ferry:path": "p", "ferry:kubeClientBurst": -3 });
    try {
      assert.throws(
        () => resolveSyncSettings({ stack: "dev", stacksDir: dir }, env),
        (err: unknown) => err instanceof SettingsError && /Pulumi\.dev\.yaml/.test(err.message) && /kubeClientBurst/.test(err.message),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
