/**
 * Limits on how much a config repo (and what it renders) can make ferry read and hold in memory, so
 * that one bad commit cannot take down a runner that serves every stack. The README lists them.
 */
export interface InputLimits {
  /** Largest YAML document (of a manifest file or of a render's output), in bytes. */
  readonly maxDocumentBytes: number;
  /**
   * How much YAML aliases (`*name`) may add to one document when expanded, counted as JSON text.
   * Checked while parsing, before anything is expanded: an alias bomb costs nothing.
   */
  readonly maxAliasExpansionBytes: number;
  /** Largest output of one `helm template` or `kustomize build`, in bytes; the tool is stopped when it prints more. */
  readonly maxRenderedBytes: number;
  /** Largest values text (valuesFrom a ConfigMap or Secret key, a chart's values file, a URL), in bytes. */
  readonly maxValuesBytes: number;
  /** Largest compressed layer of an OCI artifact a Kustomization reads (an OCIRepository source), in bytes. */
  readonly maxArtifactBytes: number;
  /** Largest OCI artifact once unpacked (the tar stream the layer holds), in bytes. */
  readonly maxArtifactUnpackedBytes: number;
  /** Most entries (files, folders, links) one OCI artifact may unpack to. */
  readonly maxArtifactEntries: number;
}

const MiB = 1024 * 1024;

/**
 * ferry's input limits: 4 MiB per YAML document, 1 MiB of alias expansion, 64 MiB per render, 4 MiB
 * per values text; an OCI artifact of at most 64 MiB compressed, 256 MiB and 20,000 entries unpacked.
 */
export const INPUT_LIMITS: InputLimits = {
  maxDocumentBytes: 4 * MiB,
  maxAliasExpansionBytes: 1 * MiB,
  maxRenderedBytes: 64 * MiB,
  maxValuesBytes: 4 * MiB,
  maxArtifactBytes: 64 * MiB,
  maxArtifactUnpackedBytes: 256 * MiB,
  maxArtifactEntries: 20_000,
};

/** A byte count for messages: `4 MiB`, `1.5 KiB`, `120 bytes`. */
export function formatBytes(n: number): string {
  const unit = n >= MiB ? ["MiB", MiB] : n >= 1024 ? ["KiB", 1024] : undefined;
  if (!unit) return `${n} bytes`;
  const value = n / (unit[1] as number);
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit[0] as string}`;
}
