import * as fs from "node:fs";
import * as path from "node:path";
import { confineChart, ConfinementError, confineKustomization, TreeReader } from "./confinement";
import { ManifestFile, SourceObject } from "./desired-state";
import { DesiredStateError, GuardError, ManifestError } from "./manifest-error";
import { parseManifests } from "./parse-manifests";

/** Options for {@link loadConfigFolder}. */
export interface LoadOptions {
  /** Root of the config-repo checkout. */
  readonly checkout: string;
  /** The cluster folder, relative to the checkout root (e.g. `clusters/production`). */
  readonly path: string;
}

/** The files of a cluster folder, parsed but not yet rendered. */
export interface LoadedFolder {
  /** Real path of the checkout root. */
  readonly checkout: string;
  /** The cluster folder, relative to the checkout root. */
  readonly path: string;
  /** Every manifest file outside Kustomize folders, with its objects (Flux objects included). */
  readonly files: readonly ManifestFile[];
  /** Folders holding a kustomization.yaml, relative to the checkout root: built with Kustomize. */
  readonly kustomizeDirs: readonly string[];
  /** Folders holding a Chart.yaml (and no kustomization), relative to the checkout root: Helm charts, not manifests. */
  readonly chartDirs: readonly string[];
}

const MANIFEST = /\.ya?ml$/i;
const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const CHART_FILE = "Chart.yaml";

/**
 * Reads a cluster folder of a checkout: every `*.yaml`/`*.yml` below it, recursively, except below
 * folders that hold a kustomization.yaml (those are built with Kustomize) or a Chart.yaml (charts,
 * rendered with Helm). This module is the only
 * one that reads the config repo's files. Throws {@link DesiredStateError} listing every problem, or
 * {@link GuardError} for a folder that is missing or outside the checkout.
 */
export function loadConfigFolder(options: LoadOptions): LoadedFolder {
  const checkout = fs.realpathSync.native(options.checkout);
  const rel = normalizeRelative(options.path);
  const folder = path.join(checkout, rel);
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
    throw new GuardError(
      `cluster folder "${rel}" does not exist in the checkout; refusing to sync, because an empty desired state would delete every object ferry manages.\n` +
        `  fix: check the path (--path or the stack's ferry:path) against the config repo's layout`,
    );
  }
  assertInside(checkout, fs.realpathSync.native(folder), rel);

  const errors: ManifestError[] = [];
  const kustomizeDirs: string[] = [];
  const chartDirs: string[] = [];
  const files = readManifests(checkout, listManifests(checkout, folder, errors, kustomizeDirs, chartDirs), errors);
  if (errors.length > 0) throw new DesiredStateError(errors);
  return { checkout, path: rel, files, kustomizeDirs, chartDirs };
}

/** Parses manifest files (absolute paths inside the checkout) into objects; problems go to `errors`. */
function readManifests(checkout: string, absFiles: readonly string[], errors: ManifestError[]): ManifestFile[] {
  const files: ManifestFile[] = [];
  for (const file of absFiles) {
    const relFile = toRelative(checkout, file);
    const parsed = parseManifests(fs.readFileSync(file, "utf8"), relFile);
    errors.push(...parsed.errors);
    const objects: SourceObject[] = parsed.objects.map((p) => ({ object: p.object, location: p.location, prune: true }));
    if (objects.length > 0) files.push({ path: relFile, objects });
  }
  return files;
}

/**
 * The text of every manifest below a folder of the checkout (for a Flux Kustomization whose path
 * has no kustomization.yaml: Flux generates one that includes them all), with each file's path.
 */
export function readManifestTexts(checkout: string, relDir: string): { path: string; text: string }[] {
  const dir = resolveInCheckout(checkout, relDir, "folder");
  const errors: ManifestError[] = [];
  const nested: string[] = [];
  const charts: string[] = [];
  const list = listManifests(checkout, dir, errors, nested, charts);
  if (errors.length > 0) throw new DesiredStateError(errors);
  if (nested.length > 0)
    throw new Error(`${relDir}: nested kustomization folders (${nested.join(", ")}) need a kustomization.yaml at ${relDir}`);
  if (charts.length > 0)
    throw new Error(
      `${relDir}: chart folders (${charts.join(", ")}) are not manifests; render them with a HelmRelease, or keep them outside the Kustomization's path`,
    );
  return list.map((f) => ({ path: toRelative(checkout, f), text: fs.readFileSync(f, "utf8") }));
}

/** Whether a folder of the checkout holds a kustomization file. */
export function hasKustomization(checkout: string, relDir: string): boolean {
  return holdsKustomization(resolveInCheckout(checkout, relDir, "folder"));
}

/** Reads a file of the checkout (a chart's values file...), refusing paths that leave it. */
export function readCheckoutFile(checkout: string, relFile: string): string {
  return fs.readFileSync(resolveInCheckout(checkout, relFile, "file"), "utf8");
}

/**
 * The absolute path of a file or folder named by the config repo, after checking that it (and any
 * symlink on the way) stays inside the checkout. Throws a GuardError otherwise.
 */
