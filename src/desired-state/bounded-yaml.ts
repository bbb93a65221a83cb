import * as yaml from "js-yaml";
import { formatBytes, InputLimits } from "./input-limits";

/** A YAML text refused for its size or its aliases, with the 0-based line and column (in that text) to blame. */
export class YamlLimitError extends Error {
  constructor(
    readonly line: number,
    readonly column: number,
    readonly problem: string,
    readonly hint: string,
  ) {
    super(problem);
    this.name = "YamlLimitError";
  }
}

/** What {@link loadBoundedYaml} passes on to js-yaml. */
export interface BoundedYamlOptions {
  readonly schema: yaml.Schema;
  readonly filename?: string;
}

/**
 * js-yaml's `load` of one document within the limits: a text over `maxDocumentBytes` is refused
 * unread, and the parse stops at the first alias that makes the aliases' expansion exceed
 * `maxAliasExpansionBytes`, or that names a node containing it. js-yaml shares an alias's value
 * instead of copying it, so nothing is expanded here; whoever walks the result later (a copy, JSON,
 * the Pulumi program) would. Throws {@link YamlLimitError}, or js-yaml's YAMLException.
 */
export function loadBoundedYaml(text: string, options: BoundedYamlOptions, limits: InputLimits): unknown {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > limits.maxDocumentBytes) {
    throw new YamlLimitError(
      0,
      0,
      `YAML document of ${formatBytes(bytes)} is over the limit of ${formatBytes(limits.maxDocumentBytes)} per document`,
      "split it into smaller documents (`---`) or files",
    );
  }
  const closed = new WeakSet<object>();
  const sizes = new WeakMap<object, number>();
  const opened: number[] = [];
  let added = 0;
  let lastAlias = -1;
  const listener = (event: yaml.EventType, state: yaml.State): void => {
    if (event === "open") {
      opened.push(state.position);
      return;
    }
    const start = opened.pop() ?? state.position;
    const value: unknown = state.result;
    if (value === null || value === undefined) return;
    // An alias sets no node kind (a scalar or collection sets one), and its first token is `*`.
    const at = state.kind === null ? tokenStart(state.input, start) : -1;
    if (at < 0 || state.input[at] !== "*") {
      if (typeof value === "object") closed.add(value);
      return;
    }
    // js-yaml may compose one node twice, nested (a block sequence's entry): count each alias once.
    if (at === lastAlias) return;
    lastAlias = at;
    if (typeof value === "object" && !closed.has(value)) {
      throw limitError(
        state.input,
        start,
        "YAML alias names a node that contains it (a recursive alias)",
        "replace the alias with the content it stands for",
      );
    }
    added += jsonSize(value, sizes);
    if (added > limits.maxAliasExpansionBytes) {
      throw limitError(
        state.input,
        start,
        `YAML aliases expand this document by more than ${formatBytes(limits.maxAliasExpansionBytes)} (the limit per document); refused before expanding`,
        "write the repeated content out, or use fewer aliases (`*name`)",
      );
    }
  };
  return yaml.load(text, { schema: options.schema, filename: options.filename, listener });
}

/** The position of the first token at or after `from`: spaces, line breaks and comments skipped. */
function tokenStart(input: string, from: number): number {
  let i = from;
  for (;;) {
    const ch = input[i];
    if (ch === " " || ch === "\t" || ch === "\n" || ch === "\r") i++;
    else if (ch === "#") {
      const eol = input.indexOf("\n", i);
      if (eol < 0) return input.length;
      i = eol + 1;
    } else return i;
  }
}

function limitError(input: string, from: number, problem: string, hint: string): YamlLimitError {
  const at = tokenStart(input, from);
  const before = input.slice(0, at);
  const line = before.split("\n").length - 1;
  return new YamlLimitError(line, at - (before.lastIndexOf("\n") + 1), problem, hint);
}

/** The length of a value written as JSON, about; memoised per object, so shared (aliased) nodes cost one walk. */
function jsonSize(v: unknown, sizes: WeakMap<object, number>): number {
  if (typeof v === "string") return v.length + 2;
  if (typeof v !== "object" || v === null) return String(v).length;
  const known = sizes.get(v);
  if (known !== undefined) return known;
  let n = 2;
  if (Array.isArray(v)) for (const item of v as unknown[]) n += jsonSize(item, sizes) + 1;
  else for (const [key, item] of Object.entries(v)) n += key.length + 4 + jsonSize(item, sizes);
  sizes.set(v, n);
  return n;
}
