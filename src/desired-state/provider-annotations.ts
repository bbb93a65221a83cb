/**
 * The Kubernetes provider's annotation that skips its await: ferry sets it on the objects it applies
 * (so it is on the live objects too) and reads readiness itself.
 */
export const SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait";

/** An object's fields as recorded in the stack's state, without the annotations ferry itself adds for the provider. Pure. */
export function withoutProviderAnnotations(inputs: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const metadata = inputs.metadata as { annotations?: Record<string, unknown> } | undefined;
  if (!metadata?.annotations || !(SKIP_AWAIT_ANNOTATION in metadata.annotations)) return inputs;
  const annotations = Object.fromEntries(Object.entries(metadata.annotations).filter(([k]) => k !== SKIP_AWAIT_ANNOTATION));
  const rest = Object.fromEntries(Object.entries(metadata).filter(([k]) => k !== "annotations"));
  return { ...inputs, metadata: Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest };
}
