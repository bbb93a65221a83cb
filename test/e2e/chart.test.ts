// End to end: the ferry chart renders, lints and applies to a real control plane; its CRD is served,
// and ferry's ServiceAccount has exactly the rights the operator needs (RBAC is on: a Secret it was
// not pointed at is Forbidden).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { runChecked } from "../../src/lib/exec";
import { ferryRoot } from "../../src/lib/paths";
import { eventually, useE2E } from "../helpers/e2e";

const NS = "ferry-chart";
const CHART = path.join(ferryRoot(), "charts", "ferry");

/** The API's answer to a call: ok, or the status code and message of its refusal. */
async function attempt(call: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call();
    return { code: 200, message: "" };
  } catch (err) {
    if (!(err instanceof k8s.ApiException)) throw err;
    const body = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as { message?: string };
    return { code: err.code, message: body.message ?? "" };
  }
}

describe("the ferry chart", () => {
  const env = useE2E();
  let rendered = "";

  it("lints and renders, CRD included", async () => {
    const helm = env().toolchain.bin("helm");
    const lint = await runChecked(helm, ["lint", CHART, "--strict"]);
    assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    rendered = (
      await runChecked(helm, [
        "template",
        "ferry",
        CHART,
        "--namespace",
        NS,
        "--include-crds",
        "--set",
        "secretNames={git-creds,state-passphrase}",
        "--set",
        "backend.url=s3://state/ferry",
      ])
    ).stdout;
    const kinds = yaml
      .loadAll(rendered)
      .filter(Boolean)
      .map((o) => (o as { kind: string }).kind)
      .sort();
    for (const kind of [
      "CustomResourceDefinition",
      "Deployment",
      "ServiceAccount",
      "Role",
      "RoleBinding",
      "ClusterRole",
      "Service",
      "PodDisruptionBudget",
    ])
      assert.ok(kinds.includes(kind), `${kind} is rendered (got ${kinds.join(", ")})`);
    assert.match(rendered, /--manager-service-account\n\s+- "ferry-manager"/);
  });

  it("moves the Stack, Event, Secret and token rules into the ClusterRole with watchAllNamespaces", async () => {
    const helm = env().toolchain.bin("helm");
    type Rbac = { kind: string; rules: { resources: string[]; resourceNames?: string[] }[] };
    const render = async (...set: string[]) =>
      yaml
        .loadAll(
          (await runChecked(helm, ["template", "ferry", CHART, "--namespace", NS, "--set", "secretNames={git-creds}", ...set])).stdout,
        )
        .filter((o): o is Rbac => ["Role", "ClusterRole"].includes((o as Rbac | null)?.kind ?? ""));
    const resources = (objects: Rbac[], kind: string) =>
      objects
        .filter((o) => o.kind === kind)
        .flatMap((o) => o.rules.flatMap((r) => r.resources))
        .sort();
    const byRelease = await render();
    assert.deepEqual(resources(byRelease, "Role"), [
      "events",
      "events",
      "leases",
      "secrets",
      "serviceaccounts/token",
      "stacks",
      "stacks/status",
    ]);
    assert.deepEqual(resources(byRelease, "ClusterRole"), ["subjectaccessreviews", "tokenreviews"]);
    const everywhere = await render("--set", "watchAllNamespaces=true");
    assert.deepEqual(resources(everywhere, "Role"), ["leases"]);
    assert.deepEqual(resources(everywhere, "ClusterRole"), [
      "events",
      "events",
      "secrets",
      "serviceaccounts/token",
      "stacks",
      "stacks/status",
      "subjectaccessreviews",
      "tokenreviews",
    ]);
    const secrets = everywhere.flatMap((o) => o.rules).find((r) => r.resources.includes("secrets"));
    assert.deepEqual(secrets?.resourceNames, ["git-creds"], "still only the named Secrets");
  });

  it("applies to the cluster and serves the Stack CRD", async () => {
    const e = env();
    const file = path.join(e.dir, "chart.yaml");
    fs.writeFileSync(file, rendered);
    await e.kubectl("create", "namespace", NS);
    await e.kubectl("apply", "--server-side", "--field-manager", "ferry-e2e", "-f", file);
    await e.kubectl("wait", "--for=condition=Established", "crd/stacks.ferry.dev", "--timeout=60s");
    assert.match(await e.kubectl("get", "stacks", "-n", NS, "-o", "name"), /^$/);
    await eventually("the Deployment is Available", async () => {
      const d = await e.getJson<{ status?: { conditions?: { type: string; status: string }[] } }>("deployment", "ferry", "-n", NS);
      return d.status?.conditions?.some((c) => c.type === "Available" && c.status === "True") ?? false;
    });
  });

  it("gives ferry's ServiceAccount only what the operator calls", async () => {
    const e = env();
    for (const name of ["git-creds", "unrelated"]) await e.kubectl("create", "secret", "generic", name, "-n", NS, "--from-literal=k=v");
    await e.kubectl(
      "apply",
      "-n",
      NS,
      "-f",
      writeFile(e.dir, "stack.yaml", {
        apiVersion: "ferry.dev/v1alpha1",
        kind: "Stack",
        metadata: { name: "prod", namespace: NS },
        spec: { repo: "git@github.com:acme/fleet.git", path: "clusters/prod" },
      }),
    );
    const token = (await e.kubectl("create", "token", "ferry", "-n", NS)).trim();
    const admin = new k8s.KubeConfig();
    admin.loadFromFile(e.cluster.kubeconfig);
    const cluster = admin.getCurrentCluster()!;
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [cluster],
      users: [{ name: "ferry", token }],
      contexts: [{ name: "ferry", cluster: cluster.name, user: "ferry" }],
      currentContext: "ferry",
    });
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const leases = kc.makeApiClient(k8s.CoordinationV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const who = `system:serviceaccount:${NS}:ferry`;

    // A Secret named in secretNames: allowed.
    assert.equal((await attempt(() => core.readNamespacedSecret({ name: "git-creds", namespace: NS }))).code, 200);
    // Any other Secret: forbidden, and listing Secrets too.
    const other = await attempt(() => core.readNamespacedSecret({ name: "unrelated", namespace: NS }));
    assert.equal(other.code, 403);
    assert.equal(
      other.message,
      `secrets "unrelated" is forbidden: User "${who}" cannot get resource "secrets" in API group "" in the namespace "${NS}"`,
    );
    const list = await attempt(() => core.listNamespacedSecret({ namespace: NS }));
    assert.equal(list.code, 403);
    assert.match(list.message, /cannot list resource "secrets"/);
    // Its Leases and its Stacks.
    const lease = await attempt(() =>
      leases.createNamespacedLease({
        namespace: NS,
        body: { metadata: { name: "ferry-shard-0" }, spec: { holderIdentity: "ferry-0", leaseDurationSeconds: 15 } },
      }),
    );
    assert.equal(lease.code, 200, lease.message);
    const stacks = (await custom.listNamespacedCustomObject({
      group: "ferry.dev",
      version: "v1alpha1",
      namespace: NS,
      plural: "stacks",
    })) as {
      items: { metadata: { name: string } }[];
    };
    assert.deepEqual(
      stacks.items.map((s) => s.metadata.name),
      ["prod"],
    );
    // A token of the manager ServiceAccount, but of no other; and no rights to apply anything itself.
    const manager = await attempt(() =>
      core.createNamespacedServiceAccountToken({ name: "ferry-manager", namespace: NS, body: { spec: { audiences: [] } } }),
    );
    assert.equal(manager.code, 200, manager.message);
    const self = await attempt(() =>
      core.createNamespacedServiceAccountToken({ name: "ferry", namespace: NS, body: { spec: { audiences: [] } } }),
    );
    assert.equal(self.code, 403);
    const configMap = await attempt(() => core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "x" } } }));
    assert.equal(configMap.code, 403);
    assert.match(configMap.message, /cannot create resource "configmaps"/);
  });
});

function writeFile(dir: string, name: string, object: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(object));
  return file;
}
