import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { AddressInfo } from "node:net";
import { ferryRoot } from "../../src/lib/paths";
import { eventually } from "./e2e";
import { processTree } from "./process-tree";

/** `ferry run` as a child process, with its HTTP address. */
export interface RunnerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the runner printed so far. */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** kill -9 of the whole process group (runner, pulumi, provider): a crash. */
  crash(): Promise<void>;
}

/** Starts `ferry run --config <file>` and waits until it listens. */
export function startRunner(configFile: string, env: NodeJS.ProcessEnv): Promise<RunnerProcess> {
  return startAgent(["run", "--config", configFile], env);
}

/** Starts the agent (`ferry run ...` or `ferry operator ...`) and waits until it listens. */
export async function startAgent(args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunnerProcess> {
  // Its own process group, so a test can kill the runner with its pulumi and provider processes.
  const child = spawn(process.execPath, [path.join(ferryRoot(), "bin", "ferry"), ...args], {
    env: { ...env, FERRY_LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (out += d));
  let url = "";
  await eventually("the runner listens", async () => {
    if (child.exitCode !== null) throw new Error(`ferry ${args[0]} exited with ${child.exitCode}:\n${out}`);
    url = /listening on (http:\/\/\S+)/.exec(out)?.[1] ?? "";
    return url !== "";
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    url,
    child,
    output: () => out,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
    crash: async () => {
      // Everything the runner started dies with it, as in a container that is killed: its process
      // group, and the plugins pulumi started in groups of their own (they would outlive the test).
      const tree = processTree(child.pid!);
      for (const target of [-child.pid!, ...tree]) {
        try {
          process.kill(target, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await exited;
    },
  };
}

/** A local HTTP endpoint recording the JSON bodies posted to it (a notification receiver). */
export async function startReceiver(): Promise<{ url: string; bodies: unknown[]; close(): Promise<void> }> {
  const bodies: unknown[] = [];
  const server = http.createServer((req, res) => {
    let text = "";
    req.setEncoding("utf8").on("data", (d: string) => (text += d));
    req.on("end", () => {
      bodies.push(JSON.parse(text || "null"));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Writes a YAML runner config. */
export function writeRunnerConfig(file: string, config: unknown): void {
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
}
