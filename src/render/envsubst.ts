import * as yaml from "js-yaml";
import { isVariableName } from "../desired-state/flux-kustomization";
import { KubeObject } from "../desired-state/object-id";
import { splitYamlDocuments } from "../desired-state/yaml-documents";

const SUBSTITUTE_KEY = "kustomize.toolkit.fluxcd.io/substitute";

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
    if (!isVariableName(name))
      throw new Error(`variable name "${name}" is invalid: use letters, digits and _ only, not starting with a digit`);
  }
  const lookup = (name: string): Lookup =>
    Object.prototype.hasOwnProperty.call(vars, name) ? { value: vars[name]!, exists: true } : { value: "", exists: !options.strict };
  return splitYamlDocuments(text)
    .map((doc) => (isDisabledDocument(doc.content) ? doc.raw : evaluate(new TemplateParser(doc.raw, doc.firstLine).parseTop(), lookup)))
    .join("");
}

/** Whether an object opts out of Flux postBuild substitution (label or annotation `kustomize.toolkit.fluxcd.io/substitute: disabled`). */
export function isSubstitutionDisabled(obj: KubeObject): boolean {
  return obj.metadata.labels?.[SUBSTITUTE_KEY] === "disabled" || obj.metadata.annotations?.[SUBSTITUTE_KEY] === "disabled";
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
