import * as path from "node:path";
import * as yaml from "js-yaml";
import { ManifestError, SourceLocation } from "./manifest-error";
import { KubeObject } from "./object-id";

/** A Flux `postBuild.substituteFrom` entry: a ConfigMap or Secret whose data keys are variables. */
export interface SubstituteRef {
  readonly kind: "ConfigMap" | "Secret";
  readonly name: string;
  /** Always the Kustomization's namespace, as in Flux. */
  readonly namespace: string;
  readonly optional: boolean;
}

/** A Flux v2 Kustomization (`kustomize.toolkit.fluxcd.io`), normalized to what ferry needs to build it. */
export interface FluxKustomizationSpec {
  readonly apiVersion: string;
  readonly name: string;
  readonly namespace: string;
  /** Folder relative to the repository root, normalized: no leading `./`, `.` for the root. */
  readonly path: string;
  /** Whether objects that leave the folder are deleted; false when `spec.prune` is absent (Go's zero value). */
  readonly prune: boolean;
  readonly targetNamespace?: string;
  /** `postBuild.substitute`, with newlines removed from the values as Flux does. */
  readonly substitute: Readonly<Record<string, string>>;
  /** `postBuild.substituteFrom`, in order; inline `substitute` values win over these. */
  readonly substituteFrom: readonly SubstituteRef[];
  /** The source the path is read from; undefined when the Kustomization names none. */
  readonly sourceRef?: { readonly kind: string; readonly name: string; readonly namespace: string };
  readonly suspend: boolean;
  readonly dependsOn: readonly { readonly name: string; readonly namespace: string }[];
  readonly location: SourceLocation;
}

const API_VERSIONS = new Set([
  "kustomize.toolkit.fluxcd.io/v1",
  "kustomize.toolkit.fluxcd.io/v1beta1",
  "kustomize.toolkit.fluxcd.io/v1beta2",
]);
/** kustomize-controller's `varsubRegex`: `[:alpha:]` and `[:digit:]` are ASCII in Go's RE2. */
const VARIABLE_NAME = /^[_a-zA-Z][_a-zA-Z0-9]*$/;
const SUBSTITUTE_KEY = "kustomize.toolkit.fluxcd.io/substitute";

/** Fields that change what Flux applies and that ferry does not implement: refused rather than ignored. */
const UNSUPPORTED_FIELDS: readonly (readonly [string, string])[] = [
  ["patches", "move the patches into a kustomization.yaml in the folder"],
  ["patchesStrategicMerge", "move the patches into a kustomization.yaml in the folder"],
  ["patchesJson6902", "move the patches into a kustomization.yaml in the folder"],
  ["images", "set the images in a kustomization.yaml in the folder"],
  ["components", "list the components in a kustomization.yaml in the folder"],
  ["namePrefix", "set namePrefix in a kustomization.yaml in the folder"],
  ["nameSuffix", "set nameSuffix in a kustomization.yaml in the folder"],
  ["commonMetadata", "set labels and annotations in a kustomization.yaml in the folder"],
  ["decryption", "ferry cannot decrypt SOPS files; keep Secrets out of Git or decrypt them before ferry reads the repository"],
  ["kubeConfig", "ferry applies to its own cluster only; run a ferry stack for the other cluster"],
];

/** Whether an object is a Flux v2 Kustomization (not a `kustomize.config.k8s.io` kustomization.yaml). */
export function isFluxKustomization(obj: KubeObject): boolean {
  return obj.kind === "Kustomization" && API_VERSIONS.has(obj.apiVersion);
}

/**
 * Reads a Flux Kustomization into a {@link FluxKustomizationSpec}. Pure; throws a {@link ManifestError}
 * naming the Kustomization and how to fix it for an invalid field, a path that leaves the checkout, or
 * a field ferry does not implement. A missing `spec.path` means the repository root, as in Flux.
 */
