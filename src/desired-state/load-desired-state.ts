import * as fs from "node:fs";
import * as path from "node:path";
import { DesiredObject, DesiredState, ManifestFile } from "./desired-state";
import { DesiredStateError, GuardError, ManifestError, formatLocation } from "./manifest-error";
import { displayName, objectId, sameObject } from "./object-id";
import { parseManifests } from "./parse-manifests";

/** Options for {@link loadDesiredState}. */
export interface LoadOptions {
  /** Root of the config-repo checkout. */
  readonly checkout: string;
  /** The cluster folder, relative to the checkout root (e.g. `clusters/production`). */
  readonly path: string;
  /** Accept a folder with no objects (which prunes everything ferry manages). Default false. */
  readonly allowEmpty?: boolean;
}

const MANIFEST = /\.ya?ml$/i;

/**
 * Reads a cluster folder of a checkout into a validated {@link DesiredState}: every `*.yaml`/`*.yml`
 * below it, recursively. This is the only module that reads the config repo's files.
 * Throws {@link DesiredStateError} listing every problem, or {@link GuardError} for a folder that
 * is missing, empty or outside the checkout.
 */
export function loadDesiredState(options: LoadOptions): DesiredState {
  const checkout = fs.realpathSync(options.checkout);
  const rel = normalizeRelative(options.path);
  const folder = path.join(checkout, rel);
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
    throw new GuardError(
      `cluster folder "${rel}" does not exist in the checkout; refusing to sync, because an empty desired state would delete every object ferry manages.\n` +
        `  fix: check the path (--path or the stack's ferry:path) against the config repo's layout`,
    );
  }
  assertInside(checkout, fs.realpathSync(folder), rel);

  const errors: ManifestError[] = [];
  const files: ManifestFile[] = [];
  for (const file of listManifests(checkout, folder, errors)) {
    const relFile = path.relative(checkout, file).split(path.sep).join("/");
    const parsed = parseManifests(fs.readFileSync(file, "utf8"), relFile);
    errors.push(...parsed.errors);
    const objects: DesiredObject[] = parsed.objects.map((p) => ({ object: p.object, id: objectId(p.object), location: p.location }));
    if (objects.length > 0) files.push({ path: relFile, objects });
  }
  errors.push(...findDuplicates(files));
  if (errors.length > 0) throw new DesiredStateError(errors);
  if (files.length === 0 && !options.allowEmpty) {
    throw new GuardError(
      `cluster folder "${rel}" contains no Kubernetes objects; refusing to sync, because that would delete every object ferry manages.\n` +
        `  fix: check the path, or pass --allow-empty if removing everything is really intended`,
    );
  }
  return { path: rel, files };
}

function normalizeRelative(p: string): string {
  const normalized = path.posix.normalize(p.split(path.sep).join("/")).replace(/\/$/, "");
  const n = normalized === "." ? "" : normalized;
  if (path.posix.isAbsolute(n) || n === ".." || n.startsWith("../")) {
    throw new GuardError(`path "${p}" leaves the checkout; give a folder relative to the config repo's root (e.g. clusters/production)`);
  }
  return n;
}

function assertInside(checkout: string, real: string, shown: string): void {
  if (real !== checkout && !real.startsWith(checkout + path.sep)) {
    throw new GuardError(`"${shown}" resolves to ${real}, outside the checkout; ferry only reads files inside the config repo`);
  }
}

/** Manifest files below a folder, sorted; dot-files and dot-folders (.git, .github) are skipped. */
function listManifests(checkout: string, folder: string, errors: ManifestError[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
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
        const real = fs.realpathSync(full);
        if (real !== checkout && !real.startsWith(checkout + path.sep)) {
          errors.push(
            new ManifestError(
              { file: path.relative(checkout, full).split(path.sep).join("/"), line: 1 },
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

function findDuplicates(files: readonly ManifestFile[]): ManifestError[] {
  const seen = new Map<string, DesiredObject>();
  const errors: ManifestError[] = [];
  for (const o of files.flatMap((f) => f.objects)) {
    const key = `${o.id.group}/${o.id.kind}/${o.id.namespace}/${o.id.name}`;
    const first = seen.get(key);
    if (first && sameObject(first.id, o.id)) {
      errors.push(
        new ManifestError(
          o.location,
          `${displayName(o.id)} is defined twice: here and at ${formatLocation(first.location)}`,
          "keep one definition and remove the other",
        ),
      );
    } else seen.set(key, o);
  }
  return errors;
}
