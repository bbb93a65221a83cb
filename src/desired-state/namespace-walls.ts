import { FluxKustomizationSpec } from "./flux-kustomization";
import { HelmReleaseSpec } from "./helm-release";
import { ManifestError } from "./manifest-error";
import { SourcePolicy } from "./source-policy";

const ALLOW_HINT = "set ferry:allowCrossNamespaceRefs (or --allow-cross-namespace-refs) for single-tenant setups";
const ALLOW_SOURCE_HINT = "or set ferry:allowCrossNamespaceSourceRefs: true (Flux's default)";

/**
 * The references of a HelmRelease that leave its own namespace — `valuesFrom` ConfigMaps and
 * Secrets (Flux v1's `configMapKeyRef`/`secretKeyRef` may name a namespace) and the chart's
 * `sourceRef`/`chartRef` (allowed by default, as Flux allows them; refused with
 * `allowCrossNamespaceSourceRefs: false`, as Flux's `--no-cross-namespace-refs`) — unless the policy
 * allows them. A `targetNamespace` of its own is fine: the values are still read in the
 * HelmRelease's namespace. Pure.
 */
export function helmReleaseWalls(
  spec: HelmReleaseSpec,
  policy: Pick<SourcePolicy, "allowCrossNamespaceRefs" | "allowCrossNamespaceSourceRefs">,
): ManifestError[] {
  const what = `HelmRelease/${spec.namespace}/${spec.name}`;
  const errors: ManifestError[] = [];
  if (spec.sourceRef && spec.sourceRef.namespace !== spec.namespace && !policy.allowCrossNamespaceSourceRefs) {
    const { kind, namespace, name } = spec.sourceRef;
    errors.push(sourceRefusal(spec, `${what}: sourceRef ${kind}/${namespace}/${name}`, `declare a ${kind} in ${spec.namespace}`));
  }
  if (policy.allowCrossNamespaceRefs) return errors;
  for (const ref of spec.valuesFrom) {
    if (ref.kind !== "ConfigMap" && ref.kind !== "Secret") continue;
    if (ref.namespace !== spec.namespace) {
      errors.push(
        refusal(spec, `${what}: valuesFrom ${ref.kind}/${ref.namespace}/${ref.name}`, `move the ${ref.kind} to ${spec.namespace}`),
      );
    }
  }
  return errors;
}

/** A Flux Kustomization's `sourceRef` naming another namespace, refused unless the policy allows it. Pure. */
export function kustomizationWalls(
  spec: FluxKustomizationSpec,
  policy: Pick<SourcePolicy, "allowCrossNamespaceSourceRefs">,
): ManifestError[] {
  if (policy.allowCrossNamespaceSourceRefs || !spec.sourceRef || spec.sourceRef.namespace === spec.namespace) return [];
  const { kind, namespace, name } = spec.sourceRef;
  return [
    sourceRefusal(
      spec,
      `Kustomization/${spec.namespace}/${spec.name}: sourceRef ${kind}/${namespace}/${name}`,
      `declare a ${kind} in ${spec.namespace}`,
    ),
  ];
}

function refusal(owner: { namespace: string; location: ManifestError["location"] }, ref: string, move: string): ManifestError {
  return new ManifestError(
    owner.location,
    `${ref} is in another namespace; references resolve only in the object's own namespace (${owner.namespace}), as Flux's --no-cross-namespace-refs`,
    `${move}, or ${ALLOW_HINT}`,
  );
}

function sourceRefusal(owner: { namespace: string; location: ManifestError["location"] }, ref: string, move: string): ManifestError {
  return new ManifestError(
    owner.location,
    `${ref} is in another namespace, and this stack's ferry:allowCrossNamespaceSourceRefs is false (as Flux's --no-cross-namespace-refs)`,
    `${move}, ${ALLOW_SOURCE_HINT}`,
  );
}
