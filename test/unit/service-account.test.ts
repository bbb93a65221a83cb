import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { DesiredObject } from "../../src/desired-state/desired-state";
import { HelmHook } from "../../src/desired-state/helm-hooks";
import { identify, KubeObject } from "../../src/desired-state/object-id";
import { impersonatedUser, impersonatedUsers, impersonatingKubeconfig } from "../../src/desired-state/service-account";
import { kubeConfig } from "../../src/lib/kube-config";
import { dryRunRejections } from "../../src/reconcile/dry-run";
import { Cluster } from "../../src/reconcile/ports";
import { tempDir } from "../helpers/temp-dir";

const deployer = { namespace: "tenant", name: "deployer" };

function desired(object: KubeObject, serviceAccount?: typeof deployer): DesiredObject {
  const scope = object.kind === "ClusterRole" || object.kind === "ClusterRoleBinding" ? "Cluster" : "Namespaced";
  return {
    object,
    id: identify(object, scope, "tenant"),
    location: { file: "tenant/app.yaml", line: 1 },
    prune: true,
    ...(serviceAccount ? { serviceAccount } : {}),
  };
}
const configMap: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "app", namespace: "tenant" } };
const clusterRole: KubeObject = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "admin-ish" } };
const roleBinding: KubeObject = {
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "RoleBinding",
  metadata: { name: "deployer", namespace: "tenant" },
};

/** A cluster that serves everything, has every namespace, and records each dry run with the user it impersonated. */
function recordingCluster(refuse: (o: KubeObject, as?: string) => string | undefined): Cluster & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    serves: () => Promise.resolve(true),
    uid: () => Promise.resolve("cluster-uid"),
    observe: () => Promise.resolve({ seen: new Map(), unlisted: [] }),
    hasNamespace: () => Promise.resolve(true),
    dryRun: (o, options) => {
      asked.push(`${o.kind}/${o.metadata.name ?? ""} as ${options?.impersonate ?? "ferry"}`);
      return Promise.resolve(refuse(o, options?.impersonate));
    },
    read: () => Promise.resolve(undefined),
    runHooks: () => Promise.resolve(undefined),
  };
}

describe("service accounts (serviceAccountName)", () => {
  it("names an account as Kubernetes does, and lists a state's accounts once each", () => {
    assert.equal(impersonatedUser(deployer), "system:serviceaccount:tenant:deployer");
    const hook: HelmHook = { object: configMap, namespace: "a", events: ["pre-install"], weight: 0, deletePolicies: [] };
    const users = impersonatedUsers({
      units: [
        { objects: [desired(configMap, deployer), desired(configMap), desired(clusterRole, deployer)] },
        { objects: [], hooks: [{ ...hook, serviceAccount: { namespace: "apps", name: "helm" } }, hook] },
      ],
    });
    assert.deepEqual(users, ["system:serviceaccount:apps:helm", "system:serviceaccount:tenant:deployer"]);
  });

  it("writes a kubeconfig for the same cluster and credentials that impersonates the account", () => {
    const first = [
      "apiVersion: v1",
      "clusters: [{name: dev, cluster: {server: 'https://127.0.0.1:6443', certificate-authority: ca.crt}}]",
      "users: [{name: admin, user: {client-certificate: certs/admin.crt, client-key: /abs/admin.key, as: someone, as-groups: [g]}}]",
      "contexts: [{name: dev, context: {cluster: dev, user: admin, namespace: team}}]",
      "current-context: dev",
    ].join("\n");
    // A later file never overrides what an earlier one defines (client-go's $KUBECONFIG merge).
    const second = "clusters: [{name: dev, cluster: {server: 'https://evil.invalid'}}]\ncurrent-context: other\n";
    const text = impersonatingKubeconfig(
      [
        { text: first, dir: "/home/me/.kube" },
        { text: second, dir: "/etc" },
      ],
      undefined,
      impersonatedUser(deployer),
    );
    assert.deepEqual(yaml.load(text), {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        { name: "ferry-impersonated", cluster: { server: "https://127.0.0.1:6443", "certificate-authority": "/home/me/.kube/ca.crt" } },
      ],
      contexts: [{ name: "ferry-impersonated", context: { cluster: "ferry-impersonated", user: "ferry-impersonated", namespace: "team" } }],
      users: [
        {
          name: "ferry-impersonated",
          user: {
            "client-certificate": "/home/me/.kube/certs/admin.crt",
            "client-key": "/abs/admin.key",
            as: "system:serviceaccount:tenant:deployer",
          },
        },
      ],
      "current-context": "ferry-impersonated",
    });
    assert.throws(() => impersonatingKubeconfig([{ text: first, dir: "/" }], "prod", "u"), /context "prod" not found/);
  });

  it("makes the run's own client impersonate the account (Impersonate-User), keeping the cluster and credentials", async () => {
    const dir = tempDir();
    const file = path.join(dir, "config");
    fs.writeFileSync(
      file,
      "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\nusers: [{name: u, user: {token: t}}]\n" +
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    );
    const kc = kubeConfig({ kubeconfig: file, impersonate: "system:serviceaccount:tenant:deployer" });
    assert.equal(kc.getCurrentUser()?.impersonateUser, "system:serviceaccount:tenant:deployer");
    assert.equal(kc.getCurrentCluster()?.server, "https://127.0.0.1:6443");
    const opts: { headers?: Record<string, string> } = {};
    await kc.applyToHTTPSOptions(opts);
    assert.equal(opts.headers?.["Impersonate-User"], "system:serviceaccount:tenant:deployer");
    assert.equal(kubeConfig({ kubeconfig: file }).getCurrentUser()?.impersonateUser, undefined);
  });

  it("dry-runs an object of an account as that account, and reports the API server's refusal at the object", async () => {
    const cluster = recordingCluster((o, as) =>
      as && o.kind === "ClusterRole"
        ? `clusterroles.rbac.authorization.k8s.io "admin-ish" is forbidden: User "${as}" cannot patch`
        : undefined,
    );
    const errors = await dryRunRejections([desired(configMap, deployer), desired(clusterRole, deployer), desired(configMap)], cluster);
    assert.deepEqual(cluster.asked.sort(), [
      "ClusterRole/admin-ish as system:serviceaccount:tenant:deployer",
      "ConfigMap/app as ferry",
      "ConfigMap/app as system:serviceaccount:tenant:deployer",
    ]);
    assert.equal(errors.length, 1);
    assert.match(
      errors[0]!.message,
      /ClusterRole\/admin-ish: the API server rejects it: .*forbidden: User "system:serviceaccount:tenant:deployer" cannot patch/,
    );
  });

  it("leaves an account's objects to the update when the same update changes RBAC with the stack's credentials", async () => {
    const cluster = recordingCluster(() => "forbidden");
    const errors = await dryRunRejections([desired(roleBinding), desired(configMap, deployer)], cluster);
    assert.deepEqual(cluster.asked, ["RoleBinding/deployer as ferry"]);
    assert.equal(errors.length, 1);
  });
});