export function parseFluxKustomization(obj: KubeObject, location: SourceLocation): FluxKustomizationSpec {
  const name = obj.metadata.name;
  const namespace = obj.metadata.namespace || "default";
  const what = `Kustomization/${namespace}/${name}`;
  // Typed explicitly so TypeScript narrows after a call (a never-returning arrow needs the annotation).
  const fail: (problem: string, hint?: string) => never = (problem, hint) => {
    throw new ManifestError(location, `${what}: ${problem}`, hint);
  };
  const field = new FieldReader(fail);
  if (!isFluxKustomization(obj)) {
    fail(`apiVersion ${obj.apiVersion} kind ${obj.kind} is not a Flux Kustomization`, `use one of ${[...API_VERSIONS].join(", ")}`);
  }
  const spec = field.record(obj.spec, "spec") ?? fail("`spec` is missing", "add a spec with at least `path` and `prune`");
  for (const [key, hint] of UNSUPPORTED_FIELDS) {
    const value = spec[key];
    const present = Array.isArray(value) ? value.length > 0 : value !== undefined && value !== null && value !== "";
    if (present) fail(`\`spec.${key}\` is not supported by ferry`, hint);
  }

  const rawPath = field.string(spec.path, "spec.path") ?? "";
  const postBuild = field.record(spec.postBuild, "spec.postBuild");
  const substitute: Record<string, string> = {};
  for (const [key, value] of Object.entries(field.record(postBuild?.substitute, "spec.postBuild.substitute") ?? {})) {
    if (!VARIABLE_NAME.test(key)) {
      fail(
        `variable name "${key}" in \`spec.postBuild.substitute\` is invalid`,
        "use letters, digits and _ only, not starting with a digit",
      );
    }
    if (typeof value !== "string") {
      fail(
        `\`spec.postBuild.substitute.${key}\` must be a string, not ${value === null ? "null" : typeof value}`,
        `quote it, e.g. ${key}: "${String(value)}"`,
      );
    }
    // kustomize-controller drops newlines from every value.
    Object.defineProperty(substitute, key, { value: value.replace(/\n/g, ""), enumerable: true, writable: true, configurable: true });
  }
  const substituteFrom = field.list(postBuild?.substituteFrom, "spec.postBuild.substituteFrom").map((item, i): SubstituteRef => {
    const at = `spec.postBuild.substituteFrom[${i}]`;
    const ref = field.record(item, at) ?? fail(`\`${at}\` must be a mapping`);
    const kind = field.string(ref.kind, `${at}.kind`);
    if (kind !== "ConfigMap" && kind !== "Secret") fail(`\`${at}.kind\` must be ConfigMap or Secret`);
    return {
      kind,
      name: field.string(ref.name, `${at}.name`) ?? fail(`\`${at}.name\` is missing`),
      namespace,
      optional: field.boolean(ref.optional, `${at}.optional`) ?? false,
    };
  });
  const sourceRef = field.record(spec.sourceRef, "spec.sourceRef");
  const targetNamespace = field.string(spec.targetNamespace, "spec.targetNamespace");

  return {
    apiVersion: obj.apiVersion,
    name,
    namespace,
    path: normalizeSpecPath(rawPath, fail),
    prune: field.boolean(spec.prune, "spec.prune") ?? false,
    ...(targetNamespace !== undefined ? { targetNamespace } : {}),
    substitute,
    substituteFrom,
    ...(sourceRef
      ? {
          sourceRef: {
            kind: field.string(sourceRef.kind, "spec.sourceRef.kind") ?? fail("`spec.sourceRef.kind` is missing"),
            name: field.string(sourceRef.name, "spec.sourceRef.name") ?? fail("`spec.sourceRef.name` is missing"),
            namespace: field.string(sourceRef.namespace, "spec.sourceRef.namespace") ?? namespace,
          },
        }
      : {}),
    suspend: field.boolean(spec.suspend, "spec.suspend") ?? false,
    dependsOn: field.list(spec.dependsOn, "spec.dependsOn").map((item, i) => {
      const at = `spec.dependsOn[${i}]`;
      const dep = field.record(item, at) ?? fail(`\`${at}\` must be a mapping with a name`);
      return {
        name: field.string(dep.name, `${at}.name`) ?? fail(`\`${at}.name\` is missing`, "name the Kustomization this one waits for"),
        namespace: field.string(dep.namespace, `${at}.namespace`) ?? namespace,
      };
    }),
    location,
  };
}

