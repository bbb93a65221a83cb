import * as path from "node:path";
import { isLocalUrl, KUSTOMIZATION_FILE_NAMES, kustomizationRefs, remoteKind } from "./kustomization-refs";

/** The file system as the confinement walks see it (the real one lives in load-desired-state.ts). */
export interface TreeReader {
  /** The real path (every symlink followed), or undefined when nothing is there. */
  realpath(p: string): string | undefined;
  /** What is at a path, symlinks followed; undefined when nothing is. */
  kind(p: string): "file" | "directory" | "other" | undefined;
  /** The text of a small file (a kustomization file). */
  readText(file: string): string;
  /** The entries of a folder, symlinks not followed. */
  entries(dir: string): readonly { readonly name: string; readonly kind: "file" | "directory" | "symlink" | "other" }[];
}

/** A path a run would read although it resolves outside the allowed root, or a remote base refused by policy. */
export interface Refusal {
  /** The file that names it (absolute), with the line, for Kustomize; the chart folder's entry for charts. */
  readonly namedIn: string;
  readonly line?: number;
  /** The field that names it (`resources`...), or `symbolic link`. */
  readonly field: string;
  /** The path or URL as written. */
  readonly value: string;
  /** Where it resolves to (absolute), for local paths. */
  readonly resolvesTo?: string;
  /** What is wrong, e.g. `outside the checkout`. */
  readonly problem: string;
}

/** Options of {@link confineKustomization}. */
export interface KustomizationConfinement {
  /** Real path of the folder everything must stay in (the stack's checkout). */
  readonly root: string;
  /** The Kustomize folder to build (absolute). */
  readonly dir: string;
  /** Remote bases allowed (`policy.allowRemoteBases`); `file://` URLs are refused anyway. */
  readonly allowRemoteBases: boolean;
}

/**
 * Walks a Kustomize folder as `kustomize build` would (its kustomization file, then every base and
 * component it names, recursively) and returns every named path that resolves outside the root
 * (symlinks followed) and every remote base the policy refuses. Reads only kustomization files.
 */
export function confineKustomization(reader: TreeReader, options: KustomizationConfinement): Refusal[] {
  const { root } = options;
  const refusals: Refusal[] = [];
  const visited = new Set<string>();
  const walk = (dir: string, namedIn: Omit<Refusal, "problem"> | undefined): void => {
    if (visited.has(dir)) return;
    visited.add(dir);
    const name = KUSTOMIZATION_FILE_NAMES.find((f) => reader.kind(path.join(dir, f)) === "file");
    if (name === undefined) return; // Kustomize refuses a base without one: nothing is read
    const file = path.join(dir, name);
    const realFile = reader.realpath(file);
    if (realFile === undefined || !isInside(root, realFile)) {
      const at = namedIn ?? { namedIn: file, field: "kustomization file", value: name };
      refusals.push({ ...at, resolvesTo: realFile ?? file, problem: OUTSIDE });
      return;
    }
    let refs;
    try {
      refs = kustomizationRefs(reader.readText(realFile));
    } catch (err) {
      // Kustomize cannot build it either; what it names is unknown, so refuse rather than guess.
      refusals.push({ namedIn: file, field: "kustomization file", value: name, problem: `cannot be read: ${message(err)}` });
      return;
    }
    for (const ref of refs) {
      const abs = path.resolve(dir, ref.value);
      const real = reader.realpath(abs);
      const at = { namedIn: file, line: ref.line, field: ref.field, value: ref.value };
      const remote = path.isAbsolute(ref.value) ? undefined : remoteKind(ref.value, real !== undefined);
      if (remote !== undefined) {
        if (isLocalUrl(ref.value))
          refusals.push({ ...at, field: `${ref.field}: ${remote}`, problem: "a git URL of the machine's own files" });
        else if (!options.allowRemoteBases) refusals.push({ ...at, field: `${ref.field}: ${remote}`, problem: REMOTE_OFF });
        continue;
      }
      if (real === undefined) {
        // Kustomize will fail on a missing path; one that would leave the root is refused by name.
        if (!isInside(root, abs)) refusals.push({ ...at, resolvesTo: abs, problem: OUTSIDE });
        continue;
      }
      if (!isInside(root, real)) refusals.push({ ...at, resolvesTo: real, problem: OUTSIDE });
      else if (ref.kind === "base" && reader.kind(real) === "directory") walk(real, at);
    }
  };
  const start = reader.realpath(options.dir);
  if (start === undefined || !isInside(root, start)) {
    return [{ namedIn: options.dir, field: "folder", value: options.dir, resolvesTo: start, problem: OUTSIDE }];
  }
  walk(start, undefined);
  return refusals;
}

