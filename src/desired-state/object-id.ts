/** A Kubernetes object as written in the config repo. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
    readonly [key: string]: unknown;
  };
  readonly [key: string]: unknown;
}

/** The identity of an object in the cluster, independent of its API version. */
export interface ObjectId {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** Splits `apps/v1` into group and version; core objects (`v1`) have group "". */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash < 0 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The identity of a manifest. */
export function objectId(obj: KubeObject): ObjectId {
  return {
    group: splitApiVersion(obj.apiVersion).group,
    kind: obj.kind,
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name,
  };
}

/**
 * The Pulumi resource name of an object: `group/Kind/namespace/name` (`core` for the core group,
 * no namespace segment for cluster-scoped objects). The API version is left out on purpose: moving
 * a manifest from `v1beta1` to `v1` must update the object, never delete and recreate it.
 */
export function resourceName(id: ObjectId): string {
  const group = id.group || "core";
  return id.namespace ? `${group}/${id.kind}/${id.namespace}/${id.name}` : `${group}/${id.kind}/${id.name}`;
}

/** `Kind/namespace/name` as users read it in kubectl output and logs. */
export function displayName(id: ObjectId): string {
  return id.namespace ? `${id.kind}/${id.namespace}/${id.name}` : `${id.kind}/${id.name}`;
}

/** The Pulumi type token the Kubernetes provider uses for an apiVersion/kind. */
export function pulumiType(apiVersion: string, kind: string): string {
  const { group, version } = splitApiVersion(apiVersion);
  return `kubernetes:${group || "core"}/${version}:${kind}`;
}

const BUILTIN_GROUP_SUFFIX = ".k8s.io";
const BUILTIN_GROUPS = new Set([
  "",
  "apps",
  "batch",
  "autoscaling",
  "policy",
  "extensions",
  "networking.k8s.io",
  "rbac.authorization.k8s.io",
  "storage.k8s.io",
  "apiextensions.k8s.io",
  "admissionregistration.k8s.io",
  "apiregistration.k8s.io",
  "certificates.k8s.io",
  "coordination.k8s.io",
  "discovery.k8s.io",
  "events.k8s.io",
  "flowcontrol.apiserver.k8s.io",
  "node.k8s.io",
  "scheduling.k8s.io",
  "resource.k8s.io",
]);

/** Whether a group is served by Kubernetes itself (not by a CRD). */
export function isBuiltinGroup(group: string): boolean {
  return BUILTIN_GROUPS.has(group) || (group.endsWith(BUILTIN_GROUP_SUFFIX) && !group.includes("x-k8s.io"));
}