/**
 * Flux resolves `/apps` against the source root; ferry refuses absolute paths so a path never reads
 * as if it could point outside the repository.
 */
function normalizeSpecPath(raw: string, fail: (problem: string, hint?: string) => never): string {
  const hint = "give the folder relative to the repository root, e.g. ./clusters/production";
  if (path.posix.isAbsolute(raw)) fail(`\`spec.path\` "${raw}" leaves the checkout: it is absolute`, hint);
  const normalized = path.posix.normalize(raw === "" ? "." : raw).replace(/\/+$/, "") || ".";
  if (normalized === ".." || normalized.startsWith("../")) fail(`\`spec.path\` "${raw}" leaves the checkout`, hint);
  return normalized;
}

class FieldReader {
  constructor(private readonly fail: (problem: string, hint?: string) => never) {}

  record(value: unknown, field: string): Record<string, unknown> | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "object" || Array.isArray(value)) this.fail(`\`${field}\` must be a mapping`);
    return value as Record<string, unknown>;
  }

  /** An empty string counts as unset (Go's `omitempty`). */
  string(value: unknown, field: string): string | undefined {
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value !== "string") this.fail(`\`${field}\` must be a string, not ${typeof value} ${String(value)}`);
    return value;
  }

  boolean(value: unknown, field: string): boolean | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "boolean") this.fail(`\`${field}\` must be true or false, not ${typeof value} ${JSON.stringify(value)}`);
    return value;
  }

  list(value: unknown, field: string): readonly unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(`\`${field}\` must be a list`);
    return value;
  }
}

/** Options of {@link substituteVariables}. */
export interface SubstituteOptions {
  /**
   * Fail on a `${var}` that is not set and has no default, like kustomize-controller's
   * `StrictPostBuildSubstitutions` feature gate. Default false: such a variable becomes "".
   */
  readonly strict?: boolean;
}

/**
 * Flux `postBuild` variable substitution (fluxcd/pkg envsubst, as kustomize-controller runs it):
 * - `${var}` is replaced by its value; unset, it becomes "" (or an error with `strict`);
 * - `${var:=default}`, `${var=default}`, `${var:-default}` use the default when the variable is
 *   unset or empty (Flux treats all three alike; the default may contain `${...}`);
 * - `${#var}`, `${var^}`, `${var^^}`, `${var,}`, `${var,,}`, `${var:offset[:length]}`,
 *   `${var/from/to}`, `${var//from/to}`, `${var/#from/to}`, `${var/%from/to}`, `${var#glob}`,
 *   `${var##glob}`, `${var%glob}`, `${var%%glob}` work as in Flux;
 * - `$var` without braces is left as it is, and `$${var}` is the escape for a literal `${var}`;
 * - a malformed `${` (unclosed, no name) is an error, as in Flux.
 * Flux skips substitution when a Kustomization has no variables at all, so an empty `vars` returns the
 * text unchanged; and it skips every object labeled or annotated
 * `kustomize.toolkit.fluxcd.io/substitute: disabled`, so the text is handled one YAML document at a
 * time and such documents are left untouched. Flux substitutes kustomize's output, which has no
 * comments; ferry may be given the files as written, so a `${` in a comment counts too.
 * Pure; throws a plain Error naming the line.
 */
export function substituteVariables(text: string, vars: Readonly<Record<string, string>>, options: SubstituteOptions = {}): string {
  const names = Object.keys(vars);
  if (names.length === 0) return text;
  for (const name of names) {
    if (!VARIABLE_NAME.test(name))
      throw new Error(`variable name "${name}" is invalid: use letters, digits and _ only, not starting with a digit`);
  }
  const lookup = (name: string): Lookup =>
    Object.prototype.hasOwnProperty.call(vars, name) ? { value: vars[name]!, exists: true } : { value: "", exists: !options.strict };
  let linesBefore = 0;
  return splitDocuments(text)
    .map((part) => {
      const firstLine = linesBefore;
      linesBefore += countNewlines(part.text);
      if (part.isSeparator || isDisabledDocument(part.text)) return part.text;
      return evaluate(new TemplateParser(part.text, firstLine).parseTop(), lookup);
    })
    .join("");
}

