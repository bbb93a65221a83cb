import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { loadBoundedYaml } from "../desired-state/bounded-yaml";
import { ConfinementError } from "../desired-state/confinement";
import { INPUT_LIMITS } from "../desired-state/input-limits";
import { assertChartConfined } from "../desired-state/load-desired-state";
import { ClusterCapabilities } from "./cluster-discovery";

/** `helm template` flags that make a chart render for this cluster, as helm-controller's Helm does. */
export function helmCapabilityArgs(caps: ClusterCapabilities): string[] {
  return ["--kube-version", caps.kubeVersion, ...caps.apiVersions.flatMap((v) => ["--api-versions", v])];
}

/** A dependency of a folder chart (`dependencies` of Chart.yaml, or requirements.yaml). */
export interface ChartDependency {
  readonly name: string;
  readonly repository: string;
}

/** Where a dependency's chart comes from, as `helm dependency build` would fetch it. */
export type DependencySource =
  | { readonly kind: "vendored" }
  | { readonly kind: "file"; readonly dir: string }
  | { readonly kind: "repository"; readonly url: string }
  | { readonly kind: "oci"; readonly url: string };

/** The dependencies a folder chart declares (Chart.yaml `dependencies`, else Helm 2's requirements.yaml). */
export function chartDependencies(chartDir: string): ChartDependency[] {
  const read = (file: string): ChartDependency[] => {
    const p = path.join(chartDir, file);
    if (!fs.existsSync(p)) return [];
    const doc = loadBoundedYaml(fs.readFileSync(p, "utf8"), { schema: yaml.CORE_SCHEMA, filename: p }, INPUT_LIMITS) as {
      dependencies?: unknown;
    } | null;
    const deps = Array.isArray(doc?.dependencies) ? (doc.dependencies as unknown[]) : [];
    return deps.map((d) => {
      const dep = (d ?? {}) as { name?: unknown; repository?: unknown };
      if (typeof dep.name !== "string") throw new Error(`${file}: a dependency has no name; give each dependency a name`);
      return { name: dep.name, repository: typeof dep.repository === "string" ? dep.repository : "" };
    });
  };
  const deps = read("Chart.yaml");
  return deps.length > 0 ? deps : read("requirements.yaml");
}

/** Whether the chart's charts/ folder already holds a dependency (a folder or a packaged chart). */
export function vendored(chartDir: string, name: string): boolean {
  const dir = path.join(chartDir, "charts");
  if (!fs.existsSync(dir)) return false;
  return fs.readdirSync(dir).some((f) => f === name || (f.startsWith(`${name}-`) && f.endsWith(".tgz")));
}

/**
 * Where each missing dependency comes from. `file://` dependencies must stay inside `root` (the
 * checkout); alias repositories (`@name`, `alias:name`) name no URL and are refused.
 */
export function dependencySources(chartDir: string, root: string, chart: string): Map<string, DependencySource> {
  const out = new Map<string, DependencySource>();
  for (const dep of chartDependencies(chartDir)) {
    if (vendored(chartDir, dep.name)) {
      out.set(dep.name, { kind: "vendored" });
      continue;
    }
    const repo = dep.repository.trim();
    if (repo === "") {
      throw new Error(
        `chart ${chart}: dependency "${dep.name}" names no repository and is not in charts/; vendor it into charts/, or name its repository URL`,
      );
    }
    if (repo.startsWith("file://")) {
      const dir = path.resolve(chartDir, repo.slice("file://".length));
      const realRoot = fs.realpathSync.native(root);
      const real = fs.existsSync(dir) ? fs.realpathSync.native(dir) : dir;
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
        const namedIn = path.join(chartDir, "Chart.yaml");
        throw new ConfinementError(
          [{ namedIn, field: `dependencies (${dep.name}).repository`, value: repo, resolvesTo: real, problem: "outside the checkout" }],
          realRoot,
        );
      }
      if (!fs.existsSync(path.join(real, "Chart.yaml"))) {
        throw new Error(`chart ${chart}: dependency "${dep.name}" (${repo}) has no Chart.yaml; check the path`);
      }
      assertChartConfined(root, real);
      out.set(dep.name, { kind: "file", dir: real });
    } else if (repo.startsWith("oci://")) out.set(dep.name, { kind: "oci", url: repo });
    else if (/^https?:\/\//i.test(repo)) out.set(dep.name, { kind: "repository", url: repo });
    else {
      throw new Error(
        `chart ${chart}: dependency "${dep.name}" names repository "${repo}", an alias of a repository added with \`helm repo add\`, which ferry does not have; write the repository's URL`,
      );
    }
  }
  return out;
}

/**
 * A scratch copy of a folder chart with its dependencies written out absolutely (`file://` to the
 * confined folder), for `helm dependency build` to fill charts/ there: the checkout is never written.
 * The lock file goes when a path changed (its digest would not match). Remove it with `cleanup`.
 */
export function scratchChart(chartDir: string, sources: ReadonlyMap<string, DependencySource>): { dir: string; cleanup: () => void } {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-chart-"));
  const dir = path.join(scratch, path.basename(chartDir));
  try {
    fs.cpSync(chartDir, dir, { recursive: true, verbatimSymlinks: true });
    let rewritten = false;
    for (const file of ["Chart.yaml", "requirements.yaml"]) {
      const p = path.join(dir, file);
      if (!fs.existsSync(p)) continue;
      const doc = loadBoundedYaml(fs.readFileSync(p, "utf8"), { schema: yaml.CORE_SCHEMA, filename: p }, INPUT_LIMITS) as {
        dependencies?: { name?: string; repository?: string }[];
      } | null;
      for (const d of doc?.dependencies ?? []) {
        const source = d.name !== undefined ? sources.get(d.name) : undefined;
        if (source?.kind === "file") {
          d.repository = `file://${source.dir}`;
          rewritten = true;
        }
      }
      if (rewritten) fs.writeFileSync(p, yaml.dump(doc, { noRefs: true }));
    }
    if (rewritten) for (const lock of ["Chart.lock", "requirements.lock"]) fs.rmSync(path.join(dir, lock), { force: true });
  } catch (err) {
    fs.rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
  return { dir, cleanup: () => fs.rmSync(scratch, { recursive: true, force: true }) };
}
