import { spawn, SpawnOptions } from "node:child_process";

/** Options for {@link run}. */
export interface RunOptions {
  readonly cwd?: string;
  /** Full environment for the child; defaults to this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
  /** Text written to the child's stdin. */
  readonly input?: string;
  /** Kill the child after this many milliseconds. */
  readonly timeoutMs?: number;
  /** Called with each chunk of stderr/stdout as it arrives (for progress). */
  readonly onOutput?: (chunk: string) => void;
  /**
   * Stop the child (SIGKILL) once it has printed more than this many bytes on stdout or on stderr, and
   * reject with an {@link OutputLimitError}: memory stays bounded whatever the program prints.
   */
  readonly maxOutputBytes?: number;
}

/** What a finished child process returned. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A child process that exited non-zero, with the tail of what it printed. */
export class ExecError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    const tail = (result.stderr || result.stdout).trim().split("\n").slice(-15).join("\n");
    super(`${command} exited with code ${result.code}${tail ? `:\n${tail}` : ""}`);
    this.name = "ExecError";
  }
}

/** A child process stopped because it printed more than {@link RunOptions.maxOutputBytes}. */
export class OutputLimitError extends Error {
  constructor(
    readonly command: string,
    readonly limit: number,
  ) {
    super(`${command} printed more than ${limit} bytes (the limit); it was stopped`);
    this.name = "OutputLimitError";
  }
}

/**
 * Runs a program with an argument array (never through a shell) and collects its output.
 * Resolves even on a non-zero exit; use {@link runChecked} to throw instead.
 */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    };
    const child = spawn(file, [...args], spawnOptions);
    let stdout = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    }
    const limit = options.maxOutputBytes ?? Infinity;
    let outBytes = 0;
    let errBytes = 0;
    let overLimit = false;
    const stop = (): void => {
      overLimit = true;
      stdout = "";
      stderr = "";
      child.kill("SIGKILL");
    };
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      if (overLimit) return;
      outBytes += Buffer.byteLength(d, "utf8");
      if (outBytes > limit) return stop();
      stdout += d;
      options.onOutput?.(d);
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      if (overLimit) return;
      errBytes += Buffer.byteLength(d, "utf8");
      if (errBytes > limit) return stop();
      stderr += d;
      options.onOutput?.(d);
    });
    child.on("error", (err) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      if (overLimit) reject(new OutputLimitError([file, ...args].join(" "), limit));
      else resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Like {@link run}, but throws an {@link ExecError} when the program exits non-zero. */
export async function runChecked(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(file, args, options);
  if (result.code !== 0) throw new ExecError([file, ...args].join(" "), result);
  return result;
}
