import * as pulumi from "@pulumi/pulumi";
import { KubeObject, ObjectId, pulumiType, resourceName } from "../src/desired-state/object-id";

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
  const props: Record<string, unknown> = { ...object };
  if (isSecret) {
    for (const key of ["data", "stringData"]) if (props[key] !== undefined) props[key] = pulumi.secret(props[key]);
  }
  return new KubeObjectResource(pulumiType(id), resourceName(id), props, {
    ...opts,
    additionalSecretOutputs: isSecret ? ["data", "stringData"] : opts.additionalSecretOutputs,
  });
}
