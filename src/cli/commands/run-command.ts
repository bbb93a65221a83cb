import { Command, Option } from "commander";
import { createLogger } from "../../lib/log";
import { Runner } from "../../agent/runner";
import { API_TOKEN_HELP, readApiToken } from "../../agent/api-auth";
import { loadRunnerConfig } from "../../agent/runner-config";
import { StackStatus } from "../../agent/stack-worker";
import { EXIT, styler } from "../output";
import { ensureSyncBinaries } from "./sync-command";

const DEFAULT_SERVER = process.env.FERRY_SERVER ?? "http://127.0.0.1:8080";

/** `ferry run`: the long-running agent. */
export function runCommand(): Command {
  return new Command("run")
    .description(
      "Keep every stack of a config file equal to Git: on new commits (poll, webhook), on the drift interval and on live changes",
    )
    .requiredOption("-c, --config <file>", "runner config file (YAML: listen, stacks[], notifications[])")
    .action(async (opts: { config: string }) => {
      const config = loadRunnerConfig(opts.config);
      const log = createLogger({ component: "runner" });
      const binaries = await ensureSyncBinaries((l) => log.info({ phase: "toolchain" }, l));
      const runner = new Runner(config, binaries, log);
      const { api: url, webhooks } = await runner.start();
      process.stderr.write(`ferry runner listening on ${url}${webhooks !== url ? ` (API); webhooks on ${webhooks}` : ""}\n`);
      if (!config.apiToken) process.stderr.write(`control API (reconcile, suspend, resume) disabled: ${API_TOKEN_HELP}\n`);
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        log.info({ phase: "stop", signal }, "stopping: cancelling current updates cleanly");
        void runner.stop().then(() => process.exit(EXIT.ok));
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
      await new Promise(() => undefined);
    });
}

async function api(server: string, method: string, path: string, body?: unknown): Promise<unknown> {
  // The token goes to the runner named by --server / FERRY_SERVER only, and only for calls that need it.
  const token = method === "GET" ? "" : readApiToken(process.env);
  const headers: Record<string, string> = {
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
    ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
  };
  const res = await fetch(`${server}${path}`, {
    method,
    headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
    redirect: "error",
    signal: AbortSignal.timeout(10_000),
  }).catch((err: unknown) => {
    throw new Error(
      `cannot reach the ferry runner at ${server} (${err instanceof Error ? err.message : String(err)}); is \`ferry run\` running? (--server)`,
    );
  });
  const answer = (await res.json()) as { error?: string };
  if (!res.ok) throw new Error(answer.error ?? `the runner answered ${res.status}`);
  return answer;
}

/** `ferry status`, `ferry reconcile`, `ferry suspend`, `ferry resume`: talk to a running `ferry run`. */
export function runnerClientCommands(): Command[] {
  const server = (c: Command): Command => c.option("--server <url>", "the runner's address ($FERRY_SERVER)", DEFAULT_SERVER);
  const status = server(new Command("status"))
    .description("Show each stack: Ready / Reconciling / Stalled, revisions, drift, recent runs")
    .argument("[stack]", "one stack only")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (stack: string | undefined, opts: { server: string; output: string }) => {
      const all = (
        stack ? [await api(opts.server, "GET", `/api/stacks/${encodeURIComponent(stack)}`)] : await api(opts.server, "GET", "/api/stacks")
      ) as StackStatus[];
      if (opts.output === "json") return void process.stdout.write(JSON.stringify(stack ? all[0] : all, null, 2) + "\n");
      const s = styler(process.stdout);
      const color = (c: string) => (c === "Ready" ? s.green(c) : c === "Stalled" ? s.red(c) : s.yellow(c));
      process.stdout.write(
        `${"STACK".padEnd(16)} ${"MODE".padEnd(9)} ${"STATUS".padEnd(12)} ${"APPLIED".padEnd(8)} ${"PINNED".padEnd(8)} ${"DRIFT".padEnd(6)} MESSAGE\n`,
      );
      for (const st of all) {
        const drift = st.drift.detected ? "yes" : "no";
        const pinned = st.pinned ? st.pinned.revision.slice(0, 7) : "-";
        const message = st.pinned
          ? `rolled back by ${st.pinned.by} at ${st.pinned.at}; \`ferry resume ${st.name}\` follows the branch again`
          : (st.message ?? st.reason ?? "").split("\n")[0];
        process.stdout.write(
          `${st.name.padEnd(16)} ${st.mode.padEnd(9)} ${color(st.condition.padEnd(12))} ${(st.lastAppliedRevision ?? "-").slice(0, 7).padEnd(8)} ${s.yellow(pinned.padEnd(8))} ${drift.padEnd(6)} ${message}\n`,
        );
      }
    });
  const action = (name: string, description: string): Command =>
    server(new Command(name))
      .description(description)
      .argument("<stack>")
      .action(async (stack: string, opts: { server: string; full?: boolean }) => {
        await api(opts.server, "POST", `/api/stacks/${encodeURIComponent(stack)}/${name}`, opts.full ? { full: true } : undefined);
        process.stderr.write(`${name}${opts.full ? " (full)" : ""} requested for ${stack}\n`);
      });
  return [
    status,
    action(
      "reconcile",
      "Reconcile a stack now: apply what changed in Git and what the live view saw drift (--full: refresh and update every object)",
    ).option("--full", "refresh every managed object from the cluster and update all of them (the safety net's run)", false),
    action("suspend", "Stop reconciling a stack until resumed"),
    action("resume", "Resume reconciling a stack: lifts a suspend and a rollback's pin, and follows the branch again"),
  ];
}
