import * as pulumi from "@pulumi/pulumi";
import { KubeObject, ObjectId, pulumiType, resourceName } from "../src/desired-state/object-id";
import { SKIP_AWAIT_ANNOTATION } from "../src/desired-state/provider-annotations";

/**
 * The kinds the provider still awaits: a CRD must be Established before the objects of its kinds can
 * be applied in the same update (Flux waits for it too). Every other object is applied without the
 * provider's await (a Deployment's rollout, a Service's endpoints, a PVC's binding, an Ingress's
 * address would each hold a run up to 10 minutes): readiness is ferry's own, read after the apply
 * (src/reconcile/readiness.ts) and waited for only by the units that ask (`wait`, `healthChecks`).
 */
const AWAITED = new Set(["apiextensions.k8s.io/CustomResourceDefinition"]);

/** The object with the provider's `pulumi.com/skipAwait` annotation. */
function skipAwait(object: KubeObject): Record<string, unknown> {
  return { ...object, metadata: { ...object.metadata, annotations: { ...object.metadata.annotations, [SKIP_AWAIT_ANNOTATION]: "true" } } };
}

/** A Kubernetes object of any kind, addressed by a type token of the Kubernetes provider. */
class KubeObjectResource extends pulumi.CustomResource {}

/**
 * Registers one Kubernetes object as its own Pulumi resource. Its name and type token come from the
 * object's identity alone (see {@link pulumiType}), so the URN never changes when the object moves
 * between files, Kustomize folders, charts or Kustomizations, or changes its API version. Secret
 * data is marked secret, and so is every field but the identity (`apiVersion`, `kind`, `metadata`)
 * of a `sensitive` object (rendered from values read from a Secret): plans show it masked and the
 * stack's state holds it encrypted.
 */
export function kubeObject(id: ObjectId, object: KubeObject, opts: pulumi.CustomResourceOptions, sensitive = false): pulumi.CustomResource {
  const props: Record<string, unknown> = AWAITED.has(`${id.group}/${id.kind}`) ? { ...object } : skipAwait(object);
  const secretKeys =
    id.group === "" && id.kind === "Secret"
      ? ["data", "stringData"]
      : sensitive
        ? Object.keys(props).filter((k) => !IDENTITY_FIELDS.has(k))
        : [];
  for (const key of secretKeys) if (props[key] !== undefined) props[key] = pulumi.secret(props[key]);
  return new KubeObjectResource(pulumiType(id), resourceName(id), props, {
    ...opts,
    additionalSecretOutputs: secretKeys.length > 0 ? secretKeys : opts.additionalSecretOutputs,
  });
}

/** The fields that say which object it is: never secret, or the engine could not tell objects apart. */
const IDENTITY_FIELDS = new Set(["apiVersion", "kind", "metadata"]);
