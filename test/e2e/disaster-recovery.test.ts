// End to end: a cluster that lost all its etcd data is rebuilt from Git by one `ferry sync`, and a
// second, empty cluster synced from the same folder ends up with the same objects.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { DevCluster, devClusterDown, devClusterUp } from "../../src/devcluster/dev-cluster";
import { runChecked } from "../../src/lib/exec";
import { ChartRepo, startChartRepo } from "../helpers/chart-repo";
import { ConfigRepo } from "../helpers/config-repo";
import { useE2E } from "../helpers/e2e";

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** The parts of a live object that Git decides: what must match between two clusters built from it. */
function declared(o: K8sObject): unknown {
  const { apiVersion, kind, metadata, spec, data, stringData, type } = o as K8sObject & Record<string, unknown>;
  const annotations = Object.fromEntries(
    Object.entries(metadata.annotations ?? {}).filter(([k]) => !k.startsWith("deployment.kubernetes.io/") && !k.startsWith("pulumi.com/")),
  );
  const cleanSpec = spec && typeof spec === "object" ? { ...(spec as Record<string, unknown>) } : spec;
  if (kind === "Service" && cleanSpec && typeof cleanSpec === "object") {
    // Allocated by each cluster, not declared.
    for (const k of ["clusterIP", "clusterIPs"]) delete (cleanSpec as Record<string, unknown>)[k];
  }
  return {
    apiVersion,
    kind,
    name: metadata.name,
    namespace: metadata.namespace,
    labels: metadata.labels,
    annotations,
    spec: cleanSpec,
    data,
    stringData,
    type,
  };
}

const secret = `apiVersion: v1\nkind: Secret\nmetadata: {name: web-credentials, namespace: demo}\nstringData: {password: "hunter2"}\n`;

describe("disaster recovery", () => {
  const env = useE2E();
  let repo: ConfigRepo;
  let charts: ChartRepo;
  let second: DevCluster | undefined;
  const secondDir = () => path.join(env().dir, "second-cluster");

  const kubectlOn = async (kubeconfig: string, ...args: string[]) =>
    (await runChecked(env().toolchain.bin("kubectl"), ["--kubeconfig", kubeconfig, ...args])).stdout;
  /** Every object the stack manages, read live from a cluster, keyed by kind/namespace/name. */
  const liveObjects = async (kubeconfig: string): Promise<Map<string, unknown>> => {
    const out = new Map<string, unknown>();
    for (const ns of ["demo", "shop"]) {
      const list = JSON.parse(await kubectlOn(kubeconfig, "get", "configmap,secret,deployment,service", "-n", ns, "-o", "json")) as {
        items: K8sObject[];
      };
      for (const o of list.items) {
        if (o.metadata.name === "kube-root-ca.crt") continue;
        out.set(`${o.kind}/${ns}/${o.metadata.name}`, declared(o));
      }
      out.set(`Namespace/${ns}`, declared(JSON.parse(await kubectlOn(kubeconfig, "get", "namespace", ns, "-o", "json")) as K8sObject));
    }
    return out;
  };

  before(async () => {
    const e = env();
    charts = await startChartRepo(e.toolchain.bin("helm"), [{ name: "webapp" }]);
    repo = await ConfigRepo.create(path.join(e.dir, "config-repo"), "foundation");
    await repo.commitStep("step1", "Add the web app");
    const release = [
      "apiVersion: v1",
      "kind: Namespace",
      "metadata: {name: shop}",
      "---",
      "apiVersion: source.toolkit.fluxcd.io/v1",
      "kind: HelmRepository",
      "metadata: {name: charts, namespace: shop}",
      `spec: {interval: 10m, url: "${charts.url}"}`,
      "---",
      "apiVersion: helm.toolkit.fluxcd.io/v2",
      "kind: HelmRelease",
      "metadata: {name: shop, namespace: shop}",
      "spec:",
      "  interval: 5m",
      "  chart: {spec: {chart: webapp, sourceRef: {kind: HelmRepository, name: charts}}}",
      "  values: {replicaCount: 2, greeting: hello from the shop}",
      "",
    ].join("\n");
    await repo.edit({ "clusters/dev/web/secret.yaml": secret, "clusters/dev/shop.yaml": release }).commitAll("Add the shop");
    const { code, result } = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(code, 0, result.message);
    assert.ok((result.changes?.created ?? 0) >= 8, JSON.stringify(result.changes));
  });
  after(async () => {
    try {
      if (second) await devClusterDown(second.dir);
    } finally {
      await charts?.close();
      fs.rmSync(secondDir(), { recursive: true, force: true });
    }
  });

  it("rebuilds every object with one ferry sync after etcd was wiped, and a second sync reports no changes", async () => {
    const e = env();
    const before = await liveObjects(e.cluster.kubeconfig);
    const uid = (await e.getJson<K8sObject>("deployment", "web", "-n", "demo")).metadata.uid;

    // The disaster: the control plane stops, its etcd data is removed, and it restarts empty with
    // the same identity (keys, token, address).
    await devClusterDown(e.cluster.dir);
    fs.rmSync(path.join(e.cluster.dir, "etcd"), { recursive: true, force: true });
    const restarted = await devClusterUp({ dir: e.cluster.dir, toolchain: e.toolchain, ownerPid: process.pid });
    assert.equal(restarted.kubeconfig, e.cluster.kubeconfig);
    assert.equal(await e.exists("namespace", "demo"), false, "etcd was not wiped");

    const started = Date.now();
    const first = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    process.stderr.write(`# restore of ${before.size} objects: ${Date.now() - started} ms\n`);
    assert.equal(first.code, 0, first.result.message);
    assert.equal(first.result.changes?.created, before.size, JSON.stringify(first.result.changes));
    const after = await liveObjects(e.cluster.kubeconfig);
    assert.deepEqual(after, before);
    assert.notEqual((await e.getJson<K8sObject>("deployment", "web", "-n", "demo")).metadata.uid, uid);

    const again = await e.sync({ repo: repo.dir, path: "clusters/dev" });
    assert.equal(again.code, 0, again.result.message);
    assert.deepEqual(again.result.changes, { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: before.size });
  });

  it("gives a second, empty cluster synced from the same folder as a new stack the same objects", async () => {
    const e = env();
    second = await devClusterUp({ dir: secondDir(), toolchain: e.toolchain, ownerPid: process.pid });
    assert.notEqual(second.server, e.cluster.server);
    const r = await e.ferry([
      "sync",
      "--stack",
      "dev-copy",
      "--repo",
      repo.dir,
      "--path",
      "clusters/dev",
      "--kubeconfig",
      second.kubeconfig,
      "-o",
      "json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const one = await liveObjects(e.cluster.kubeconfig);
    const two = await liveObjects(second.kubeconfig);
    assert.ok(one.size >= 9, [...one.keys()].join(", "));
    assert.deepEqual([...two.keys()].sort(), [...one.keys()].sort());
    for (const [key, object] of one) assert.deepEqual(two.get(key), object, `${key} differs between the two clusters`);
  });
});
