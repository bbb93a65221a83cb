// End to end: YAML read as kubectl reads it (`defaultMode: 0400` is octal), and no blocking waits —
// an Ingress no controller serves and a claim no provisioner binds do not hold a sync; a Flux
// Kustomization with `wait: true` waits for its objects, up to its timeout, and then fails the run.
import assert from "node:assert/strict";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";
import { ferrySync } from "../helpers/ferry-sync";

describe("readiness", { timeout: 300_000 }, () => {
  const env = useE2E();
  const stack = "readiness";
  let repo: ConfigRepo;
  const sync = () => ferrySync(env(), { repo: repo.dir, path: "clusters/dev", stack, timeoutMs: 150_000 });

  before(async () => {
    repo = await ConfigRepo.create(path.join(env().dir, "config-repo"), "readiness");
  });

  it("applies `defaultMode: 0400` as 256 and does not wait for an Ingress address or a claim's binding", async () => {
    await repo.commitStep("step1", "web, its Ingress and a claim");
    const { code, result, stderr, startedAt, endedAt } = await sync();
    assert.equal(code, 0, `${result.message}\n${stderr.slice(-3000)}`);
    // The provider's own awaits would hold the run for 10 minutes on the Ingress and the claim.
    assert.ok(endedAt - startedAt < 120_000, `the sync took ${(endedAt - startedAt) / 1000}s`);

    const web = await env().getJson<{ spec: { template: { spec: { volumes: { configMap: { defaultMode: number } }[] } } } }>(
      "deployment",
      "web",
      "-n",
      "readiness",
    );
    assert.equal(web.spec.template.spec.volumes[0]?.configMap.defaultMode, 256);

    const unit = result.units?.find((u) => u.unit === "ManifestFile/clusters/dev/app.yaml");
    assert.ok(unit, JSON.stringify(result.units));
    assert.equal(unit.health, "InProgress");
    assert.equal(unit.waited, undefined);
    const reported = new Map(unit.objects.map((o) => [o.object, o]));
    assert.equal(reported.get("Ingress/readiness/web")?.reason, "NoAddress");
    assert.equal(reported.get("PersistentVolumeClaim/readiness/data")?.reason, "NotBound");
  });

  it("converges: a second sync changes nothing, the provider's skipAwait annotation on the live objects included", async () => {
    const { code, result, stderr } = await sync();
    assert.equal(code, 0, `${result.message}\n${stderr.slice(-3000)}`);
    assert.deepEqual(result.objects, []);
    assert.equal(result.changes?.updated, 0, JSON.stringify(result.changes));
  });

  it("fails a run whose Kustomization waits (`wait: true`, `timeout: 20s`) for a Deployment that never becomes available, keeping it applied", async () => {
    await repo.commitStep("step2", "a Kustomization that waits for a Deployment that cannot run");
    const { code, result, stderr, startedAt, endedAt } = await sync();
    assert.equal(code, 1, `${result.message}\n${stderr.slice(-3000)}`);
    assert.equal(result.reason, "HealthCheckFailed", result.message);
    assert.match(result.message ?? "", /Kustomization\/flux-system\/stuck: health check (failed|was not ready within 20s)/);
    assert.match(result.message ?? "", /Deployment\/readiness\/stuck/);
    assert.ok(endedAt - startedAt >= 20_000, `the sync took only ${(endedAt - startedAt) / 1000}s`);
    const unit = result.units?.find((u) => u.unit === "Kustomization/flux-system/stuck");
    assert.equal(unit?.waited, "failed");
    // Nothing is rolled back: the Deployment stays, and so does everything else.
    assert.equal(await env().exists("deployment", "stuck", "-n", "readiness"), true);
    assert.equal(await env().exists("ingress", "web", "-n", "readiness"), true);
  });
});
