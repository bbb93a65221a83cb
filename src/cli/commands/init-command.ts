import * as fs from "node:fs";
import * as path from "node:path";
import { Command } from "commander";
import { simpleGit } from "simple-git";

const KUSTOMIZATION = (name: string, p: string, dependsOn?: string): string =>
  [
    "apiVersion: kustomize.toolkit.fluxcd.io/v1",
    "kind: Kustomization",
    "metadata:",
    `  name: ${name}`,
    "  namespace: flux-system",
    "spec:",
    `  path: ./${p}`,
    "  prune: true",
    ...(dependsOn ? ["  dependsOn:", `    - name: ${dependsOn}`] : []),
    "",
  ].join("\n");

/** The files of a new config repo with one folder per cluster and shared folders. Pure. */
export function scaffoldFiles(clusters: readonly string[]): Record<string, string> {
  const files: Record<string, string> = {
    "README.md": [
      "# Cluster configuration",
      "",
      "The desired state of every cluster, applied and kept in sync by ferry. Change it with a pull request.",
      "",
      "```",
      "clusters/<name>/     one folder per cluster: what ferry applies to that cluster",
      "infrastructure/      shared: namespaces, CRDs, controllers (HelmReleases)",
      "apps/                shared: the workloads",
      "```",
      "",
      "Each `clusters/<name>/` holds plain manifests, HelmReleases (Flux v1 or v2) and Flux `Kustomization`",
      "objects that pull in the shared folders (`infrastructure` first, then `apps`, through `dependsOn`).",
      "",
      "A new cluster just like an existing one: copy `clusters/<existing>/` to `clusters/<new>/` (or point the",
      "new stack at the same folder), then add `stacks/Pulumi.<new>.yaml` in your ferry deployment with",
      "`ferry:repo`, `ferry:path: clusters/<new>` and the new cluster's kubeconfig.",
      "",
      'Objects annotated `fluxcd.io/ignore: "true"` are skipped; `fluxcd.io/ignore: sync_only` or',
      "`kustomize.toolkit.fluxcd.io/prune: disabled` are applied but never deleted by ferry.",
      "",
    ].join("\n"),
    "infrastructure/namespaces.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n",
    "apps/hello/configmap.yaml":
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: apps\ndata:\n  message: hello from git\n",
  };
  for (const c of clusters) {
    files[`clusters/${c}/infrastructure.yaml`] = KUSTOMIZATION("infrastructure", "infrastructure");
    files[`clusters/${c}/apps.yaml`] = KUSTOMIZATION("apps", "apps", "infrastructure");
  }
  return files;
}

/** `ferry init`: scaffolds a config repo with the multi-cluster layout. */
export function initCommand(): Command {
  return new Command("init")
    .description("Scaffold a new config repo: clusters/<name>/ per cluster, shared infrastructure/ and apps/, a README")
    .argument("<dir>", "folder of the new repo (created; must be empty if it exists)")
    .option("-c, --cluster <name...>", "cluster folders to create", ["production"])
    .action(async (dir: string, opts: { cluster: string[] }) => {
      const root = path.resolve(dir);
      if (fs.existsSync(root) && fs.readdirSync(root).some((f) => f !== ".git")) {
        throw new Error(`${root} is not empty; ferry init only scaffolds a new repo`);
      }
      for (const [rel, text] of Object.entries(scaffoldFiles(opts.cluster))) {
        fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
        fs.writeFileSync(path.join(root, rel), text);
      }
      if (!fs.existsSync(path.join(root, ".git"))) await simpleGit(root).init(["--initial-branch=main"]);
      process.stderr.write(
        `config repo scaffolded in ${root} for ${opts.cluster.join(", ")}; commit it, then: ferry sync --stack ${opts.cluster[0]} --repo ${root} --path clusters/${opts.cluster[0]}\n`,
      );
    });
}
