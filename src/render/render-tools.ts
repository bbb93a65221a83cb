import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import * as yaml from "js-yaml";
import { KUBERNETES_SCHEMA } from "../desired-state/kubernetes-yaml";
import { GitRef } from "../desired-state/git-ref";
import { formatBytes, INPUT_LIMITS } from "../desired-state/input-limits";
import { KubeObject } from "../desired-state/object-id";
import { REMOTE_GIT_URL_HINT, remoteGitUrlProblem } from "../desired-state/outbound-policy";
import { SourcePolicy } from "../desired-state/source-policy";
import { OutputLimitError, run, RunOptions, RunResult } from "../lib/exec";
import { Logger } from "../lib/log";
import { credentialsFor, isConfigRepoUrl } from "../source/credentials";
import { checkoutGitRef, GitAuth } from "../source/git-source";
import { GitCheckoutRequest, HelmTemplateRequest, RenderTools } from "./build-desired-state";
import { ClusterDiscovery } from "./cluster-discovery";
import { OVERLAY_BASE_FILE, overlayKustomization, OverlayRequest } from "./kustomize-overlay";
import { dependencySources, helmCapabilityArgs, scratchChart } from "./helm-chart";
import { OciArtifactRequest, pullOciArtifact } from "./oci-artifact";
import { OutboundGuard, OutboundRefusedError } from "./outbound";
import { SourceAuth } from "./source-credentials";

/** What the real render tools need. */
export interface RenderToolsOptions {
  readonly helm: string;
  readonly kubectl: string;
  /** Kubeconfig and context of the cluster, for valuesFrom read from the live cluster. */
  readonly kubeconfig?: string;
  readonly context?: string;
  /** Folder for Helm's caches, checkouts of other git repositories and unpacked OCI artifacts. */
  readonly cacheDir: string;
  /** The config repo's URL as configured: the only URL {@link gitAuth} is sent to. */
  readonly repoUrl?: string;
  /** Credentials of the config repo (sent to the config repo's own URL only). */
  readonly gitAuth?: GitAuth;
  /** What the repo's content may reach. */
  readonly policy: SourcePolicy;
  /**
   * Charts' `lookup` reads the live cluster (`helm template --dry-run=server`), as it does under
   * helm-controller: a chart that keeps a generated password in a Secret finds it again, so a
   * release converges. Runs that apply only; a preview's charts (a pull request's) never read the
   * cluster.
   */
  readonly clusterLookup?: boolean;
  /** Where each outbound fetch is logged (with the stack and the unit); ferry's own logger when absent. */
  readonly log?: Logger;
  /** The stack the render is for, logged with each outbound fetch. */
  readonly stack?: string;
}

