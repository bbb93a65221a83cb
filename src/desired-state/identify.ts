import { DesiredObject, DesiredUnit, RenderedUnit, SourceObject } from "./desired-state";
import { builtinScope, identify, KubeObject, Scope, splitApiVersion } from "./object-id";

/** `group/Kind`, the key of scope tables. */
export type GroupKind = string;

/** `group/Kind` of an object or a CRD's names. */
export function groupKind(group: string, kind: string): GroupKind {
  return `${group}/${kind}`;
}

/** The scope each CRD of the desired state declares for its kind. Pure. */
export function crdScopes(objects: readonly SourceObject[]): Map<GroupKind, Scope> {
  const scopes = new Map<GroupKind, Scope>();
  for (const { object } of objects) {
    if (object.kind !== "CustomResourceDefinition" || splitApiVersion(object.apiVersion).group !== "apiextensions.k8s.io") continue;
    const spec = object.spec as { group?: unknown; names?: { kind?: unknown }; scope?: unknown } | undefined;
    if (typeof spec?.group === "string" && typeof spec.names?.kind === "string") {
      scopes.set(groupKind(spec.group, spec.names.kind), spec.scope === "Cluster" ? "Cluster" : "Namespaced");
    }
  }
  return scopes;
}

/**
 * The kinds of the rendered units whose scope neither Kubernetes' own kinds nor a CRD of the desired
 * state tells: to be asked of the live cluster (discovery). Pure.
 */
export function kindsToDiscover(units: readonly RenderedUnit[]): { apiVersion: string; kind: string }[] {
  const objects = units.flatMap((u) => u.objects);
  const crds = crdScopes(objects);
  const wanted = new Map<string, { apiVersion: string; kind: string }>();
  for (const { object } of objects) {
    const { group } = splitApiVersion(object.apiVersion);
    if (builtinScope(group, object.kind) || crds.has(groupKind(group, object.kind))) continue;
    wanted.set(`${object.apiVersion}/${object.kind}`, { apiVersion: object.apiVersion, kind: object.kind });
  }
  return [...wanted.values()];
}

/**
 * Resolves every object's identity once, for the whole desired state: the scope of its kind comes
 * from a CRD of the desired state, else from the live cluster's discovery (`discovered`), else from
 * Kubernetes' own kinds; a kind nobody knows counts as namespaced (as kubectl and the Pulumi
 * provider assume; the dry run then reports it if the cluster does not serve it). Namespaced objects
 * get their unit's namespace when they name none (or always, for Flux's `targetNamespace`), and the
 * object carries the result, so what is applied is what is identified. Pure.
 */
export function identifyUnits(units: readonly RenderedUnit[], discovered: ReadonlyMap<GroupKind, Scope> = new Map()): DesiredUnit[] {
  const crds = crdScopes(units.flatMap((u) => u.objects));
  const scopeOf = (object: KubeObject): Scope => {
    const { group } = splitApiVersion(object.apiVersion);
    const key = groupKind(group, object.kind);
    return crds.get(key) ?? discovered.get(key) ?? builtinScope(group, object.kind) ?? "Namespaced";
  };
  return units.map(({ namespace: policy, ...unit }) => ({
    ...unit,
    objects: unit.objects.map((o): DesiredObject => {
      const scope = scopeOf(o.object);
      const written = policy.override ? undefined : o.object.metadata.namespace;
      const id = identify({ ...o.object, metadata: { ...o.object.metadata, namespace: written } }, scope, policy.namespace);
      return { ...o, id, object: withNamespace(o.object, id.namespace) };
    }),
  }));
}

/** The object with exactly this namespace (none for cluster-scoped objects). */
function withNamespace(object: KubeObject, namespace: string | undefined): KubeObject {
  if (object.metadata.namespace === namespace) return object;
  const metadata = { ...object.metadata, namespace };
  if (namespace === undefined) delete metadata.namespace;
  return { ...object, metadata };
}
