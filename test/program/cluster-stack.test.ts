// Program tier: the components under Pulumi's mocks (no engine, no cluster).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { resourceName } from "../../src/desired-state/object-id";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];

void pulumi.runtime.setMocks(
  {
    newResource: (args) => {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call: () => ({}),
  },
  "ferry",
  "dev",
  false,
);

describe("ClusterStack", () => {
  it("registers every object as a child of the cluster, named by its identity, Namespaces and CRDs first, adopting older URNs", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/a-app.yaml": [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata: {name: web, namespace: demo}",
        "spec: {selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: nginx}]}}}",
        "---",
        "apiVersion: example.com/v1",
        "kind: Widget",
        "metadata: {name: w, namespace: demo}",
        "---",
        "apiVersion: v1",
        "kind: Secret",
        "metadata: {name: creds, namespace: demo}",
        "stringData: {password: hunter2}",
      ].join("\n"),
      "c/z-crd.yaml":
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec: {group: example.com, names: {kind: Widget, plural: widgets}, scope: Namespaced}\n",
      "c/z-ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n",
    });
    const { ClusterStack } = await import("../../components/cluster-stack");
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools());
    const seen: pulumi.ResourceTransformationArgs[] = [];
    const adopted =
      "urn:pulumi:dev::ferry::ferry:index:ClusterStack$ferry:index:ManifestFile$kubernetes:core/v1:Secret::core/Secret/demo/creds";
    const stack = new ClusterStack(
      "cluster",
      { state, clusterIdentifier: "dev", adopt: { "core/Secret/demo/creds": adopted } },
      { transformations: [(a) => void seen.push(a)] },
    );
    assert.equal(stack.objectCount, 5);
    await new Promise((r) => setTimeout(r, 100));
    const objects = registered.filter((r) => r.type.startsWith("kubernetes:") && r.type !== "pulumi:providers:kubernetes");
    const names = objects.map((r) => `${r.type} ${r.name}`);
    // Namespaces and CRDs are registered first; the rest follow (the mock sees them asynchronously).
    assert.deepEqual(names.slice(0, 2), [
      "kubernetes:core/v1:Namespace core/Namespace/demo",
      "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition apiextensions.k8s.io/CustomResourceDefinition/widgets.example.com",
    ]);
    assert.deepEqual(names.slice(2).sort(), [
      "kubernetes:apps/v1:Deployment apps/Deployment/demo/web",
      "kubernetes:core/v1:Secret core/Secret/demo/creds",
      "kubernetes:example.com/v1:Widget example.com/Widget/demo/w",
    ]);
    const provider = registered.find((r) => r.type === "pulumi:providers:kubernetes");
    assert.equal(provider?.inputs.clusterIdentifier, "dev");
    // The provider's own client rate limit unless the stack sets one.
    assert.equal(provider?.inputs.kubeClientSettings, undefined);
    // No component per file: every object is a direct child of the ClusterStack, so its URN is its identity's.
    assert.equal(registered.filter((r) => r.type.startsWith("ferry:index:") && r.type !== "ferry:index:ClusterStack").length, 0);
    const children = seen.filter((a) => a.type.startsWith("kubernetes:") && a.type !== "pulumi:providers:kubernetes");
    assert.equal(children.length, 5);
    for (const c of children) assert.equal(c.opts.parent, stack, `${c.name} is a child of the ClusterStack`);
    assert.deepEqual(children.find((c) => c.name === "core/Secret/demo/creds")?.opts.aliases, [adopted]);
    assert.equal(children.find((c) => c.name === "apps/Deployment/demo/web")?.opts.aliases, undefined);
    // The pipeline computes the same URNs the program registers.
    const { objectUrn } = await import("../../src/reconcile/pulumi-stack");
    const deployment = state.units.flatMap((u) => u.objects).find((o) => o.id.kind === "Deployment")!;
    const urn = await new Promise<string>((resolve) =>
      pulumi.createUrn(resourceName(deployment.id), "kubernetes:apps/v1:Deployment", stack).apply(resolve),
    );
    assert.equal(urn, objectUrn("dev", deployment.id));
  });

  it("applies a serviceAccountName unit's objects through a provider impersonating it, with the same clusterIdentifier", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/tenant.yaml":
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: tenant, namespace: tenant}\n" +
        "spec: {path: ./tenant, prune: true, serviceAccountName: deployer}\n",
      "c/own.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: own, namespace: tenant}\n",
      "tenant/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: tenant}\n",
    });
    const { ClusterStack } = await import("../../components/cluster-stack");
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools());
    const seen: pulumi.ResourceTransformationArgs[] = [];
    const user = "system:serviceaccount:tenant:deployer";
    new ClusterStack(
      "tenant",
      { state, clusterIdentifier: "dev", impersonation: { [user]: "kubeconfig impersonating the deployer" } },
      { transformations: [(a) => void seen.push(a)] },
    );
    await new Promise((r) => setTimeout(r, 100));
    const providers = seen.filter((a) => a.type === "pulumi:providers:kubernetes");
    assert.deepEqual(providers.map((p) => p.name).sort(), ["cluster", `cluster-as-${user}`]);
    const impersonating = providers.find((p) => p.name !== "cluster")!;
    assert.equal((impersonating.props as { clusterIdentifier?: string }).clusterIdentifier, "dev");
    assert.ok(pulumi.Output.isInstance((impersonating.props as { kubeconfig?: unknown }).kubeconfig), "the kubeconfig is a secret");
    const providerOf = (name: string) => seen.find((a) => a.name === name)?.opts.provider;
    assert.equal(providerOf("core/ConfigMap/tenant/app"), impersonating.resource);
    assert.equal(providerOf("core/ConfigMap/tenant/own"), providers.find((p) => p.name === "cluster")!.resource);
    // Without the kubeconfig the program refuses rather than apply with the stack's own rights.
    assert.throws(
      () => new ClusterStack("again", { state, clusterIdentifier: "dev" }),
      /no kubeconfig impersonating system:serviceaccount:tenant:deployer/,
    );
  });

  it("gives the provider the stack's client rate limit (ferry:kubeClientQps, ferry:kubeClientBurst)", async () => {
    const repo = tempDir();
    writeFiles(repo, { "c/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n" });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools());
    const { ClusterStack } = await import("../../components/cluster-stack");
    new ClusterStack("tuned", { state, clusterIdentifier: "dev", kubeClient: { qps: 200, burst: 400 } });
    await new Promise((r) => setTimeout(r, 100));
    const tuned = registered.filter((r) => r.type === "pulumi:providers:kubernetes" && r.inputs.kubeClientSettings !== undefined);
    assert.equal(tuned.length, 1);
    // Provider inputs that are objects travel as JSON.
    const settings = tuned[0]!.inputs.kubeClientSettings;
    assert.deepEqual(typeof settings === "string" ? JSON.parse(settings) : settings, { qps: 200, burst: 400 });
  });
});