/** Render tools backed by the helm and kubectl binaries, git and HTTP. */
export function localRenderTools(options: RenderToolsOptions): RenderTools {
  const helmEnv: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CACHE_HOME: path.join(options.cacheDir, "helm", "cache"),
    HELM_CONFIG_HOME: path.join(options.cacheDir, "helm", "config"),
    HELM_DATA_HOME: path.join(options.cacheDir, "helm", "data"),
    ...isolatedRegistryConfig(path.join(options.cacheDir, "helm")),
  };
  const kubeArgs = [
    ...(options.kubeconfig ? ["--kubeconfig", options.kubeconfig] : []),
    ...(options.context ? ["--context", options.context] : []),
  ];
  let discovery: ClusterDiscovery | undefined;
  const outbound = new OutboundGuard({
    policy: options.policy,
    cluster: { kubeconfig: options.kubeconfig, context: options.context },
    log: options.log,
    stack: options.stack,
  });
  /** `helm dependency build` of a folder chart in a scratch copy, each repository through the outbound guard. */
  const withDependencies = async (chartDir: string, root: string, unit: string) => {
    const sources = dependencySources(chartDir, root, path.relative(root, chartDir) || ".");
    const missing = [...sources.values()].filter((s) => s.kind !== "vendored");
    if (missing.length === 0) return undefined;
    for (const s of missing) {
      if (s.kind === "repository") await outbound.check(s.url, unit, "chart-repository");
      else if (s.kind === "oci") await outbound.check(s.url, unit, "oci");
    }
    const scratch = scratchChart(chartDir, sources);
    try {
      const out = await runRender("helm dependency build", options.helm, ["dependency", "build", scratch.dir], {
        env: helmEnv,
        timeoutMs: 300_000,
      });
      if (out.code !== 0) throw new Error(`helm dependency build failed: ${out.stderr.trim().replace(/^Error: /, "")}`);
      return scratch;
    } catch (err) {
      scratch.cleanup();
      throw err;
    }
  };
  return {
    async helmTemplate(request: HelmTemplateRequest): Promise<string> {
      if (request.repo) await outbound.check(request.repo, request.unit, "chart-repository");
      else if (request.chart.startsWith("oci://")) await outbound.check(request.chart, request.unit, "oci");
      // As helm-controller: the chart sees the target cluster's version and APIs (.Capabilities, kubeVersion).
      discovery ??= new ClusterDiscovery({ kubeconfig: options.kubeconfig, context: options.context });
      const capabilities = helmCapabilityArgs(await discovery.capabilities());
      // A folder chart whose dependencies are not in charts/ gets them built in a scratch copy.
      const built = request.chartRoot ? await withDependencies(request.chart, request.chartRoot, request.unit) : undefined;
      // Values go through stdin, never a file: they may hold values read from Secrets.
      const args = ["template", request.releaseName, built?.dir ?? request.chart, "--namespace", request.namespace, "--values", "-"];
      if (request.repo) args.push("--repo", request.repo);
      // helm sends these to the repository's own host only (no --pass-credentials).
      if (request.auth) args.push("--username", request.auth.username, "--password", request.auth.password);
      if (request.version) args.push("--version", request.version);
      if (request.chart.startsWith("oci://")) {
        // helm falls back to plain HTTP when a registry answers TLS with HTTP, unless it is given a CA
        // file: without the source's `insecure: true`, it gets the system's, and plain HTTP fails.
        if (request.plainHttp) args.push("--plain-http");
        else args.push("--ca-file", systemCaFile(options.cacheDir));
      }
      if (options.clusterLookup) {
        // --take-ownership: objects ferry applied carry no Helm release annotations; helm must not refuse them.
        args.push("--dry-run=server", "--take-ownership");
        if (options.kubeconfig) args.push("--kubeconfig", options.kubeconfig);
        if (options.context) args.push("--kube-context", options.context);
        if (request.lookupAs) args.push("--kube-as-user", request.lookupAs);
      }
      if (request.includeCRDs) args.push("--include-crds");
      else args.push("--skip-crds");
      args.push(...capabilities);
      // Helm reads these as YAML 1.1: the schema quotes strings such as "on" or "0755" so they stay strings.
      const input = yaml.dump(request.values, { noRefs: true, schema: KUBERNETES_SCHEMA });
      try {
        const out = await runRender("helm template", options.helm, args, { env: helmEnv, timeoutMs: 300_000, input });
        if (out.code !== 0) throw new Error(out.stderr.trim().replace(/^Error: /, "") || `helm exited with ${out.code}`);
        return out.stdout;
      } finally {
        built?.cleanup();
      }
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
    async kustomizeOverlay(request: OverlayRequest): Promise<string> {
      // A folder of ferry's own, private, in memory where the system has one (/dev/shm): the base may
      // hold values read from Secrets. Components (already confined to the checkout) are named
      // relative to it, as Kustomize requires.
      const dir = fs.mkdtempSync(path.join(overlayParent(), "ferry-overlay-"));
      try {
        fs.writeFileSync(path.join(dir, OVERLAY_BASE_FILE), request.base, { mode: 0o600 });
        const components = request.overlay.components.map((c) => path.relative(dir, c));
        fs.writeFileSync(path.join(dir, "kustomization.yaml"), overlayKustomization(request.overlay, components), { mode: 0o600 });
        const out = await runRender(
          "kustomize build",
          options.kubectl,
          ["kustomize", "--load-restrictor", "LoadRestrictionsRootOnly", dir],
          { timeoutMs: 120_000 },
        );
        if (out.code !== 0)
          throw new Error(
            out.stderr
              .trim()
              .replace(/^error: /, "")
              .split(dir)
              .join("<overlay>"),
          );
        return out.stdout;
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
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
    fetchText(url: string, unit: string): Promise<string> {
      return outbound.fetchText(url, unit);
    },
    discoverScopes(kinds) {
      discovery ??= new ClusterDiscovery({ kubeconfig: options.kubeconfig, context: options.context });
      return discovery.scopes(kinds);
    },
    pullOciArtifact(request: OciArtifactRequest): Promise<string> {
      return pullOciArtifact(request, { outbound, cacheDir: options.cacheDir });
    },
    async checkoutGit(url: string, ref: GitRef, request: GitCheckoutRequest): Promise<string> {
      const local = remoteGitUrlProblem(url);
      if (local !== undefined) throw new OutboundRefusedError(`${request.unit}: ${local}\n  fix: ${REMOTE_GIT_URL_HINT}`);
      await outbound.check(url, request.unit, "git");
      // One folder per repository and ref, so two releases at different refs never share a checkout.
      const dir = path.join(
        options.cacheDir,
        "git",
        createHash("sha256")
          .update(`${url}#${JSON.stringify(ref)}`)
          .digest("hex")
          .slice(0, 16),
      );
      // The config repo's own URL is the config repo (its credentials, the user's git setup);
      // anything else is repo content's choice: only its own secretRef's credentials, git isolated.
      const configRepo = { url: options.repoUrl ?? "", auth: options.gitAuth };
      if (!request.auth && isConfigRepoUrl(url, configRepo.url)) {
        await checkoutGitRef({ url, auth: credentialsFor(url, configRepo) }, ref, dir);
        return dir;
      }
      await withGitAuth(request.auth, (auth) => checkoutGitRef({ url, auth }, ref, dir, { untrusted: true }));
      return dir;
    },
  };
}

/** Where overlay folders go: a RAM-backed folder when the system has one, so Secret data never reaches a disk. */
function overlayParent(): string {
  try {
    fs.accessSync("/dev/shm", fs.constants.W_OK);
    return "/dev/shm";
  } catch {
    return os.tmpdir();
  }
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

/** Runs `work` with a source's credentials as git takes them (an SSH key in a private file, removed afterwards). */
async function withGitAuth<T>(auth: SourceAuth | undefined, work: (auth: GitAuth | undefined) => Promise<T>): Promise<T> {
  if (!auth) return work(undefined);
  if (auth.identity === undefined) return work({ username: auth.username, password: auth.password });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-ssh-"));
  try {
    const sshKeyFile = path.join(dir, "identity");
    fs.writeFileSync(sshKeyFile, auth.identity.endsWith("\n") ? auth.identity : `${auth.identity}\n`, { mode: 0o600 });
    let knownHostsFile: string | undefined;
    if (auth.knownHosts !== undefined) {
      knownHostsFile = path.join(dir, "known_hosts");
      fs.writeFileSync(knownHostsFile, auth.knownHosts, { mode: 0o600 });
    }
    return await work({ sshKeyFile, knownHostsFile });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What every registry credential file holds: an entry for a host that cannot exist, so "no credentials" is never read as "ask the system". */
const EMPTY_REGISTRY_CONFIG = `${JSON.stringify({ auths: { "ferry.invalid": {} } })}\n`;

/**
 * Helm's OCI client reads credentials from HELM_REGISTRY_CONFIG, falls back to Docker's config
 * ($DOCKER_CONFIG or ~/.docker), and with neither configured asks the system's credential helper:
 * all three would hand the user's registry logins to whatever registry a repository names. Both
 * files live under ferry's render cache, hold no login, and are rewritten on every start (a
 * `helm registry login` someone ran with this environment is wiped).
 */
function isolatedRegistryConfig(helmDir: string): NodeJS.ProcessEnv {
  const registryConfig = path.join(helmDir, "registry", "config.json");
  const dockerDir = path.join(helmDir, "docker");
  for (const file of [registryConfig, path.join(dockerDir, "config.json")]) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // Atomic: a helm of a concurrent render never reads a half-written file.
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, EMPTY_REGISTRY_CONFIG, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
  return { HELM_REGISTRY_CONFIG: registryConfig, DOCKER_CONFIG: dockerDir };
}

/** Where Go looks for the system's CA bundle on Linux (crypto/x509 root_linux.go), in its order. */
const SYSTEM_CA_FILES = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/ca-bundle.pem",
  "/etc/pki/tls/cacert.pem",
  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
  "/etc/ssl/cert.pem",
];

/** The CA bundle helm would trust anyway ($SSL_CERT_FILE, else the system's), else Node's roots written under the cache. */
function systemCaFile(cacheDir: string): string {
  const configured = process.env.SSL_CERT_FILE;
  if (configured && fs.existsSync(configured)) return configured;
  const system = SYSTEM_CA_FILES.find((f) => fs.existsSync(f));
  if (system) return system;
  const file = path.join(cacheDir, "helm", "node-root-cas.pem");
  const tmp = `${file}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(tmp, tls.rootCertificates.join("\n"));
  fs.renameSync(tmp, file);
  return file;
}
