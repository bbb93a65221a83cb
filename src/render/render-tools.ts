import { createHash } from "node:crypto";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { GitRef } from "../desired-state/git-ref";
import { formatBytes, INPUT_LIMITS } from "../desired-state/input-limits";
import { KubeObject } from "../desired-state/object-id";
import { SourcePolicy } from "../desired-state/source-policy";
import { OutputLimitError, run, RunOptions, RunResult } from "../lib/exec";
import { checkoutGitRef, GitAuth } from "../source/git-source";
import { HelmTemplateRequest, RenderTools } from "./build-desired-state";
import { ClusterDiscovery } from "./cluster-discovery";

/** What the real render tools need. */
export interface RenderToolsOptions {
  readonly helm: string;
  readonly kubectl: string;
  /** Kubeconfig and context of the cluster, for valuesFrom read from the live cluster. */
  readonly kubeconfig?: string;
  readonly context?: string;
  /** Folder for Helm's caches and for checkouts of other git repositories. */
  readonly cacheDir: string;
  /** Credentials of the config repo (sent to the config repo's own URL only). */
  readonly gitAuth?: GitAuth;
  /** What the repo's content may reach. */
  readonly policy: SourcePolicy;
}

/** Render tools backed by the helm and kubectl binaries, git and HTTP. */
export function localRenderTools(options: RenderToolsOptions): RenderTools {
  const helmEnv: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CACHE_HOME: path.join(options.cacheDir, "helm", "cache"),
    HELM_CONFIG_HOME: path.join(options.cacheDir, "helm", "config"),
    HELM_DATA_HOME: path.join(options.cacheDir, "helm", "data"),
  };
  const kubeArgs = [
    ...(options.kubeconfig ? ["--kubeconfig", options.kubeconfig] : []),
    ...(options.context ? ["--context", options.context] : []),
  ];
  let discovery: ClusterDiscovery | undefined;
  return {
    async helmTemplate(request: HelmTemplateRequest): Promise<string> {
      // Values go through stdin, never a file: they may hold values read from Secrets.
      const args = ["template", request.releaseName, request.chart, "--namespace", request.namespace, "--values", "-"];
      if (request.repo) args.push("--repo", request.repo);
      if (request.version) args.push("--version", request.version);
      if (request.includeCRDs) args.push("--include-crds");
      const input = yaml.dump(request.values, { noRefs: true });
      const out = await runRender("helm template", options.helm, args, { env: helmEnv, timeoutMs: 300_000, input });
      if (out.code !== 0) throw new Error(out.stderr.trim().replace(/^Error: /, "") || `helm exited with ${out.code}`);
      return out.stdout;
    },
    async kustomizeBuild(absDir: string): Promise<string> {
      // Root-only is Kustomize's default for files; said here so it stays so. It does not confine
      // bases (`resources: ../../x`): build-desired-state walks them before this runs.
      const out = await runRender(
        "kustomize build",
        options.kubectl,
        ["kustomize", "--load-restrictor", "LoadRestrictionsRootOnly", absDir],
        {
          timeoutMs: 120_000,
        },
      );
      if (out.code !== 0) throw new Error(out.stderr.trim().replace(/^error: /, ""));
      return out.stdout;
    },
    async readLive(kind, namespace, name): Promise<KubeObject | undefined> {
      const out = await run(
        options.kubectl,
        [...kubeArgs, "get", kind.toLowerCase(), name, "-n", namespace, "-o", "json", "--ignore-not-found"],
        {
          timeoutMs: 60_000,
        },
      );
      if (out.code !== 0) throw new Error(`cannot read ${kind}/${namespace}/${name} from the cluster: ${out.stderr.trim()}`);
      return out.stdout.trim() ? (JSON.parse(out.stdout) as KubeObject) : undefined;
    },
    async fetchText(url: string): Promise<string> {
      const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return readCapped(res, INPUT_LIMITS.maxValuesBytes);
    },
    discoverScopes(kinds) {
      discovery ??= new ClusterDiscovery({ kubeconfig: options.kubeconfig, context: options.context });
      return discovery.scopes(kinds);
    },
    async checkoutGit(url: string, ref: GitRef): Promise<string> {
      // One folder per repository and ref, so two releases at different refs never share a checkout.
      const dir = path.join(
        options.cacheDir,
        "git",
        createHash("sha256")
          .update(`${url}#${JSON.stringify(ref)}`)
          .digest("hex")
          .slice(0, 16),
      );
      await checkoutGitRef({ url, auth: options.gitAuth }, ref, dir);
      return dir;
    },
  };
}

/** Runs a render tool with its output capped (INPUT_LIMITS.maxRenderedBytes), read as it arrives. */
async function runRender(what: string, file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const limit = INPUT_LIMITS.maxRenderedBytes;
  try {
    return await run(file, args, { ...options, maxOutputBytes: limit });
  } catch (err) {
    if (!(err instanceof OutputLimitError)) throw err;
    throw new Error(
      `${what} printed more than ${formatBytes(limit)}, ferry's limit for one render; it was stopped. Render less (split the release or Kustomization), or check the chart for a runaway loop`,
      { cause: err },
    );
  }
}

/** A response body as text, refused once it grows past `limit` bytes (read as it arrives, never whole). */
async function readCapped(res: Response, limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += (chunk as Uint8Array).byteLength;
    // Leaving the loop by throwing cancels the stream: the rest is never downloaded.
    if (size > limit) throw new Error(`the response is larger than ${formatBytes(limit)}, ferry's limit for a values text`);
    chunks.push(chunk as Uint8Array);
  }
  return Buffer.concat(chunks).toString("utf8");
}