/** Whether an object opts out of Flux postBuild substitution (label or annotation `kustomize.toolkit.fluxcd.io/substitute: disabled`). */
export function isSubstitutionDisabled(obj: KubeObject): boolean {
  return obj.metadata.labels?.[SUBSTITUTE_KEY] === "disabled" || obj.metadata.annotations?.[SUBSTITUTE_KEY] === "disabled";
}

/** Splits at `---` lines (as fluxcd/pkg does), keeping every character so that joining restores the text. */
function splitDocuments(text: string): { readonly text: string; readonly isSeparator: boolean }[] {
  const parts: { text: string; isSeparator: boolean }[] = [];
  let current = "";
  for (const line of text.split(/(?<=\n)/)) {
    if (/^---[ \t]*\r?\n?$/.test(line)) {
      parts.push({ text: current, isSeparator: false }, { text: line, isSeparator: true });
      current = "";
    } else {
      current += line;
    }
  }
  parts.push({ text: current, isSeparator: false });
  return parts;
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

/** Whether a document opts out of substitution; one that does not parse does not opt out (as in Flux). */
function isDisabledDocument(doc: string): boolean {
  if (!doc.includes(SUBSTITUTE_KEY)) return false;
  try {
    const value = yaml.load(doc) as { metadata?: { labels?: Record<string, unknown>; annotations?: Record<string, unknown> } } | null;
    return value?.metadata?.labels?.[SUBSTITUTE_KEY] === "disabled" || value?.metadata?.annotations?.[SUBSTITUTE_KEY] === "disabled";
  } catch {
    return false;
  }
}

type Lookup = { readonly value: string; readonly exists: boolean };
type TemplateNode = string | Expansion;

interface Expansion {
  readonly name: string;
  /** "" for `${var}`, "len" for `${#var}`, else the operator as written (`:=`, `^^`, `/#`, `:`, `##`...). */
  readonly op: string;
  readonly args: readonly (readonly TemplateNode[])[];
  /** The expression as written, and its 1-based line in the whole text, for error messages. */
  readonly source: string;
  readonly line: number;
}

/** Operators that supply their own value for an unset variable (never a strict-mode error). */
const DEFAULT_OPS = new Set(["=", ":=", ":-", ":?", ":+"]);

const TOP_ESCAPES = /^\$\$/;
const PATTERN_ESCAPES = /^(\$\$|\\\/|\\\\)/;

/** A recursive-descent reading of the grammar of fluxcd/pkg envsubst. */
class TemplateParser {
  private pos = 0;
  private newlines: number[] | undefined;

  constructor(
    private readonly s: string,
    private readonly linesBefore: number,
  ) {}

  parseTop(): TemplateNode[] {
    // `$$` is one literal `$`, so `$${var}` stays `${var}`.
    return this.parseNodes("", TOP_ESCAPES);
  }

  /** At `${`; consumes through the closing `}`. */
  private parseExpansion(): Expansion {
    const start = this.pos;
    this.pos += 2;
    const make = (name: string, op: string, args: (readonly TemplateNode[])[]): Expansion => {
      this.expect("}", start);
      return { name, op, args, source: this.s.slice(start, this.pos), line: this.lineAt(start) };
    };
    if (this.peek() === "#") {
      this.pos++;
      return make(this.ident(start), "len", []);
    }
    const name = this.ident(start);
    const c = this.peek();
    switch (c) {
      case "}":
        return make(name, "", []);
      case "=":
        this.pos++;
        return make(name, "=", [this.parseArg(start, "}", false)]);
      case ":": {
        const next = this.s[this.pos + 1];
        if (next !== undefined && "=-?+".includes(next)) {
          this.pos += 2;
          return make(name, `:${next}`, [this.parseArg(start, "}", false)]);
        }
        this.pos++;
        const offset = this.nonEmptyArg(start, ":}", false);
        if (this.peek() !== ":") return make(name, ":", [offset]);
        this.pos++;
        return make(name, ":", [offset, this.nonEmptyArg(start, "}", false)]);
      }
      case ",":
      case "^": {
        this.pos++;
        const op = this.peek() === c ? `${c}${c}` : c;
        this.pos += op.length - 1;
        return make(name, op, []);
      }
      case "/": {
        this.pos++;
        const mode = this.peek();
        const op = mode !== undefined && "/#%".includes(mode) ? `/${mode}` : "/";
        this.pos += op.length - 1;
        const pattern = this.peek() === "/" ? [] : this.parseArg(start, "/}", true);
        this.expect("/", start);
        if (this.peek() === "}") return make(name, op, [pattern]);
        return make(name, op, [pattern, this.parseArg(start, "}", true)]);
      }
      case "#":
      case "%": {
        this.pos++;
        const op = this.peek() === c ? `${c}${c}` : c;
        this.pos += op.length - 1;
        return make(name, op, [this.nonEmptyArg(start, "}", false)]);
      }
      default:
        return this.fail(start, "missing closing brace");
    }
  }

  /** Text and nested `${...}` up to (not including) one of `stops`; reaching the end is an error. */
  private parseArg(start: number, stops: string, escapes: boolean): TemplateNode[] {
    // In replacement patterns `$$`, `\/` and `\\` stand for `$`, `/` and `\`.
    const nodes = this.parseNodes(stops, escapes ? PATTERN_ESCAPES : undefined);
    if (this.pos >= this.s.length) this.fail(start, "missing closing brace");
    return nodes;
  }

  /** Text and nested `${...}` up to one of `stops` or the end; a two-character escape stands for its second character. */
  private parseNodes(stops: string, escapes: RegExp | undefined): TemplateNode[] {
    const nodes: TemplateNode[] = [];
    let text = "";
    while (this.pos < this.s.length && !stops.includes(this.s[this.pos]!)) {
      if (escapes?.test(this.s.slice(this.pos, this.pos + 2))) {
        text += this.s[this.pos + 1];
        this.pos += 2;
      } else if (this.s.startsWith("${", this.pos)) {
        if (text) nodes.push(text);
        text = "";
        nodes.push(this.parseExpansion());
      } else {
        text += this.s[this.pos];
        this.pos++;
      }
    }
    if (text) nodes.push(text);
    return nodes;
  }

  private nonEmptyArg(start: number, stops: string, escapes: boolean): TemplateNode[] {
    const arg = this.parseArg(start, stops, escapes);
    if (arg.length === 0) this.fail(start, "bad substitution");
    return arg;
  }

  private ident(start: number): string {
    const name = /[\p{L}\p{N}_]+/uy;
    name.lastIndex = this.pos;
    const m = name.exec(this.s);
    if (!m) return this.fail(start, "no variable name");
    this.pos += m[0].length;
    return m[0];
  }

  private expect(c: string, start: number): void {
    if (this.s[this.pos] !== c) this.fail(start, c === "}" ? "missing closing brace" : "bad substitution");
    this.pos++;
  }

  private peek(): string | undefined {
    return this.s[this.pos];
  }

  private lineAt(offset: number): number {
    if (!this.newlines) {
      this.newlines = [];
      for (let i = this.s.indexOf("\n"); i >= 0; i = this.s.indexOf("\n", i + 1)) this.newlines.push(i);
    }
    // Binary search: the number of newlines before offset.
    let lo = 0;
    let hi = this.newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.newlines[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return this.linesBefore + lo + 1;
  }

  private fail(start: number, why: string): never {
    const line = this.s.slice(start).split("\n")[0]!;
    const close = line.indexOf("}");
    const shown = close >= 0 && close < 80 ? line.slice(0, close + 1) : line.slice(0, 80);
    throw new Error(`variable substitution failed at line ${this.lineAt(start)}: ${why} in "${shown}"; write $\${ for a literal "\${"`);
  }
}

function evaluate(nodes: readonly TemplateNode[], lookup: (name: string) => Lookup): string {
  return nodes.map((n) => (typeof n === "string" ? n : expand(n, lookup))).join("");
}

function expand(e: Expansion, lookup: (name: string) => Lookup): string {
  const args = e.args.map((a) => evaluate(a, lookup));
  const { value, exists } = lookup(e.name);
  if (!exists && !DEFAULT_OPS.has(e.op)) {
    throw new Error(
      `variable substitution failed at line ${e.line}: ${e.name} is not set (strict mode) in "${e.source}"; ` +
        `set it in postBuild.substitute, or give a default: \${${e.name}:=default}`,
    );
  }
  const [a0 = "", a1] = args;
  switch (e.op) {
    case "":
      return value;
    case "len":
      return String(Buffer.byteLength(value, "utf8"));
    case "^":
      return value.charAt(0).toUpperCase() + value.slice(1);
    case "^^":
      return value.toUpperCase();
    case ",":
      return value.charAt(0).toLowerCase() + value.slice(1);
    case ",,":
      return value.toLowerCase();
    case ":":
      return substring(value, args);
    // Replacement strings are passed as functions so `$&` and friends stay literal.
    case "/":
      return value.replace(a0, () => a1 ?? "");
    case "//":
      return value.replaceAll(a0, () => a1 ?? "");
    case "/#":
      return a1 !== undefined && value.startsWith(a0) ? a1 + value.slice(a0.length) : value;
    case "/%":
      return a1 !== undefined && value.endsWith(a0) ? value.slice(0, value.length - a0.length) + a1 : value;
    case "#":
    case "##":
    case "%":
    case "%%":
      return trimGlob(value, a0, e.op[0] === "#" ? "prefix" : "suffix", e.op.length === 2 ? "longest" : "shortest");
    default:
      // Flux's toDefault, the same for =, :=, :-, :? and :+ : the value when non-empty, else the default.
      return value === "" && args.length > 0 ? args.join("") : value;
  }
}

/** Bash `${var:offset:length}` as fluxcd/pkg implements it; an offset or length that is not a number leaves the value as is. */
function substring(value: string, args: readonly string[]): string {
  const toInt = (s: string | undefined): number | undefined => (s !== undefined && /^[+-]?\d+$/.test(s) ? Number(s) : undefined);
  const offset = toInt(args[0]);
  if (offset === undefined) return value;
  const pos = offset < 0 ? Math.max(0, value.length + offset) : offset;
  if (args.length < 2) return value.slice(pos);
  const length = toInt(args[1]);
  if (length === undefined) return value;
  if (length < 0) {
    const end = value.length + length;
    return end < pos ? "" : value.slice(pos, end);
  }
  return value.slice(pos, pos + length);
}

/** Removes the shortest or longest prefix or suffix matching a shell glob (`*`, `?`, `[...]`); a bad glob changes nothing. */
function trimGlob(value: string, glob: string, side: "prefix" | "suffix", which: "shortest" | "longest"): string {
  const re = globToRegExp(glob);
  if (!re) return value;
  const lengths = Array.from({ length: value.length }, (_, i) => i + 1);
  if (which === "longest") lengths.reverse();
  for (const n of lengths) {
    if (side === "prefix" && re.test(value.slice(0, n))) return value.slice(n);
    if (side === "suffix" && re.test(value.slice(value.length - n))) return value.slice(0, value.length - n);
  }
  return value;
}

function globToRegExp(glob: string): RegExp | undefined {
  const escape = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|\/-]/g, "\\$&");
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "\\") {
      if (i + 1 >= glob.length) return undefined;
      re += escape(glob[++i]!);
    } else if (c === "[") {
      let j = i + 1;
      let cls = "";
      if (glob[j] === "^") {
        cls += "^";
        j++;
      }
      const first = j;
      for (; j < glob.length && (glob[j] !== "]" || j === first); j++) {
        const d = glob[j]!;
        if (d === "\\") {
          if (j + 1 >= glob.length) return undefined;
          cls += escape(glob[++j]!);
        } else cls += d === "-" ? "-" : escape(d);
      }
      if (j >= glob.length || j === first) return undefined;
      re += `[${cls}]`;
      i = j;
    } else re += escape(c);
  }
  try {
    return new RegExp(`^${re}$`);
  } catch {
    return undefined;
  }
}
