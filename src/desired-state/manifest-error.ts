/** Where in the config repo something came from. */
export interface SourceLocation {
  /** Path relative to the checkout root, with forward slashes. */
  readonly file: string;
  /** 1-based line of the document (or of the error). */
  readonly line: number;
  /** 1-based column, when known. */
  readonly column?: number;
  /** 0-based index of the YAML document in the file. */
  readonly document?: number;
}

/** A problem with one file of the config repo: names the file, document and line, and how to fix it. */
export class ManifestError extends Error {
  constructor(
    readonly location: SourceLocation,
    readonly problem: string,
    readonly hint?: string,
  ) {
    super(`${formatLocation(location)}: ${problem}${hint ? `\n  fix: ${hint}` : ""}`);
    this.name = "ManifestError";
  }
}

/** Every problem found while loading a cluster folder; nothing is applied when this is thrown. */
export class DesiredStateError extends Error {
  constructor(readonly errors: readonly ManifestError[]) {
    super(
      `the desired state has ${errors.length} error${errors.length === 1 ? "" : "s"}; nothing was applied:\n` +
        errors.map((e) => `- ${e.message.replace(/\n/g, "\n  ")}`).join("\n"),
    );
    this.name = "DesiredStateError";
  }
}

/** A refusal that protects the cluster (an empty folder, a prune that is too large). */
export class GuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GuardError";
  }
}

/** `file:line[:column] (document N)` */
export function formatLocation(l: SourceLocation): string {
  const col = l.column !== undefined ? `:${l.column}` : "";
  const doc = l.document !== undefined ? ` (document ${l.document + 1})` : "";
  return `${l.file}:${l.line}${col}${doc}`;
}
