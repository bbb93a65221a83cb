import { DesiredObject, DesiredUnit, unitKey } from "./desired-state";
import { formatLocation, ManifestError } from "./manifest-error";
import { displayName, KubeObject, objectId } from "./object-id";

/** Annotation Flux v1 users put on objects in Git: "true" skips the object, "sync_only" applies but never prunes. */
export const FLUX_IGNORE = "fluxcd.io/ignore";
/** Annotation of Flux v2: "disabled" means never prune the object. */
export const KUSTOMIZE_PRUNE = "kustomize.toolkit.fluxcd.io/prune";

/** Drops objects marked `fluxcd.io/ignore: "true"` and marks never-prune ones. Pure. */
export function applyIgnoreRules(objects: readonly DesiredObject[]): DesiredObject[] {
  return objects.flatMap((o) => {
    const annotations = o.object.metadata.annotations ?? {};
    const ignore = String(annotations[FLUX_IGNORE] ?? "").toLowerCase();
    if (ignore === "true") return [];
    const neverPrune = ignore === "sync_only" || String(annotations[KUSTOMIZE_PRUNE] ?? "").toLowerCase() === "disabled";
    return [neverPrune ? { ...o, prune: false } : o];
  });
}

/** Kinds that are never namespaced (for giving rendered objects the release namespace). */
const CLUSTER_SCOPED = new Set([
  "Namespace",
  "Node",
  "PersistentVolume",
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "StorageClass",
  "PriorityClass",
  "IngressClass",
  "RuntimeClass",
  "CSIDriver",
  "CSINode",
  "VolumeAttachment",
  "ValidatingWebhookConfiguration",
  "MutatingWebhookConfiguration",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionPolicyBinding",
  "APIService",
  "CertificateSigningRequest",
  "FlowSchema",
  "PriorityLevelConfiguration",
]);

/** Whether a kind is namespaced; custom kinds follow the scope their CRD declares when known. */
export function isNamespacedKind(kind: string, crdScopes: ReadonlyMap<string, boolean> = new Map()): boolean {
  return crdScopes.get(kind) ?? !CLUSTER_SCOPED.has(kind);
}

/**
 * Puts namespaced objects into a namespace: only those without one (`helm install` semantics), or
 * all of them (`override`, Flux's `targetNamespace`). Pure.
 */
export function namespaceObjects(objects: readonly DesiredObject[], namespace: string, options: { override: boolean }): DesiredObject[] {
  const crdScopes = new Map<string, boolean>();
  for (const o of objects) {
    if (o.id.kind === "CustomResourceDefinition") {
      const spec = o.object.spec as { names?: { kind?: string }; scope?: string } | undefined;
      if (spec?.names?.kind) crdScopes.set(spec.names.kind, spec.scope !== "Cluster");
    }
  }
  return objects.map((o) => {
    if (!isNamespacedKind(o.id.kind, crdScopes)) return o;
    if (o.id.namespace && !options.override) return o;
    const object: KubeObject = { ...o.object, metadata: { ...o.object.metadata, namespace } };
    return { ...o, object, id: objectId(object) };
  });
}

/** Every object defined more than once across units, as errors naming both places. Pure. */
export function findDuplicates(units: readonly DesiredUnit[]): ManifestError[] {
  const seen = new Map<string, { o: DesiredObject; unit: DesiredUnit }>();
  const errors: ManifestError[] = [];
  for (const unit of units) {
    for (const o of unit.objects) {
      const key = `${o.id.group}/${o.id.kind}/${o.id.namespace}/${o.id.name}`;
      const first = seen.get(key);
      if (!first) {
        seen.set(key, { o, unit });
        continue;
      }
      const where = (u: DesiredUnit, d: DesiredObject): string =>
        u.kind === "ManifestFile" ? formatLocation(d.location) : `${unitKey(u)} (${formatLocation(d.location)})`;
      errors.push(
        new ManifestError(
          o.location,
          `${displayName(o.id)} is defined twice: by ${where(unit, o)} and by ${where(first.unit, first.o)}`,
          "keep one definition and remove the other",
        ),
      );
    }
  }
  return errors;
}
