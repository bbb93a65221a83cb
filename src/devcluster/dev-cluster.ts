import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { AbortPoll, pollUntil } from "../lib/net";
import { isProcessAlive } from "../lib/process-alive";
import { Toolchain } from "../toolchain/install";

/** Binaries a local control plane runs. */
export const CONTROL_PLANE_BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl"] as const;

/** Options for {@link devClusterUp}. */
export interface DevClusterOptions {
  /** Folder of this cluster: data, keys, logs, kubeconfig. Reused on the next `up` (same identity). */
  readonly dir: string;
  readonly toolchain: Toolchain;
  /** Number of kwok fake nodes. Default 1. */
  readonly nodes?: number;
  /** Tear the cluster down when this process exits (tests pass their own pid). */
  readonly ownerPid?: number;
  /** How long to wait for a healthy API. Default 120 s. */
  readonly timeoutMs?: number;
  /** Extra kube-apiserver flags, e.g. `--min-request-timeout=5` (tests of watches the server ends). */
  readonly apiServerFlags?: readonly string[];
}

/** What the supervisor records in `<dir>/state.json`. */
export interface DevClusterState {
  readonly supervisorPid: number;
  readonly pids: Readonly<Record<string, number>>;
  readonly ready: boolean;
  readonly error?: string;
  readonly server?: string;
  readonly kubeconfig?: string;
}

/** A running local control plane. */
export interface DevCluster {
  readonly dir: string;
  /** Path of an admin kubeconfig. */
  readonly kubeconfig: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
}

/** The default folder of the embedded cluster. */
export function defaultDevClusterDir(stateRoot: string): string {
  return path.join(stateRoot, "dev-cluster");
}

/** Reads the state file of a cluster folder, if any. */
export function readDevClusterState(dir: string): DevClusterState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) as DevClusterState;
  } catch {
    return undefined;
  }
}

/**
 * Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1 under
 * a supervisor process, and returns once the API is healthy and the fake nodes are Ready.
 * Idempotent: returns the running cluster if the folder already has one.
 */
export async function devClusterUp(options: DevClusterOptions): Promise<DevCluster> {
  const dir = path.resolve(options.dir);
  const running = readDevClusterState(dir);
  if (running?.ready && isProcessAlive(running.supervisorPid) && running.kubeconfig && running.server) {
    return { dir, kubeconfig: running.kubeconfig, server: running.server };
  }
  if (running && isProcessAlive(running.supervisorPid)) await devClusterDown(dir);
  fs.mkdirSync(path.join(dir, "logs"), { recursive: true });
  fs.rmSync(path.join(dir, "state.json"), { force: true });
  const bins = Object.fromEntries(CONTROL_PLANE_BINARIES.map((b) => [b, options.toolchain.bin(b)]));
  const log = fs.openSync(path.join(dir, "logs", "supervisor.log"), "a");
  const child = spawn(process.execPath, [path.join(__dirname, "supervisor.js"), dir], {
    detached: true,
    stdio: ["ignore", log, log],
    env: {
      ...process.env,
      FERRY_DEV_BINS: JSON.stringify(bins),
      FERRY_DEV_NODES: String(options.nodes ?? 1),
      FERRY_DEV_OWNER_PID: options.ownerPid ? String(options.ownerPid) : "",
      FERRY_DEV_APISERVER_FLAGS: JSON.stringify(options.apiServerFlags ?? []),
    },
  });
  fs.closeSync(log);
  child.unref();
  let exited = false;
  child.on("exit", () => (exited = true));
  const state = await pollUntil(
    "the local control plane to become healthy",
    async () => {
      const s = readDevClusterState(dir);
      if (s?.error) throw new AbortPoll(`${s.error} (logs in ${path.join(dir, "logs")})`);
      if (exited && !s?.ready) throw new AbortPoll(`the supervisor exited (see ${path.join(dir, "logs", "supervisor.log")})`);
      return s?.ready ? s : undefined;
    },
    { timeoutMs: options.timeoutMs ?? 120_000, intervalMs: 200 },
  ).catch(async (err: unknown) => {
    await devClusterDown(dir);
    throw err;
  });
  return { dir, kubeconfig: state.kubeconfig!, server: state.server! };
}

/** Stops a local control plane and waits until none of its processes is left. */
export async function devClusterDown(dir: string): Promise<void> {
  const state = readDevClusterState(path.resolve(dir));
  if (!state) return;
  const all = [state.supervisorPid, ...Object.values(state.pids)];
  signal(state.supervisorPid, "SIGTERM");
  const gone = await pollUntil("the control plane to stop", async () => (all.some(isProcessAlive) ? undefined : true), {
    timeoutMs: 15_000,
    intervalMs: 100,
  }).catch(() => false);
  if (!gone) for (const pid of all) signal(pid, "SIGKILL");
  fs.rmSync(path.join(dir, "state.json"), { force: true });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
