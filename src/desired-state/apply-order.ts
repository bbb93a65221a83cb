import { DesiredObject } from "./desired-state";
import { isBuiltinGroup, ObjectId, resourceName, splitApiVersion } from "./object-id";

/**
 * Apply phases users know from Flux and Argo CD: Namespaces, then CRDs, then ClusterRoles and
 * `*Class` kinds, then everything else. Pruning happens in reverse (Pulumi deletes dependents first).
 */
export function applyPhase(id: ObjectId): number {
  if (id.group === "" && id.kind === "Namespace") return 0;
  if (id.group === "apiextensions.k8s.io" && id.kind === "CustomResourceDefinition") return 1;
  if (id.group === "rbac.authorization.k8s.io" && id.kind === "ClusterRole") return 2;
  if (isBuiltinGroup(id.group) && id.kind.endsWith("Class")) return 2;
  return 3;
}

/** The kinds that give an account its rights: applied with the stack's own credentials, they come before the objects applied as an account. */
const GRANTS: ReadonlySet<string> = new Set([
  "/ServiceAccount",
  "rbac.authorization.k8s.io/Role",
  "rbac.authorization.k8s.io/RoleBinding",
  "rbac.authorization.k8s.io/ClusterRole",
  "rbac.authorization.k8s.io/ClusterRoleBinding",
]);

/** Whether an object grants rights to accounts (a ServiceAccount or RBAC object) and is applied with the stack's own credentials. */
function grants(o: DesiredObject): boolean {
  return !o.serviceAccount && GRANTS.has(`${o.id.group}/${o.id.kind}`);
}

/** Whether an ordinary object is applied as an account (serviceAccountName): it waits for the stack's grants. */
function asAccount(o: DesiredObject): boolean {
  return o.serviceAccount !== undefined && applyPhase(o.id) === 3;
}

/**
 * The order objects are registered in: by {@link applyPhase}, and within the last phase the objects
 * applied as an account after the others, so that every dependency {@link applyDependencies} names
 * is registered before its dependents.
 */
export function applyRank(o: DesiredObject): number {
  return applyPhase(o.id) * 2 + (asAccount(o) ? 1 : 0);
}

/**
 * For every object, the resource names of the objects of the same desired state it must wait for:
 * its Namespace, the CRD of its kind, and (for ordinary objects) every ClusterRole and `*Class`;
 * an ordinary object applied as an account also waits for the ServiceAccounts and RBAC objects the
 * stack applies with its own credentials (as Flux's tenants get their RBAC before their
 * Kustomization runs). Only declared objects count: an object already in the cluster needs no
 * ordering. Pure.
 */
export function applyDependencies(objects: readonly DesiredObject[]): Map<string, string[]> {
  const namespaces = new Map<string, string>();
  const crds = new Map<string, string>(); // "group/Kind" -> resource name
  const early: string[] = [];
  const granting: string[] = [];
  for (const o of objects) {
    const name = resourceName(o.id);
    if (o.id.group === "" && o.id.kind === "Namespace") namespaces.set(o.id.name, name);
    if (o.id.group === "apiextensions.k8s.io" && o.id.kind === "CustomResourceDefinition") {
      const spec = o.object.spec as { group?: unknown; names?: { kind?: unknown } } | undefined;
      if (typeof spec?.group === "string" && typeof spec.names?.kind === "string") crds.set(`${spec.group}/${spec.names.kind}`, name);
    }
    if (applyPhase(o.id) === 2) early.push(name);
    if (grants(o) && applyPhase(o.id) === 3) granting.push(name);
  }
  const deps = new Map<string, string[]>();
  for (const o of objects) {
    const mine: string[] = [];
    const ns = o.id.namespace !== undefined ? namespaces.get(o.id.namespace) : undefined;
    if (ns) mine.push(ns);
    const crd = crds.get(`${splitApiVersion(o.object.apiVersion).group}/${o.id.kind}`);
    if (crd) mine.push(crd);
    if (applyPhase(o.id) === 3) mine.push(...early);
    if (asAccount(o)) mine.push(...granting);
    deps.set(resourceName(o.id), mine);
  }
  return deps;
}
