import * as pulumi from "@pulumi/pulumi";
import { KubeObject, ObjectId, pulumiType, resourceName } from "../src/desired-state/object-id";

/**
 * Kinds whose readiness depends on something the desired state does not hold — a provisioner that
 * binds the claim (or a first consumer, WaitForFirstConsumer), a controller that publishes the
 * Ingress's address — so the provider's await would hold a run for its whole timeout and fail it.
 * They are applied without awaiting, as Flux and Argo CD apply them.
 */
const NO_AWAIT = new Set(["/PersistentVolumeClaim", "networking.k8s.io/Ingress"]);

/** The object with the provider's `pulumi.com/skipAwait` annotation. */
function skipAwait(object: KubeObject): Record<string, unknown> {
  return { ...object, metadata: { ...object.metadata, annotations: { ...object.metadata.annotations, "pulumi.com/skipAwait": "true" } } };
}

/** A Kubernetes object of any kind, addressed by a type token of the Kubernetes provider. */
class KubeObjectResource extends pulumi.CustomResource {}

/**
 * Registers one Kubernetes object as its own Pulumi resource. Its name and type token come from the
 * object's identity alone (see {@link pulumiType}), so the URN never changes when the object moves
 * between files, Kustomize folders, charts or Kustomizations, or changes its API version. Secret
 * data is marked secret.
 */
export function kubeObject(id: ObjectId, object: KubeObject, opts: pulumi.CustomResourceOptions): pulumi.CustomResource {
  const isSecret = id.group === "" && id.kind === "Secret";
  const props: Record<string, unknown> = NO_AWAIT.has(`${id.group}/${id.kind}`) ? skipAwait(object) : { ...object };
  if (isSecret) {
    for (const key of ["data", "stringData"]) if (props[key] !== undefined) props[key] = pulumi.secret(props[key]);
  }
  return new KubeObjectResource(pulumiType(id), resourceName(id), props, {
    ...opts,
    additionalSecretOutputs: isSecret ? ["data", "stringData"] : opts.additionalSecretOutputs,
  });
}
