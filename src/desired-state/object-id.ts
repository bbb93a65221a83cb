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

/** Whether objects of a kind live in a namespace or in the whole cluster. */
export type Scope = "Namespaced" | "Cluster";

/**
 * The identity of an object in the cluster: what Flux and Argo CD key their inventory on. It does
 * not depend on the API version (a version bump is the same object), nor on the file, chart or
 * Kustomization that declares it. `namespace` is set exactly for namespaced kinds. Make one only
 * with {@link objectId} (or {@link identify}), so every identity is normalised the same way.
 */
export interface ObjectId {
  readonly group: string;
  readonly kind: string;
  /** Set for namespaced kinds (an implied `default` is written out), absent for cluster-scoped ones. */
  readonly namespace?: string;
  readonly name: string;
}

/** The namespace objects of namespaced kinds get when the config repo names none (kubectl, Flux, Argo CD). */
export const DEFAULT_NAMESPACE = "default";

/**
 * The one constructor of {@link ObjectId}: the namespace is kept for namespaced kinds (the default
 * namespace when empty) and dropped for cluster-scoped ones. Pure.
 */
export function objectId(parts: { group: string; kind: string; name: string; namespace?: string }, scope: Scope): ObjectId {
  const { group, kind, name } = parts;
  return scope === "Cluster" ? { group, kind, name } : { group, kind, namespace: parts.namespace || DEFAULT_NAMESPACE, name };
}

/** The identity of an object whose scope is known; a namespaced object without a namespace gets `defaultNamespace`. Pure. */
export function identify(
  obj: Pick<KubeObject, "apiVersion" | "kind" | "metadata">,
  scope: Scope,
  defaultNamespace = DEFAULT_NAMESPACE,
): ObjectId {
  return objectId(
    {
      group: splitApiVersion(obj.apiVersion).group,
      kind: obj.kind,
      name: obj.metadata.name,
      namespace: obj.metadata.namespace || defaultNamespace,
    },
    scope,
  );
}

/**
 * The identity of an object as the cluster returned it (a live object, or the outputs Pulumi
 * recorded): the API server always sets the namespace of namespaced objects, so a namespace means
 * namespaced. Pure.
 */
export function liveObjectId(obj: {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
}): ObjectId | undefined {
  const { apiVersion, kind } = obj;
  const name = obj.metadata?.name;
  const namespace = obj.metadata?.namespace;
  if (typeof apiVersion !== "string" || typeof kind !== "string" || typeof name !== "string" || !name) return undefined;
  const ns = typeof namespace === "string" && namespace ? namespace : undefined;
  return objectId({ group: splitApiVersion(apiVersion).group, kind, name, namespace: ns }, ns ? "Namespaced" : "Cluster");
}

/** Splits `apps/v1` into group and version; core objects (`v1`) have group "". */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash < 0 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/**
 * The Pulumi resource name of an object, and the key of every map of objects:
 * `group/Kind/namespace/name` (`core` for the core group, no namespace segment for cluster-scoped
 * objects). Pure.
 */
export function resourceName(id: ObjectId): string {
  const group = id.group || "core";
  return id.namespace !== undefined ? `${group}/${id.kind}/${id.namespace}/${id.name}` : `${group}/${id.kind}/${id.name}`;
}

/** `Kind/namespace/name` (cluster-scoped: `Kind/name`), as users read it in kubectl output and logs. */
export function displayName(id: ObjectId): string {
  return id.namespace !== undefined ? `${id.kind}/${id.namespace}/${id.name}` : `${id.kind}/${id.name}`;
}

/** Whether two identities name the same object. */
export function sameObject(a: ObjectId, b: ObjectId): boolean {
  return resourceName(a) === resourceName(b);
}

/**
 * The Pulumi type token an object is registered with. It depends on the identity only (group and
 * kind), never on the API version the manifest uses: the token's version is always `v1`. The
 * provider takes the real apiVersion from the object itself; the token only has to name the
 * provider and the kind. So a version bump is an update of the same resource, never a new one.
 */
export function pulumiType(id: Pick<ObjectId, "group" | "kind">): string {
  return `kubernetes:${id.group || "core"}/v1:${id.kind}`;
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
  "authentication.k8s.io",
  "authorization.k8s.io",
  "storagemigration.k8s.io",
  "internal.apiserver.k8s.io",
]);

/**
 * Whether a group looks like one of Kubernetes' own (its exact groups, or a `*.k8s.io` group that is
 * not an `x-k8s.io` one): what the apply order puts early. Some `*.k8s.io` groups are CRDs
 * (gateway.networking.k8s.io), so scope decisions use {@link builtinScope} instead.
 */
export function isBuiltinGroup(group: string): boolean {
  return BUILTIN_GROUPS.has(group) || (group.endsWith(BUILTIN_GROUP_SUFFIX) && !group.includes("x-k8s.io"));
}

/** The cluster-scoped kinds Kubernetes itself serves (1.34), as `group/Kind`; every other built-in kind is namespaced. */
const BUILTIN_CLUSTER_SCOPED = new Set([
  "/Namespace",
  "/Node",
  "/PersistentVolume",
  "/ComponentStatus",
  "rbac.authorization.k8s.io/ClusterRole",
  "rbac.authorization.k8s.io/ClusterRoleBinding",
  "apiextensions.k8s.io/CustomResourceDefinition",
  "apiregistration.k8s.io/APIService",
  "storage.k8s.io/StorageClass",
  "storage.k8s.io/CSIDriver",
  "storage.k8s.io/CSINode",
  "storage.k8s.io/VolumeAttachment",
  "storage.k8s.io/VolumeAttributesClass",
  "scheduling.k8s.io/PriorityClass",
  "networking.k8s.io/IngressClass",
  "networking.k8s.io/IPAddress",
  "networking.k8s.io/ServiceCIDR",
  "node.k8s.io/RuntimeClass",
  "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
  "admissionregistration.k8s.io/MutatingWebhookConfiguration",
  "admissionregistration.k8s.io/ValidatingAdmissionPolicy",
  "admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding",
  "admissionregistration.k8s.io/MutatingAdmissionPolicy",
  "admissionregistration.k8s.io/MutatingAdmissionPolicyBinding",
  "certificates.k8s.io/CertificateSigningRequest",
  "certificates.k8s.io/ClusterTrustBundle",
  "flowcontrol.apiserver.k8s.io/FlowSchema",
  "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration",
  "resource.k8s.io/DeviceClass",
  "resource.k8s.io/ResourceSlice",
  "resource.k8s.io/DeviceTaintRule",
  "storagemigration.k8s.io/StorageVersionMigration",
  "internal.apiserver.k8s.io/StorageVersion",
  "authentication.k8s.io/TokenReview",
  "authentication.k8s.io/SelfSubjectReview",
  "authorization.k8s.io/SubjectAccessReview",
  "authorization.k8s.io/SelfSubjectAccessReview",
  "authorization.k8s.io/SelfSubjectRulesReview",
]);

/** The scope of a kind of one of Kubernetes' own groups; undefined for any other group (CRDs). Pure. */
export function builtinScope(group: string, kind: string): Scope | undefined {
  if (!BUILTIN_GROUPS.has(group)) return undefined;
  return BUILTIN_CLUSTER_SCOPED.has(`${group}/${kind}`) ? "Cluster" : "Namespaced";
}
