// End to end: the real ferry CLI, pulumi CLI, Kubernetes provider, local control plane and git.
import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";

interface K8sObject {
  kind: string;
  metadata: { name: string; uid: string; generation?: number };
  data?: Record<string, string>;
  spec?: { replicas?: number };
  status?: { conditions?: { type: string; status: string }[] };
}

describe("ferry sync", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  const stack = "dev";

  const sync = (...extra: string[]) => env().sync({ repo: repo.dir, path: "clusters/dev", stack, extra });
  const snapshot = async (): Promise<string> => {
    const list = await env().getJson<{ items: K8sObject[] }>("namespace,configmap,deployment,service", "-n", "demo", "--ignore-not-found");
    const ns = await env().getJson<K8sObject>("namespace", "demo");
    return JSON.stringify(
      [ns, ...list.items]
        .filter((o) => o.metadata.name !== "kube-root-ca.crt")
        .map((o) => [o.kind, o.metadata.name, o.metadata.uid, o.metadata.generation, o.data, o.spec?.replicas])
        .sort(),
    );
  };

  it("applies a Namespace, a ConfigMap, a Deployment and a Service from a commit; the Deployment becomes Available", async () => {
    const e = env();
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "foundation");
    const sha = await repo.commitStep("step1", "Add the web app");
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.equal(result.revision?.sha, sha);
    assert.deepEqual(result.changes, { created: 4, updated: 0, replaced: 0, deleted: 0, unchanged: 0 });
    assert.ok(await e.exists("namespace", "demo"));
    assert.equal((await e.getJson<K8sObject>("configmap", "web-settings", "-n", "demo")).data?.GREETING, "hello from git");
    assert.ok(await e.exists("service", "web", "-n", "demo"));
    const deploy = await e.getJson<K8sObject>("deployment", "web", "-n", "demo");
    assert.equal(deploy.status?.conditions?.find((c) => c.type === "Available")?.status, "True");
  });

  it("restores a Deployment deleted out of band", async () => {
    const e = env();
    const before = await e.getJson<K8sObject>("deployment", "web", "-n", "demo");
    await e.kubectl("delete", "deployment", "web", "-n", "demo", "--wait=true");
    assert.equal(await e.exists("deployment", "web", "-n", "demo"), false);
    // A plain sync finds it: the managed kinds' metadata, listed, against the versions the state recorded.
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.equal(result.changes?.created, 1);
    const after = await e.getJson<K8sObject>("deployment", "web", "-n", "demo");
    assert.notEqual(after.metadata.uid, before.metadata.uid);
    assert.equal(after.status?.conditions?.find((c) => c.type === "Available")?.status, "True");
  });

  it("reverts a ConfigMap edited and a Deployment scaled by hand, in place", async () => {
    const e = env();
    const cmBefore = await e.getJson<K8sObject>("configmap", "web-settings", "-n", "demo");
    const deployBefore = await e.getJson<K8sObject>("deployment", "web", "-n", "demo");
    await e.kubectl(
      "patch",
      "configmap",
      "web-settings",
      "-n",
      "demo",
      "--type=merge",
      "-p",
      '{"data":{"GREETING":"edited by hand","EXTRA":"x"}}',
    );
    await e.kubectl("scale", "deployment", "web", "-n", "demo", "--replicas=5");
    assert.equal((await e.getJson<K8sObject>("deployment", "web", "-n", "demo")).spec?.replicas, 5);

    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.equal(result.changes?.updated, 2, JSON.stringify(result.objects));
    assert.equal(result.changes?.replaced, 0);
    const cm = await e.getJson<K8sObject>("configmap", "web-settings", "-n", "demo");
    const deploy = await e.getJson<K8sObject>("deployment", "web", "-n", "demo");
    assert.equal(cm.data?.GREETING, "hello from git");
    assert.equal(deploy.spec?.replicas, 2);
    // Updated in place: the same objects, not replacements.
    assert.equal(cm.metadata.uid, cmBefore.metadata.uid);
    assert.equal(deploy.metadata.uid, deployBefore.metadata.uid);
  });

  it("applies a changed ConfigMap and records the commit in the stack history", async () => {
    const e = env();
    const sha = await repo.commitStep("step2", "Change the greeting", { name: "Bob Reviewer", email: "bob@example.com" });
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.deepEqual(result.objects, [{ change: "updated", object: "ConfigMap/demo/web-settings" }]);
    assert.equal((await e.getJson<K8sObject>("configmap", "web-settings", "-n", "demo")).data?.GREETING, "hello again from git");

    // `pulumi stack history`, run as a user would, answers who changed what and when.
    const history = JSON.parse(await e.pulumi(stack, ["stack", "history", "--json"])) as {
      message: string;
      environment: Record<string, string>;
      result: string;
    }[];
    const latest = history[0]!;
    assert.equal(latest.result, "succeeded");
    assert.equal(latest.environment["git.head"], sha);
    assert.equal(latest.environment["git.author"], "Bob Reviewer");
    assert.equal(latest.environment["git.author.email"], "bob@example.com");
    assert.equal(latest.message, `sync ${sha.slice(0, 7)}: Change the greeting`);
  });

  it("prunes an object whose manifest was deleted from Git", async () => {
    const e = env();
    await repo.commitStep("step3", "Remove the web Service");
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.deepEqual(result.objects, [{ change: "deleted", object: "Service/demo/web" }]);
    assert.equal(await e.exists("service", "web", "-n", "demo"), false);
    assert.ok(await e.exists("deployment", "web", "-n", "demo"));
  });

  it("refuses a commit with a YAML syntax error, naming the file and line, and changes nothing", async () => {
    const before = await snapshot();
    await repo.commitStep("step4", "Add a broken manifest");
    const { code, result, stderr } = await sync();
    assert.notEqual(code, 0);
    assert.equal(result.succeeded, false);
    assert.equal(result.reason, "BuildFailed");
    assert.match(result.message ?? "", /clusters\/dev\/web\/broken\.yaml:\d+:\d+ \(document 1\): invalid YAML/, stderr);
    assert.equal(await snapshot(), before);
  });

  it("refuses a --path that does not exist or holds no objects, and deletes nothing", async () => {
    const before = await snapshot();
    await repo.commitStep("step3", "Fix the broken manifest");
    const missing = await sync("--path", "clusters/typo");
    assert.notEqual(missing.code, 0);
    assert.equal(missing.result.reason, "GuardRefused");
    assert.match(missing.result.message ?? "", /cluster folder "clusters\/typo" does not exist/);
    const empty = await sync("--path", "clusters/staging");
    assert.notEqual(empty.code, 0);
    assert.equal(empty.result.reason, "GuardRefused");
    assert.match(empty.result.message ?? "", /cluster folder "clusters\/staging" contains no Kubernetes objects/);
    assert.equal(await snapshot(), before);
  });
});
