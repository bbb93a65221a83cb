import { syncWave } from "./argo-hooks";
import { DesiredObject, DesiredUnit } from "./desired-state";
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
 * its Namespace, the CRD of its kind, and (for ordinary objects) every ClusterRole and `*Class` of
 * its own unit (as kustomize-controller and Helm order one apply; across units only dependsOn
 * orders, so a unit's failing ClusterRole holds back no other unit);
 * an ordinary object applied as an account also waits for the ServiceAccounts and RBAC objects the
 * stack applies with its own credentials (as Flux's tenants get their RBAC before their
 * Kustomization runs). Only declared objects count: an object already in the cluster needs no
 * ordering. Pure.
 */
export function applyDependencies(
  objects: readonly DesiredObject[],
  unitOf: (o: DesiredObject) => string = () => "",
): Map<string, string[]> {
  const namespaces = new Map<string, string>();
  const crds = new Map<string, string>(); // "group/Kind" -> resource name
  const early = new Map<string, string[]>(); // unit -> its ClusterRoles and classes
  const granting: string[] = [];
  for (const o of objects) {
    const name = resourceName(o.id);
    if (o.id.group === "" && o.id.kind === "Namespace") namespaces.set(o.id.name, name);
    if (o.id.group === "apiextensions.k8s.io" && o.id.kind === "CustomResourceDefinition") {
      const spec = o.object.spec as { group?: unknown; names?: { kind?: unknown } } | undefined;
      if (typeof spec?.group === "string" && typeof spec.names?.kind === "string") crds.set(`${spec.group}/${spec.names.kind}`, name);
    }
    if (applyPhase(o.id) === 2) early.set(unitOf(o), [...(early.get(unitOf(o)) ?? []), name]);
    if (grants(o) && applyPhase(o.id) === 3) granting.push(name);
  }
  const deps = new Map<string, string[]>();
  for (const o of objects) {
    const mine: string[] = [];
    const ns = o.id.namespace !== undefined ? namespaces.get(o.id.namespace) : undefined;
    if (ns) mine.push(ns);
    const crd = crds.get(`${splitApiVersion(o.object.apiVersion).group}/${o.id.kind}`);
    if (crd) mine.push(crd);
    if (applyPhase(o.id) === 3) mine.push(...(early.get(unitOf(o)) ?? []));
    if (asAccount(o)) mine.push(...granting);
    deps.set(resourceName(o.id), mine);
  }
  return deps;
}

/**
 * An object's sync wave in its unit (`argocd.argoproj.io/sync-wave`, Argo CD's ordering): 0 unless
 * annotated, and always 0 in a HelmRelease, whose objects helm-controller applies together. Pure.
 */
export function unitWave(unit: Pick<DesiredUnit, "kind">, object: DesiredObject): number {
  return unit.kind === "HelmRelease" ? 0 : syncWave(object.object);
}

/**
 * For every object of a unit with sync waves, the resource names of the objects of its own unit
 * in lower waves it must wait for (Argo CD applies a wave once the lower ones are applied). The
 * apply phases of {@link applyPhase} come first, as Argo CD moves a Namespace or CRD ahead of what
 * uses it: an object never waits for one of a later phase, so the order (phase, wave) has no cycle.
 * Only the edges the others do not already imply are listed: in a unit of ordinary objects, each
 * wave waits for the one below it. Pure.
 */
export function waveDependencies(units: readonly Pick<DesiredUnit, "kind" | "objects">[]): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const unit of units) {
    const byWave = new Map<number, DesiredObject[]>();
    for (const o of unit.objects) {
      const wave = unitWave(unit, o);
      byWave.set(wave, [...(byWave.get(wave) ?? []), o]);
    }
    if (byWave.size < 2) continue;
    const waves = [...byWave.keys()].sort((a, b) => a - b);
    for (const [i, wave] of waves.entries()) {
      for (const o of byWave.get(wave)!) {
        const phase = applyPhase(o.id);
        const mine: string[] = [];
        // The highest phase (at most this object's) that some object of a wave in between covers:
        // every object of a lower wave and a phase up to it is already waited for through that one.
        let covered = -1;
        for (const lower of waves.slice(0, i).reverse()) {
          let reached = covered;
          for (const p of byWave.get(lower)!) {
            const pPhase = applyPhase(p.id);
            if (pPhase > phase) continue;
            if (pPhase > covered) mine.push(resourceName(p.id));
            reached = Math.max(reached, pPhase);
          }
          covered = reached;
        }
        if (mine.length > 0) deps.set(resourceName(o.id), mine);
      }
    }
  }
  return deps;
}
