// End to end: a sync applies only what changed since the last update; `--full` refreshes everything.
import assert from "node:assert/strict";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { HistoryEntry } from "../../src/reconcile/history";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";

const NS = "many";
const COUNT = 300;

interface Live {
  kind: string;
  metadata: { name: string; resourceVersion: string; uid: string };
  data?: Record<string, string>;
}

/** A cluster folder of COUNT objects: a Namespace, a Deployment per fifty objects, ConfigMaps. */
function folder(changed: Readonly<Record<number, string>> = {}): Record<string, string> {
  const files: Record<string, string> = {
    "clusters/dev/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n`,
  };
  for (let i = 1; i < COUNT; i++) {
    files[`clusters/dev/obj-${i}.yaml`] =
      i % 50 === 0
        ? `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d-${i}, namespace: ${NS}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: d-${i}}}\n  template:\n    metadata: {labels: {app: d-${i}}}\n    spec: {containers: [{name: c, image: nginx}]}\n`
        : `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c-${i}, namespace: ${NS}}\ndata: {v: "${changed[i] ?? "1"}"}\n`;
  }
  return files;
}

describe("incremental sync", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  const stackArgs = () => ["--stack", "dev", "--repo", repo.dir, "--path", "clusters/dev", "--kubeconfig", env().cluster.kubeconfig];
  const sync = (...extra: string[]) => env().sync({ repo: repo.dir, path: "clusters/dev", stack: "dev", extra });
  const live = async (): Promise<Map<string, Live>> => {
    const list = await env().getJson<{ items: Live[] }>("configmap,deployment", "-n", NS);
    return new Map(list.items.filter((o) => o.metadata.name !== "kube-root-ca.crt").map((o) => [`${o.kind}/${o.metadata.name}`, o]));
  };
  const history = async (): Promise<HistoryEntry[]> => {
    const r = await env().ferry(["history", ...stackArgs(), "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as HistoryEntry[];
  };

  before(async () => {
    repo = await ConfigRepo.create(path.join(env().dir, "config-repo"), "foundation");
    await repo.edit(folder()).commitAll("Three hundred objects");
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.equal(result.changes?.created, COUNT);
    assert.equal(result.scope?.kind, "full");
  });

  it("applies a commit that changes one object of 300 to that object alone: no other object's resourceVersion moves", async () => {
    const before = await live();
    await repo.edit(folder({ 7: "2" })).commitAll("Change one ConfigMap");
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.deepEqual(result.objects, [{ change: "updated", object: `ConfigMap/${NS}/c-7` }]);
    assert.deepEqual(result.scope, { kind: "targets", objects: 1 });
    const after = await live();
    assert.equal(after.size, before.size);
    for (const [key, o] of before) {
      const now = after.get(key)!;
      if (key === "ConfigMap/c-7") {
        assert.notEqual(now.metadata.resourceVersion, o.metadata.resourceVersion);
        assert.equal(now.data?.v, "2");
      } else assert.equal(now.metadata.resourceVersion, o.metadata.resourceVersion, `${key} was written`);
    }
  });

  it("runs no update when nothing differs from the last one, and records none", async () => {
    const updates = (await history()).length;
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.deepEqual(result.scope, { kind: "none", objects: 0 });
    assert.deepEqual(result.objects, []);
    assert.equal((await history()).length, updates);
  });

  it("finds drift made by hand from the objects' metadata alone, and a full sync reads every object", async () => {
    await env().kubectl("patch", "configmap", "c-9", "-n", NS, "--type=merge", "-p", '{"data":{"v":"by hand"}}');
    await env().kubectl("delete", "configmap", "c-13", "-n", NS, "--wait=true");
    const before = await live();
    const changed = await sync();
    assert.equal(changed.code, 0, changed.result.message);
    assert.deepEqual(
      [...changed.result.objects].sort((a, b) => a.object.localeCompare(b.object)),
      [
        { change: "created", object: `ConfigMap/${NS}/c-13` },
        { change: "updated", object: `ConfigMap/${NS}/c-9` },
      ],
    );
    assert.deepEqual(changed.result.scope, { kind: "targets", objects: 2 });
    assert.equal((await env().getJson<Live>("configmap", "c-9", "-n", NS)).data?.v, "1");
    const after = await live();
    for (const [key, o] of before) {
      if (key !== "ConfigMap/c-9") assert.equal(after.get(key)!.metadata.resourceVersion, o.metadata.resourceVersion, `${key} was written`);
    }
    const full = await sync("--full");
    assert.equal(full.code, 0, full.result.message);
    assert.equal(full.result.scope?.kind, "full");
    assert.deepEqual(full.result.objects, []);
  });

  it("deletes what left Git, creates what came, and history, preview and rollback see every update", async () => {
    const files = folder({ 7: "2" });
    files["clusters/dev/obj-11.yaml"] = undefined as unknown as string;
    files["clusters/dev/extra.yaml"] = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: ${NS}}\ndata: {v: "new"}\n`;
    const sha = await repo.edit(files).commitAll("Swap a ConfigMap");
    const { code, result } = await sync();
    assert.equal(code, 0, result.message);
    assert.deepEqual(
      [...result.objects].sort((a, b) => a.object.localeCompare(b.object)),
      [
        { change: "deleted", object: `ConfigMap/${NS}/c-11` },
        { change: "created", object: `ConfigMap/${NS}/extra` },
      ],
    );
    assert.deepEqual(result.scope, { kind: "targets", objects: 2 });
    const entries = await history();
    assert.equal(entries[0]!.sha, sha);
    assert.deepEqual([entries[0]!.changes.create, entries[0]!.changes.delete], [1, 1]);

    // The state is whole: a full preview of the next commit plans exactly its change.
    await repo.edit({ [`clusters/dev/extra.yaml`]: files["clusters/dev/extra.yaml"]!.replace('"new"', '"newer"') }).commitAll("Edit extra");
    const preview = await env().ferry(["preview", ...stackArgs(), "--ref", "main", "-o", "json"]);
    assert.equal(preview.code, 1, preview.stderr); // 1: the preview has changes
    const planned = JSON.parse(preview.stdout) as { objects: { op: string; object: string }[] };
    assert.deepEqual(
      planned.objects.map((o) => [o.op, o.object]),
      [["update", `ConfigMap/${NS}/extra`]],
    );

    // A rollback to the commit before brings c-11 back and removes extra.
    const back = await env().ferry(["rollback", ...stackArgs(), "--to", entries[1]!.sha!, "-o", "json"]);
    assert.equal(back.code, 0, back.stderr);
    assert.ok(await env().exists("configmap", "c-11", "-n", NS));
    assert.equal(await env().exists("configmap", "extra", "-n", NS), false);
  });
});
