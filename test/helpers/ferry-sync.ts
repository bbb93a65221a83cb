import { spawn } from "node:child_process";
import * as path from "node:path";
import { ferryRoot } from "../../src/lib/paths";
import { ReconcileResult } from "../../src/reconcile/reconcile-result";
import { E2E, SyncRun } from "./e2e";
import { processTree } from "./process-tree";

/** Options of {@link ferrySync}. */
export interface FerrySyncOptions {
  readonly repo: string;
  readonly path: string;
  readonly stack: string;
  readonly extra?: readonly string[];
  /** Kill the run (its whole process tree) and fail after this long; default 120 s. */
  readonly timeoutMs?: number;
  /** The `ferry` entry point to run; default this checkout's bin/ferry (another one: an older release). */
  readonly bin?: string;
}

/** A finished `ferry sync -o json`, with when it started and ended (epoch ms). */
export interface TimedSyncRun extends SyncRun {
  readonly startedAt: number;
  readonly endedAt: number;
}

/**
 * Runs `ferry sync -o json` as a child process against the test's cluster, like `e2e.sync`, but
 * with a deadline: a run still going after `timeoutMs` (waiting for an object that never becomes
 * ready, a lock that is never released) is killed with everything it started, and the call fails
 * saying so, instead of holding the test file for the CLI's own timeouts.
 */
export function ferrySync(e: E2E, options: FerrySyncOptions): Promise<TimedSyncRun> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const args = [
    options.bin ?? path.join(ferryRoot(), "bin", "ferry"),
    "sync",
    "--stack",
    options.stack,
    "--repo",
    options.repo,
    "--path",
    options.path,
    "--kubeconfig",
    e.cluster.kubeconfig,
    "-o",
    "json",
    ...(options.extra ?? []),
  ];
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const child = spawn(process.execPath, args, { env: e.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      // The pulumi engine and its plugins are descendants of this run (some in process groups of their own).
      for (const pid of child.pid ? processTree(child.pid).reverse() : []) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const endedAt = Date.now();
      const tail = stderr.trim().split("\n").slice(-20).join("\n");
      if (timedOut) {
        reject(
          new Error(
            `ferry sync --stack ${options.stack} did not finish within ${timeoutMs / 1000}s and was killed; its stderr ended:\n${tail}`,
          ),
        );
        return;
      }
      try {
        resolve({ code: code ?? 1, result: JSON.parse(stdout) as ReconcileResult, stderr, startedAt, endedAt });
      } catch {
        reject(new Error(`ferry sync --stack ${options.stack} printed no JSON result (exit ${code}):\n${stdout}\n${tail}`));
      }
    });
  });
}