/**
 * Walks a chart folder (templates, files, `charts/` subcharts, everything helm loads) and returns
 * every symbolic link that resolves outside the root. Lists folders only; reads no file.
 */
export function confineChart(reader: TreeReader, options: { readonly root: string; readonly dir: string }): Refusal[] {
  const { root } = options;
  const refusals: Refusal[] = [];
  const start = reader.realpath(options.dir);
  if (start === undefined || !isInside(root, start)) {
    return [{ namedIn: options.dir, field: "chart folder", value: options.dir, resolvesTo: start, problem: OUTSIDE }];
  }
  const visited = new Set<string>([start]);
  const pending = [start];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const entry of reader.entries(dir)) {
      // A checkout's own .git holds no symlinks git made, and a repository cannot commit one.
      if (entry.name === ".git") continue;
      const p = path.join(dir, entry.name);
      if (entry.kind === "directory" && !visited.has(p)) {
        visited.add(p);
        pending.push(p);
      } else if (entry.kind === "symlink") {
        const real = reader.realpath(p);
        if (real === undefined) continue; // dangling: helm reads nothing through it
        if (!isInside(root, real)) refusals.push({ namedIn: p, field: "symbolic link", value: p, resolvesTo: real, problem: OUTSIDE });
        else if (reader.kind(real) === "directory" && !visited.has(real)) {
          // helm follows links to folders: what they hold is read too.
          visited.add(real);
          pending.push(real);
        }
      }
    }
  }
  return refusals;
}

/**
 * One line per refusal: `file:line names "value" (field), which resolves to X, outside the checkout`,
 * paths shown relative to `root` where they are inside it.
 */
export function describeRefusal(r: Refusal, root: string): string {
  const shown = (p: string): string => (isInside(root, p) ? path.relative(root, p).split(path.sep).join("/") || "." : p);
  const where = `${shown(r.namedIn)}${r.line !== undefined ? `:${r.line}` : ""}`;
  if (r.field === "symbolic link") return `${where} is a symbolic link to ${r.resolvesTo ?? "?"}, ${r.problem}`;
  const to = r.resolvesTo !== undefined ? `, which resolves to ${r.resolvesTo},` : ",";
  return `${where} names "${r.value}" (${r.field})${to} ${r.problem}`;
}

/** Whether a real path is the root or below it. */
export function isInside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

const OUTSIDE = "outside the checkout";
const REMOTE_OFF = "a remote base, and remote bases are off (as kustomize-controller's --no-remote-bases)";

/** Paths a run refused to read (each named with where it is named and what it resolves to); nothing was read or fetched. */
export class ConfinementError extends Error {
  constructor(
    readonly refusals: readonly Refusal[],
    root: string,
  ) {
    const fixes = [
      ...(refusals.some((r) => r.problem === REMOTE_OFF)
        ? ["vendor remote bases into the repository, or allow them for the stack (ferry:allowRemoteBases)"]
        : []),
      ...(refusals.some((r) => r.problem !== REMOTE_OFF)
        ? ["ferry reads only files inside the stack's checkout (or a declared source's): copy what is needed into the repository"]
        : []),
    ];
    super(`${refusals.map((r) => describeRefusal(r, root)).join("; ")}\n  fix: ${fixes.join("; ")}`);
    this.name = "ConfinementError";
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}
