// End to end: a Kustomize overlay and Flux Kustomizations with dependsOn, in one sync.
import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";

interface K8sObject {
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: { replicas?: number };
}

describe("Kustomize and Flux Kustomizations", () => {
  const env = useE2E();

  it("builds an overlay and follows Kustomizations in dependsOn order, in one sync", async () => {
    const e = env();
    const repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "kustomize");
    await repo.commitStep("step1", "Add overlay and Kustomizations");
    const { code, result, stderr } = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(code, 0, `${result.message}\n${stderr}`);

    // The overlay: namespace, name prefix and patch applied.
    const echo = await e.getJson<K8sObject>("deployment", "dev-echo", "-n", "kustomized");
    assert.equal(echo.spec?.replicas, 3);
    // The apps Kustomization: targetNamespace and postBuild substitution (with a default).
    const cm = await e.getJson<K8sObject>("configmap", "podinfo-settings", "-n", "podinfo");
    assert.deepEqual(cm.data, { greeting: "hello from postBuild", unset: "a default" });
    // The namespaces from the infra Kustomization came first, or the run would have failed.
    assert.ok(await e.exists("namespace", "podinfo"));
    assert.equal(result.changes?.created, 4);
  });
});
