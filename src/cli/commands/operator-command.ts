import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { agentConfig } from "../../agent/runner-config";
import { kubeIdentityReviewer } from "../../agent/kube-auth";
import { Runner } from "../../agent/runner";
import { parseStackKey } from "../../agent/stack-object";
import { defaultControllerOptions, StackController } from "../../agent/stack-controller";
import { parseDuration } from "../../lib/duration";
import { contextNamespace, kubeConfig } from "../../lib/kube-config";
import { createLogger } from "../../lib/log";
import { stateDir } from "../../lib/paths";
import { SettingsError } from "../../reconcile/stack-settings";
import { EXIT } from "../output";
import { ensureSyncBinaries } from "./sync-command";

interface OperatorFlags {
  namespace?: string;
  allNamespaces: boolean;
  leaseNamespace?: string;
  identity?: string;
  listen: string;
  apiListen?: string;
  leaseDuration: string;
  managerServiceAccount: string;
  maxParallel: string;
  kubeconfig?: string;
  context?: string;
}

/** `--listen :8080` listens on every address (in a pod); `host:port` as given. */
function listenAddress(flag: string): string {
  return flag.startsWith(":") ? `0.0.0.0${flag}` : flag;
}

function duration(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new SettingsError(`${flag} "${text}" is not a duration; write it like 15s or 1m`);
  }
}

/** `ferry operator`: the agent in a cluster, keeping the Stack objects (ferry.dev/v1alpha1) its replica holds the Lease of. */
export function operatorCommand(): Command {
  return new Command("operator")
    .description(
      "Run in a cluster: keep every Stack object (ferry.dev/v1alpha1) equal to Git, shared by the replicas through Leases; status, conditions and Events on the objects",
    )
    .option("-n, --namespace <ns>", "namespace of the Stacks to keep ($POD_NAMESPACE, else the kubeconfig context's, else default)")
    .option("-A, --all-namespaces", "keep the Stacks of every namespace", false)
    .option("--lease-namespace <ns>", "namespace of the replicas' Leases (default: --namespace, else $POD_NAMESPACE)")
    .option("--identity <name>", "this replica's name in the Leases ($POD_NAME, else the host name and pid)")
    .option("--listen <address>", "webhooks, API, metrics and health (`:8080` listens on every address)", "127.0.0.1:8080")
    .option("--api-listen <address>", "API, metrics and health on their own address")
    .option("--lease-duration <duration>", "how long a replica's Lease holds without renewal: a dead replica's stacks move after it", "15s")
    .option(
      "--manager-service-account <name>",
      "in-cluster targets: the ServiceAccount whose rights the apply uses (unless the Stack names one)",
      "ferry-manager",
    )
    .option("--max-parallel <n>", "how many stacks may reconcile at once", "2")
    .option("--kubeconfig <file>", "the agent's own credentials (default: in-cluster, else $KUBECONFIG / ~/.kube/config)")
    .option("--context <name>", "kubeconfig context")
    .action(async (opts: OperatorFlags) => {
      const env = process.env;
      const access = { kubeconfig: opts.kubeconfig, context: opts.context };
      const namespace = opts.allNamespaces ? undefined : (opts.namespace ?? env.POD_NAMESPACE ?? contextNamespace(access) ?? "default");
      const leaseNamespace = opts.leaseNamespace ?? namespace ?? env.POD_NAMESPACE;
      if (!leaseNamespace)
        throw new SettingsError("with --all-namespaces, say where the Leases live: --lease-namespace <ns> (or $POD_NAMESPACE)");
      const maxParallel = Number(opts.maxParallel);
      if (!Number.isInteger(maxParallel) || maxParallel < 1)
        throw new SettingsError(`--max-parallel "${opts.maxParallel}" must be a whole number from 1`);
      const identity = opts.identity ?? env.POD_NAME ?? `${os.hostname()}-${process.pid}`;
      const config = agentConfig(
        { listen: listenAddress(opts.listen), apiListen: opts.apiListen && listenAddress(opts.apiListen), maxParallel },
        env,
      );
      const log = createLogger({ component: "operator", replica: identity });
      const binaries = await ensureSyncBinaries((l) => log.info({ phase: "toolchain" }, l));
      const kc = kubeConfig(access);
      // The API's state-changing calls: the static token (FERRY_API_TOKEN), or a Kubernetes identity allowed to patch the Stack.
      const runner = new Runner(config, binaries, log, env, { identity: kubeIdentityReviewer(kc), stackTarget: parseStackKey });
      const controller = new StackController(
        defaultControllerOptions({
          kubeConfig: kc,
          namespace,
          leaseNamespace,
          identity,
          leaseDurationMs: duration("--lease-duration", opts.leaseDuration),
          managerServiceAccount: opts.managerServiceAccount,
          // The same path on every replica: the provider recorded in a stack's state reads its kubeconfig from it.
          secretsDir: path.join(stateDir(env), "credentials"),
          runner,
          env,
          log,
        }),
      );
      const { api: url } = await runner.start();
      await controller.start();
      process.stderr.write(`ferry operator ${identity} listening on ${url} (Stacks of ${namespace ?? "every namespace"})\n`);
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        log.info({ phase: "stop", signal }, "stopping: giving the stacks back after their current runs");
        void controller
          .stop()
          .then(() => runner.stop())
          .then(() => process.exit(EXIT.ok));
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
      await new Promise(() => undefined);
    });
}
