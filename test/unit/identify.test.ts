// Identities resolved once for the whole desired state: scope, namespace defaults, Flux's targetNamespace.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RenderedUnit, SourceObject } from "../../src/desired-state/desired-state";
import { crdScopes, identifyUnits, kindsToDiscover } from "../../src/desired-state/identify";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import { DesiredStateError } from "../../src/desired-state/manifest-error";
import { displayName, KubeObject } from "../../src/desired-state/object-id";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const source = (object: KubeObject): SourceObject => ({ object, location: { file: "f.yaml", line: 1 }, prune: true });
const unit = (objects: KubeObject[], namespace = { namespace: "default", override: false }): RenderedUnit => ({
  kind: "ManifestFile",
  name: "f.yaml",
  location: { file: "f.yaml", line: 1 },
  objects: objects.map(source),
  dependsOn: [],
  namespace,
});
const crd = (group: string, kind: string, scope: "Namespaced" | "Cluster"): KubeObject => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${kind.toLowerCase()}s.${group}` },
  spec: { group, names: { kind, plural: `${kind.toLowerCase()}s` }, scope, versions: [{ name: "v1", served: true, storage: true }] },
});

describe("identify", () => {
  it("writes the unit's namespace into namespaced objects that name none, and leaves cluster-scoped ones without", () => {
    const [u] = identifyUnits([
      unit([
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "implied" } },
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "explicit", namespace: "other" } },
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "ns", namespace: "stray" } },
      ]),
    ]);
    assert.deepEqual(
      u!.objects.map((o) => [displayName(o.id), o.object.metadata.namespace]),
      [
        ["ConfigMap/default/implied", "default"],
        ["ConfigMap/other/explicit", "other"],
        ["Namespace/ns", undefined],
      ],
    );
  });

  it("puts every namespaced object in a Flux targetNamespace, and release objects without one in the release namespace", () => {
    const objects: KubeObject[] = [
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "elsewhere" } },
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "r" } },
    ];
    const [target] = identifyUnits([unit(objects, { namespace: "team", override: true })]);
    assert.deepEqual(
      target!.objects.map((o) => displayName(o.id)),
      ["ConfigMap/team/a", "ClusterRole/r"],
    );
    const [release] = identifyUnits([unit(objects, { namespace: "apps", override: false })]);
    assert.deepEqual(
      release!.objects.map((o) => displayName(o.id)),
      ["ConfigMap/elsewhere/a", "ClusterRole/r"],
    );
  });

  it("takes a custom kind's scope from a CRD anywhere in the desired state, then from discovery", () => {
    const units = [
      unit([crd("example.com", "Widget", "Cluster")]),
      unit([
        { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } },
        { apiVersion: "other.io/v1", kind: "Gadget", metadata: { name: "g" } },
        { apiVersion: "unknown.io/v1", kind: "Thing", metadata: { name: "t" } },
      ]),
    ];
    assert.deepEqual(crdScopes(units.flatMap((u) => u.objects)), new Map([["example.com/Widget", "Cluster"]]));
    assert.deepEqual(kindsToDiscover(units), [
      { apiVersion: "other.io/v1", kind: "Gadget" },
      { apiVersion: "unknown.io/v1", kind: "Thing" },
    ]);
    const [, u] = identifyUnits(units, new Map([["other.io/Gadget", "Cluster"]]));
    assert.deepEqual(
      u!.objects.map((o) => displayName(o.id)),
      // Unknown to everyone: namespaced, as kubectl assumes (the dry run then refuses the kind).
      ["Widget/w", "Gadget/g", "Thing/default/t"],
    );
  });

  it("refuses the same object written with and without its implied default namespace, naming both files", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
      "c/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\n",
    });
    await assert.rejects(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools()), (err: unknown) => {
      assert.ok(err instanceof DesiredStateError);
      assert.match(err.message, /ConfigMap\/default\/app is defined twice: by c\/b\.yaml:1 .* and by c\/a\.yaml:1/);
      return true;
    });
  });

  it("puts objects that name no namespace in the kubeconfig context's namespace, as kubectl does", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/a.yaml":
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: implied}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: explicit, namespace: default}\n",
    });
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), new FakeRenderTools(), {
      defaultNamespace: "team",
    });
    assert.deepEqual(
      state.units.flatMap((u) => u.objects.map((o) => displayName(o.id))),
      ["ConfigMap/team/implied", "ConfigMap/default/explicit"],
    );
  });

  it("asks the cluster only for kinds neither Kubernetes nor a CRD of the desired state explains", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/crd.yaml":
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec: {group: example.com, names: {kind: Widget, plural: widgets}, scope: Namespaced}\n",
      "c/objects.yaml":
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: le}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
    });
    const tools = new FakeRenderTools();
    tools.served.set("cert-manager.io/ClusterIssuer", "Cluster");
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    assert.deepEqual(tools.discovered, ["cert-manager.io/v1/ClusterIssuer"]);
    assert.deepEqual(state.units.flatMap((u) => u.objects.map((o) => displayName(o.id))).sort(), [
      "ClusterIssuer/le",
      "CustomResourceDefinition/widgets.example.com",
      "Deployment/default/d",
      "Widget/default/w",
    ]);
  });
});