export function resolveInCheckout(checkout: string, rel: string, what: "file" | "folder"): string {
  const root = fs.realpathSync.native(checkout);
  const n = normalizeRelative(rel);
  const abs = path.join(root, n);
  if (!fs.existsSync(abs)) throw new Error(`${what} "${n}" does not exist in the checkout`);
  assertInside(root, fs.realpathSync.native(abs), n);
  return abs;
}

/**
 * Refuses to build a Kustomize folder that names, through any base or component, a path resolving
 * outside the checkout, or a remote base unless `allowRemoteBases`: throws a {@link ConfinementError}
 * naming each path before Kustomize runs.
 */
export function assertKustomizationConfined(checkout: string, absDir: string, allowRemoteBases: boolean): void {
  const root = fs.realpathSync.native(checkout);
  const refusals = confineKustomization(fileTree, { root, dir: absDir, allowRemoteBases });
  if (refusals.length > 0) throw new ConfinementError(refusals, root);
}

/**
 * Refuses to render a chart folder holding (in any subchart too) a symbolic link that resolves
 * outside `root` (the checkout the chart comes from): throws a {@link ConfinementError} naming each.
 */
export function assertChartConfined(root: string, chartDir: string): void {
  const realRoot = fs.realpathSync.native(root);
  const refusals = confineChart(fileTree, { root: realRoot, dir: chartDir });
  if (refusals.length > 0) throw new ConfinementError(refusals, realRoot);
}

/** Kustomization files are small; a larger one is not read (Kustomize would not build it sensibly either). */
const MAX_KUSTOMIZATION_BYTES = 1024 * 1024;

const fileTree: TreeReader = {
  realpath: (p) => {
    try {
      return fs.realpathSync.native(p);
    } catch {
      return undefined;
    }
  },
  kind: (p) => {
    try {
      const st = fs.statSync(p);
      return st.isFile() ? "file" : st.isDirectory() ? "directory" : "other";
    } catch {
      return undefined;
    }
  },
  readText: (file) => {
    const size = fs.statSync(file).size;
    if (size > MAX_KUSTOMIZATION_BYTES)
      throw new Error(`${size} bytes, more than a kustomization file may hold (${MAX_KUSTOMIZATION_BYTES})`);
    return fs.readFileSync(file, "utf8");
  },
  entries: (dir) =>
    fs.readdirSync(dir, { withFileTypes: true }).map((e) => ({
      name: e.name,
      kind: e.isSymbolicLink() ? "symlink" : e.isDirectory() ? "directory" : e.isFile() ? "file" : "other",
    })),
};

function toRelative(checkout: string, abs: string): string {
  return path.relative(checkout, abs).split(path.sep).join("/");
}

function normalizeRelative(p: string): string {
  const normalized = path.posix.normalize(p.split(path.sep).join("/")).replace(/\/$/, "");
  const n = normalized === "." ? "" : normalized;
  if (path.posix.isAbsolute(n) || n === ".." || n.startsWith("../")) {
    throw new GuardError(`path "${p}" leaves the checkout; give a folder relative to the config repo's root (e.g. clusters/production)`);
  }
  return n;
}

function isInside(checkout: string, real: string): boolean {
  return real === checkout || real.startsWith(checkout + path.sep);
}

function holdsKustomization(dir: string): boolean {
  return KUSTOMIZATION_FILES.some((f) => fs.existsSync(path.join(dir, f)));
}

function assertInside(checkout: string, real: string, shown: string): void {
  if (!isInside(checkout, real)) {
    throw new GuardError(`"${shown}" resolves to ${real}, outside the checkout; ferry only reads files inside the config repo`);
  }
}

/**
 * Manifest files below a folder, sorted; dot-files and dot-folders (.git, .github) are skipped,
 * folders holding a kustomization file are recorded in `kustomizeDirs` and folders holding a
 * Chart.yaml in `chartDirs` instead of walked.
 */
function listManifests(checkout: string, folder: string, errors: ManifestError[], kustomizeDirs: string[], chartDirs: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    if (holdsKustomization(dir)) {
      kustomizeDirs.push(toRelative(checkout, dir) || ".");
      return;
    }
    // A chart's templates are not manifests (Argo CD and Flux both treat such a folder as a chart).
    if (fs.existsSync(path.join(dir, CHART_FILE))) {
      chartDirs.push(toRelative(checkout, dir) || ".");
      return;
    }
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith(".")) continue;
      const full = path.join(dir, entry.name);
      let stat: fs.Stats;
      try {
        stat = fs.statSync(full);
      } catch {
        continue; // a dangling symlink declares nothing
      }
      if (entry.isSymbolicLink()) {
        const real = fs.realpathSync.native(full);
        if (!isInside(checkout, real)) {
          errors.push(
            new ManifestError(
              { file: toRelative(checkout, full), line: 1 },
              `symbolic link to ${real}, outside the checkout`,
              "ferry only reads files inside the config repo; replace the link with the file itself",
            ),
          );
          continue;
        }
      }
      if (stat.isDirectory()) walk(full);
      else if (stat.isFile() && MANIFEST.test(entry.name)) out.push(full);
    }
  };
  walk(folder);
  return out;
}
