import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyDependencies, applyPhase, applyRank } from "../../src/desired-state/apply-order";
import { DesiredObject } from "../../src/desired-state/desired-state";
import { builtinScope, identify, KubeObject, splitApiVersion } from "../../src/desired-state/object-id";

const idOf = (o: KubeObject) => identify(o, builtinScope(splitApiVersion(o.apiVersion).group, o.kind) ?? "Namespaced");
const obj = (o: KubeObject): DesiredObject => ({ object: o, id: idOf(o), location: { file: "f.yaml", line: 1 }, prune: true });

describe("apply order", () => {
  it("puts Namespaces, then CRDs, then ClusterRoles and Classes before everything else", () => {
    const phase = (apiVersion: string, kind: string) => applyPhase(idOf({ apiVersion, kind, metadata: { name: "x" } }));
    assert.ok(phase("v1", "Namespace") < phase("apiextensions.k8s.io/v1", "CustomResourceDefinition"));
    assert.ok(phase("apiextensions.k8s.io/v1", "CustomResourceDefinition") < phase("rbac.authorization.k8s.io/v1", "ClusterRole"));
    assert.equal(phase("storage.k8s.io/v1", "StorageClass"), phase("rbac.authorization.k8s.io/v1", "ClusterRole"));
    assert.ok(phase("storage.k8s.io/v1", "StorageClass") < phase("apps/v1", "Deployment"));
    // A custom kind that happens to end in "Class" is not a built-in class.
    assert.equal(phase("example.com/v1", "WidgetClass"), phase("apps/v1", "Deployment"));
  });

  it("makes an object wait for the ClusterRoles and classes of its own unit only (a failing one holds back no other unit)", () => {
    const role = obj({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "admin-ish" } });
    const mine = obj({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "mine", namespace: "a" } });
    const other = obj({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "other", namespace: "b" } });
    const unit = new Map([
      [role, "Kustomization/a"],
      [mine, "Kustomization/a"],
      [other, "Kustomization/b"],
    ]);
    const deps = applyDependencies([role, mine, other], (o) => unit.get(o)!);
    assert.deepEqual(deps.get("core/ConfigMap/a/mine"), ["rbac.authorization.k8s.io/ClusterRole/admin-ish"]);
    assert.deepEqual(deps.get("core/ConfigMap/b/other"), []);
  });

  it("makes objects wait for their declared Namespace, CRD and the cluster-wide classes", () => {
    const deps = applyDependencies([
      obj({ apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } }),
      obj({
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: "widgets.example.com" },
        spec: { group: "example.com", names: { kind: "Widget" } },
      }),
      obj({ apiVersion: "networking.k8s.io/v1", kind: "IngressClass", metadata: { name: "nginx" } }),
      obj({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w", namespace: "demo" } }),
      obj({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "elsewhere" } }),
    ]);
    assert.deepEqual(deps.get("example.com/Widget/demo/w"), [
      "core/Namespace/demo",
      "apiextensions.k8s.io/CustomResourceDefinition/widgets.example.com",
      "networking.k8s.io/IngressClass/nginx",
    ]);
    // A namespace that is not declared (it already exists) is no dependency.
    assert.deepEqual(deps.get("core/ConfigMap/elsewhere/c"), ["networking.k8s.io/IngressClass/nginx"]);
    assert.deepEqual(deps.get("core/Namespace/demo"), []);
  });

  it("applies an account's ordinary objects after the ServiceAccounts and RBAC the stack applies with its own credentials", () => {
    const deployer = { namespace: "tenant", name: "deployer" };
    const objects = [
      { ...obj({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "app", namespace: "tenant" } }), serviceAccount: deployer },
      obj({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "rb", namespace: "tenant" } }),
      obj({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "deployer", namespace: "tenant" } }),
      {
        ...obj({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "own", namespace: "tenant" } }),
        serviceAccount: deployer,
      },
      { ...obj({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "cr" } }), serviceAccount: deployer },
    ];
    const deps = applyDependencies(objects);
    assert.deepEqual(deps.get("core/ConfigMap/tenant/app"), [
      "rbac.authorization.k8s.io/ClusterRole/cr",
      "rbac.authorization.k8s.io/RoleBinding/tenant/rb",
      "core/ServiceAccount/tenant/deployer",
    ]);
    // The account's own RBAC objects grant nothing it waits for; a ClusterRole (applied early) waits for nothing.
    assert.deepEqual(deps.get("rbac.authorization.k8s.io/Role/tenant/own"), [
      "rbac.authorization.k8s.io/ClusterRole/cr",
      "rbac.authorization.k8s.io/RoleBinding/tenant/rb",
      "core/ServiceAccount/tenant/deployer",
    ]);
    assert.deepEqual(deps.get("rbac.authorization.k8s.io/ClusterRole/cr"), []);
    // Registered after what they wait for.
    assert.deepEqual(
      objects.map((o) => applyRank(o)),
      [7, 6, 6, 7, 4],
    );
  });
});
