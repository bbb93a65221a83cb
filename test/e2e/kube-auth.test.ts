// End to end: the control API's identity reviewer against a real API server. A TokenReview says who
// a ServiceAccount token is, a SubjectAccessReview whether it may patch the Stack object; the
// reviewer runs as the agent's own ServiceAccount with only tokenreviews/subjectaccessreviews create.
import assert from "node:assert/strict";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { IdentityReviewer, IdentityTarget } from "../../src/agent/api-auth";
import { kubeIdentityReviewer } from "../../src/agent/kube-auth";
import { RunnerConfig } from "../../src/agent/runner-config";
import { RunnerMetrics } from "../../src/agent/runner-metrics";
import { handleRequest, RunnerView } from "../../src/agent/runner-server";
import { StackWorker } from "../../src/agent/stack-worker";
import { kubeConfig } from "../../src/lib/kube-config";
import { ferryRoot } from "../../src/lib/paths";
import { E2E, useE2E } from "../helpers/e2e";

const env = useE2E();
const WEB: IdentityTarget = { namespace: "apps", name: "web", verb: "patch" };

/** A client configuration for the cluster that authenticates as a pod would: with a ServiceAccount's token. */
function asServiceAccount(e: E2E, token: string): k8s.KubeConfig {
  const admin = kubeConfig({ kubeconfig: e.cluster.kubeconfig });
  const cluster = admin.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: "sa", token }],
    contexts: [{ name: "sa", cluster: cluster.name, user: "sa" }],
    currentContext: "sa",
  });
  return kc;
}

/** Posts to the control API with a bearer token; status and body. */
async function post(port: number, p: string, token: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.text() };
}

describe("control API with Kubernetes identities (TokenReview + SubjectAccessReview)", () => {
  it("allows an identity with patch on the Stack, forbids one without, and refuses a garbage token", async (t) => {
    const e = env();
    await e.kubectl("apply", "-f", path.join(ferryRoot(), "charts", "ferry", "crds", "stacks.ferry.dev.yaml"));
    await e.kubectl("wait", "--for=condition=Established", "crd/stacks.ferry.dev", "--timeout=60s");
    await e.kubectl("create", "namespace", "apps");
    await e.kubectl("create", "namespace", "ferry-system");
    for (const sa of ["deployer", "viewer"]) await e.kubectl("create", "serviceaccount", sa, "-n", "apps");
    await e.kubectl("create", "role", "stack-patcher", "-n", "apps", "--verb=patch", "--resource=stacks.ferry.dev");
    await e.kubectl(
      "create",
      "rolebinding",
      "deployer-patches-stacks",
      "-n",
      "apps",
      "--role=stack-patcher",
      "--serviceaccount=apps:deployer",
    );
    // The agent's own identity: only what the chart's ClusterRole gives it for the control API.
    await e.kubectl("create", "serviceaccount", "ferry", "-n", "ferry-system");
    await e.kubectl("create", "serviceaccount", "unprivileged", "-n", "ferry-system");
    await e.kubectl(
      "create",
      "clusterrole",
      "ferry-identity-review",
      "--verb=create",
      "--resource=tokenreviews.authentication.k8s.io,subjectaccessreviews.authorization.k8s.io",
    );
    await e.kubectl(
      "create",
      "clusterrolebinding",
      "ferry-identity-review",
      "--clusterrole=ferry-identity-review",
      "--serviceaccount=ferry-system:ferry",
    );
    const token = async (sa: string, ns: string) => (await e.kubectl("create", "token", sa, "-n", ns, "--duration=10m")).trim();
    const [deployer, viewer, agent, unprivileged] = await Promise.all([
      token("deployer", "apps"),
      token("viewer", "apps"),
      token("ferry", "ferry-system"),
      token("unprivileged", "ferry-system"),
    ]);

    const reviewer = kubeIdentityReviewer(asServiceAccount(e, agent));
    const allowed = await reviewer.review(deployer, WEB);
    assert.equal(allowed.kind, "allowed", JSON.stringify(allowed));
    assert.equal(allowed.kind === "allowed" && allowed.user.username, "system:serviceaccount:apps:deployer");
    assert.ok(allowed.kind === "allowed" && allowed.user.groups.includes("system:serviceaccounts:apps"));
    const forbidden = await reviewer.review(viewer, WEB);
    assert.equal(forbidden.kind, "forbidden", JSON.stringify(forbidden));
    assert.equal(forbidden.kind === "forbidden" && forbidden.user.username, "system:serviceaccount:apps:viewer");
    // The Role is namespaced: the same identity may not patch a Stack elsewhere.
    assert.equal((await reviewer.review(deployer, { ...WEB, namespace: "prod" })).kind, "forbidden");
    const garbage = await reviewer.review("not-a-kubernetes-token", WEB);
    assert.equal(garbage.kind, "unauthenticated", JSON.stringify(garbage));
    assert.ok(garbage.kind === "unauthenticated" && !garbage.reason.includes("not-a-kubernetes-token"));

    // Without the chart's ClusterRole the reviewer cannot work, and says what it lacks.
    await assert.rejects(
      kubeIdentityReviewer(asServiceAccount(e, unprivileged)).review(deployer, WEB),
      /TokenReview failed \(HTTP 403\); the agent's ServiceAccount needs create on tokenreviews.authentication.k8s.io/,
    );

    // Through the HTTP API: 401 / 403 / 202, and only the allowed call reaches the worker.
    const calls: string[] = [];
    const port = await serveApi(reviewer, calls);
    try {
      const unauth = await post(port.port, "/api/stacks/apps.web/suspend", "not-a-kubernetes-token");
      assert.equal(unauth.status, 401, unauth.body);
      t.diagnostic(`401: ${unauth.body.replace(/\s+/g, " ")}`);
      const denied = await post(port.port, "/api/stacks/apps.web/suspend", viewer);
      assert.equal(denied.status, 403, denied.body);
      t.diagnostic(`403: ${denied.body.replace(/\s+/g, " ")}`);
      assert.match(denied.body, /system:serviceaccount:apps:viewer may not patch stacks.ferry.dev \\"web\\" in namespace \\"apps\\"/);
      assert.ok(!denied.body.includes(viewer));
      assert.deepEqual(calls, []);
      const ok = await post(port.port, "/api/stacks/apps.web/suspend", deployer);
      assert.equal(ok.status, 202, ok.body);
      assert.deepEqual(calls, ["suspend apps.web"]);
    } finally {
      await port.close();
    }
  });
});

/** The agent's HTTP API over a RunnerView holding one operator-mode stack (`apps.web`) and the reviewer. */
async function serveApi(identity: IdentityReviewer, calls: string[]): Promise<{ port: number; close(): Promise<void> }> {
  const worker = {
    stack: { name: "apps.web" },
    status: { name: "apps.web", suspended: false },
    trigger: () => calls.push("trigger apps.web"),
    setSuspended: (s: boolean) => calls.push(`${s ? "suspend" : "resume"} apps.web`),
  } as unknown as StackWorker;
  const view: RunnerView = {
    config: { apiToken: "", webhookSecret: "", maxWebhookBytes: 1024 } as unknown as RunnerConfig,
    metrics: new RunnerMetrics(),
    workers: new Map([["apps.web", worker]]),
    isReady: () => true,
    identity,
    stackTarget: (stack) => (stack === "apps.web" ? { namespace: "apps", name: "web" } : undefined),
  };
  const server = http.createServer((req, res) => void handleRequest(view, req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
