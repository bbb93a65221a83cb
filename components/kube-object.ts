import * as pulumi from "@pulumi/pulumi";
import { KubeObject, pulumiType, splitApiVersion } from "../src/desired-state/object-id";

/** Versions an object may have been declared with before; aliases keep a version bump an in-place update. */
const KNOWN_VERSIONS = ["v1", "v1beta1", "v1beta2", "v1beta3", "v1alpha1", "v1alpha2", "v1alpha3", "v2", "v2beta1", "v2beta2", "v3"];

/** A Kubernetes object of any kind, addressed by the provider's type token. */
class KubeObjectResource extends pulumi.CustomResource {}

/**
 * Registers one Kubernetes object as its own Pulumi resource, with the provider's type token for
 * its apiVersion/kind (the same resource the typed SDK classes create). Secret data is marked secret.
 */
export function kubeObject(name: string, object: KubeObject, opts: pulumi.CustomResourceOptions): pulumi.CustomResource {
  const { group, version } = splitApiVersion(object.apiVersion);
  const isSecret = group === "" && object.kind === "Secret";
  const props: Record<string, unknown> = { ...object };
  if (isSecret) {
    for (const key of ["data", "stringData"]) if (props[key] !== undefined) props[key] = pulumi.secret(props[key]);
  }
  const aliases = KNOWN_VERSIONS.filter((v) => v !== version).map((v) => ({ type: `kubernetes:${group || "core"}/${v}:${object.kind}` }));
  return new KubeObjectResource(pulumiType(object.apiVersion, object.kind), name, props, {
    ...opts,
    aliases: [...(opts.aliases ?? []), ...aliases],
    additionalSecretOutputs: isSecret ? ["data", "stringData"] : opts.additionalSecretOutputs,
  });
}
