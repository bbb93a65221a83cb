import * as fs from "node:fs";
import * as path from "node:path";
import { ComponentResource, secret } from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { runChecked } from "../../src/lib/exec";
import { pulumiEnv } from "../../src/reconcile/pulumi-stack";
import { resolveSyncSettings } from "../../src/reconcile/stack-settings";
import { E2E } from "./e2e";

/** Options of {@link addStackUpdates}. */
export interface StackUpdateOptions {
  /** The message of the i-th update (0-based). */
  readonly message: (i: number) => string;
  /** Extra environment of the updates (`PULUMI_GIT_*` for the commit they record). */
  readonly env?: Readonly<Record<string, string>>;
}

type InlineProgram = () => Promise<Record<string, unknown> | void>;

/**
 * Grows a ferry stack's update history fast, with real updates: `count` runs of `pulumi up` through
 * the real CLI and engine on the same backend and stack, each recorded in the stack's history like
 * any other update. The program is an inline one that registers a marker component (and the stack's
 * outputs as they are) and nothing else, and each update targets only the marker, so the objects
 * ferry manages are left exactly as they are (not re-diffed, not deleted; a target on the stack's
 * root would count them as its dependents); the last update deletes the marker again. No program
 * to start, no provider, no refresh. The stack must exist (a ferry sync made it); `count` >= 2.
 */
export async function addStackUpdates(e: E2E, stackName: string, count: number, options: StackUpdateOptions): Promise<void> {
  if (count < 2) throw new Error("addStackUpdates makes at least 2 updates (the last one removes the marker)");
  const settings = resolveSyncSettings({ stack: stackName, repo: "unused", path: "unused", stacksDir: false }, e.env);
  const workDir = fs.mkdtempSync(path.join(e.dir, `updates-${stackName}-`));
  const inherited = Object.fromEntries(Object.entries(e.env).filter((kv): kv is [string, string] => kv[1] !== undefined));
  const bin = path.join(e.toolchain.pulumiRoot, "bin");
  const env = { ...inherited, ...pulumiEnv(settings.backendUrl, settings.pulumiEnv), PATH: `${bin}:${e.env.PATH}`, ...options.env };
  let marker = true;
  let outputs: Record<string, unknown> = {};
  const program: InlineProgram = async () => {
    if (marker) new ComponentResource("ferry:test:HistoryMarker", "history-marker", {}, {});
    // The stack's outputs (ferry's pin among them) stay as ferry left them.
    return outputs;
  };
  const workspace = await LocalWorkspace.create({
    workDir,
    pulumiCommand: await PulumiCommand.get({ root: e.toolchain.pulumiRoot, skipVersionCheck: true }),
    projectSettings: { name: "ferry", runtime: "nodejs" },
    program,
    envVars: env,
  });
  const stack = await Stack.select(stackName, workspace);
  outputs = Object.fromEntries(Object.entries(await stack.outputs()).map(([k, o]) => [k, o.secret ? secret(o.value) : o.value]));
  const target = `urn:pulumi:${stackName}::ferry::ferry:test:HistoryMarker::history-marker`;
  const internals = inlineServer();
  for (let i = 0; i < count; i++) {
    marker = i < count - 1;
    const args = [
      "up",
      "--yes",
      "--skip-preview",
      "--stack",
      stackName,
      "--target",
      target,
      "--message",
      options.message(i),
      "--color",
      "never",
    ];
    if (internals) await upInline(internals, path.join(bin, "pulumi"), args, { cwd: workDir, env }, program);
    else await stack.up({ target: [target], message: options.message(i), color: "never" });
  }
}

/** The pieces of @pulumi/pulumi's Automation API that serve an inline program to the CLI. */
interface InlineServer {
  readonly grpc: {
    Server: new (options: Record<string, unknown>) => {
      addService(service: unknown, implementation: unknown): void;
      bindAsync(address: string, credentials: unknown, callback: (err: Error | null, port: number) => void): void;
      forceShutdown(): void;
    };
    ServerCredentials: { createInsecure(): unknown };
  };
  readonly service: unknown;
  readonly LanguageServer: new (program: InlineProgram) => { onPulumiExit(hasError: boolean): void };
  readonly maxRPCMessageSize: number;
}

/**
 * `Stack.up()` spends two more CLI calls per update (stack outputs, then the last history entry)
 * and several times the update's own time; the CLI run directly against the Automation API's
 * language server (what `Stack.up()` does inside) takes about half a second. Those modules are not
 * in @pulumi/pulumi's typed API (pinned in package.json): when a Pulumi upgrade moves them, this
 * returns undefined and the updates go through `Stack.up()`.
 */
function inlineServer(): InlineServer | undefined {
  try {
    const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    const server = require(path.join(pulumiDir, "automation", "server")) as Pick<InlineServer, "LanguageServer" | "maxRPCMessageSize">;
    const proto = require(path.join(pulumiDir, "proto", "language_grpc_pb")) as { LanguageRuntimeService: unknown };
    const grpc = require(require.resolve("@grpc/grpc-js", { paths: [pulumiDir] })) as InlineServer["grpc"];
    if (!server.LanguageServer || !proto.LanguageRuntimeService || !grpc.Server) return undefined;
    return {
      grpc,
      service: proto.LanguageRuntimeService,
      LanguageServer: server.LanguageServer,
      maxRPCMessageSize: server.maxRPCMessageSize,
    };
  } catch {
    return undefined;
  }
}

async function upInline(
  s: InlineServer,
  pulumi: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
  program: InlineProgram,
): Promise<void> {
  const server = new s.grpc.Server({ "grpc.max_receive_message_length": s.maxRPCMessageSize });
  const language = new s.LanguageServer(program);
  server.addService(s.service, language);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", s.grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  let failed = true;
  try {
    await runChecked(pulumi, [...args, `--client=127.0.0.1:${port}`, "--exec-kind", "auto.inline"], options);
    failed = false;
  } finally {
    language.onPulumiExit(failed);
    server.forceShutdown();
  }
}
