import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before } from "node:test";
import { DevCluster, devClusterDown, devClusterUp } from "../../src/devcluster/dev-cluster";
import { run, RunResult, runChecked } from "../../src/lib/exec";
import { ferryRoot } from "../../src/lib/paths";
import { pulumiEnv } from "../../src/reconcile/pulumi-stack";
import { ReconcileResult } from "../../src/reconcile/reconcile-result";
import { resolveSyncSettings } from "../../src/reconcile/stack-settings";
import { defaultToolchainOptions, ensureToolchain, Toolchain } from "../../src/toolchain/install";

/** One end-to-end environment: a real control plane, the real toolchain, an isolated state dir. */
export interface E2E {
  readonly dir: string;
  readonly cluster: DevCluster;
  readonly toolchain: Toolchain;
  /** Environment for ferry and pulumi child processes. */
  readonly env: NodeJS.ProcessEnv;
  /** Runs `ferry <args>` as a child process (the real CLI). */
  ferry(args: readonly string[], extraEnv?: NodeJS.ProcessEnv): Promise<RunResult>;
  /** Runs kubectl against the cluster; throws on a non-zero exit. */
  kubectl(...args: string[]): Promise<string>;
  /** Runs kubectl and returns the parsed JSON of `-o json`. */
  getJson<T = Record<string, unknown>>(...args: string[]): Promise<T>;
  /** Whether `kubectl get` finds the object. */
  exists(...args: string[]): Promise<boolean>;
  /** Runs the pulumi CLI in a stack's workspace (after a sync made it); returns stdout. */
  pulumi(stack: string, args: readonly string[]): Promise<string>;
  /** Runs `ferry sync -o json` for a stack against this cluster and parses its result. */
  sync(options: { repo: string; path: string; stack?: string; extra?: readonly string[] }): Promise<SyncRun>;
}

/** What one `ferry sync` run returned. */
export interface SyncRun {
  readonly code: number;
  readonly result: ReconcileResult;
  readonly stderr: string;
}

/**
 * Sets up an end-to-end environment for the current test file: toolchain (built on first use),
 * a local control plane owned by this process (with `apiServerFlags` added to its kube-apiserver), and
 * a temp dir; all torn down after the file.
 */
export function useE2E(options: { apiServerFlags?: readonly string[] } = {}): () => E2E {
  let e2e: E2E | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-e2e-"));
  before(async () => {
    const toolchain = await ensureToolchain(defaultToolchainOptions({ progress: (l) => process.stderr.write(`# ${l}\n`) }));
    const cluster = await devClusterUp({
      dir: path.join(dir, "cluster"),
      toolchain,
      ownerPid: process.pid,
      apiServerFlags: options.apiServerFlags,
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FERRY_STATE_DIR: path.join(dir, "state"),
      PULUMI_HOME: path.join(dir, "pulumi-home"),
      PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase",
      NO_COLOR: "1",
    };
    delete env.PULUMI_BACKEND_URL;
    const kubectl = async (...args: string[]): Promise<string> =>
      (await runChecked(toolchain.bin("kubectl"), ["--kubeconfig", cluster.kubeconfig, ...args])).stdout;
    e2e = {
      dir,
      cluster,
      toolchain,
      env,
      ferry: (args, extraEnv) =>
        run(process.execPath, [path.join(ferryRoot(), "bin", "ferry"), ...args], { env: { ...env, ...extraEnv }, timeoutMs: 600_000 }),
      kubectl,
      pulumi: async (stack, args) => {
        const settings = resolveSyncSettings({ stack, repo: "unused", path: "unused", stacksDir: false }, env);
        const bin = path.join(toolchain.pulumiRoot, "bin");
        const out = await runChecked(path.join(bin, "pulumi"), [...args, "--stack", stack], {
          cwd: settings.workDir,
          env: { ...env, ...pulumiEnv(settings.backendUrl, settings.pulumiEnv), PATH: `${bin}:${env.PATH}` },
        });
        return out.stdout;
      },
      getJson: async <T>(...args: string[]) => JSON.parse(await kubectl("get", ...args, "-o", "json")) as T,
      exists: async (...args: string[]) =>
        (await run(toolchain.bin("kubectl"), ["--kubeconfig", cluster.kubeconfig, "get", ...args])).code === 0,
      sync: async ({ repo, path: folder, stack = "dev", extra = [] }) => {
        const r = await e2e!.ferry([
          "sync",
          "--stack",
          stack,
          "--repo",
          repo,
          "--path",
          folder,
          "--kubeconfig",
          cluster.kubeconfig,
          "-o",
          "json",
          ...extra,
        ]);
        try {
          return { code: r.code, result: JSON.parse(r.stdout) as ReconcileResult, stderr: r.stderr };
        } catch {
          throw new Error(`ferry sync printed no JSON result (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
        }
      },
    };
  });
  after(async () => {
    try {
      if (e2e) await devClusterDown(e2e.cluster.dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  return () => {
    if (!e2e) throw new Error("the end-to-end environment is not ready (before() failed?)");
    return e2e;
  };
}

/** Polls until `check` holds, or fails with what was last seen. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
