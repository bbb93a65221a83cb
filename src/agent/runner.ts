import * as http from "node:http";
import { Logger } from "../lib/log";
import { remoteHead } from "../source/git-source";
import { defaultLiveViewOptions, LiveView } from "./live-view";
import { notify } from "./notifier";
import { RunnerConfig, RunnerStack } from "./runner-config";
import { RunnerMetrics } from "./runner-metrics";
import { IdentityReviewer } from "./api-auth";
import { handleRequest, ServedRoutes } from "./runner-server";
import { resolveSyncSettings, SyncSettings } from "../reconcile/stack-settings";
import { StackWorker, WorkerDeps } from "./stack-worker";
import { runStack, sourceOf, SyncBinaries } from "../reconcile/run-stack";
import { Mode } from "../reconcile/mode";

/** Where a started runner listens: its API (status, control, metrics) and its webhook receivers (often the same). */
export interface RunnerAddresses {
  readonly api: string;
  readonly webhooks: string;
}

/** A running `ferry run`: one worker per stack, the HTTP server, the metrics. */
export class Runner {
  readonly workers = new Map<string, StackWorker>();
  readonly metrics = new RunnerMetrics();
  private readonly servers: http.Server[] = [];
  private slots: number;
  private readonly waiting: (() => void)[] = [];
  private ready = false;
  /** Each stack's sync settings, resolved once (they read secret files). */
  private readonly settings = new Map<string, SyncSettings>();

  /** In a cluster: who may change a stack through the API (TokenReview + SubjectAccessReview), beside the static token. */
  readonly identity?: IdentityReviewer;
  /** The Stack object behind a stack's name (operator mode), for the identity review. */
  readonly stackTarget?: (stackName: string) => { namespace: string; name: string } | undefined;

  constructor(
    readonly config: RunnerConfig,
    private readonly binaries: SyncBinaries,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
    access: Pick<Runner, "identity" | "stackTarget"> = {},
  ) {
    this.identity = access.identity;
    this.stackTarget = access.stackTarget;
    this.slots = config.maxParallel;
    for (const stack of config.stacks) this.addStack(stack, resolveSettings(stack, env));
  }

  /**
   * Adds a stack to keep in sync (started at once when the runner runs), with its resolved settings
   * and how its status and suspend requests reach the outside (operator mode: the Stack object).
   */
  addStack(
    stack: RunnerStack,
    settings: SyncSettings,
    hooks: Pick<WorkerDeps, "statusChanged" | "suspendRequested"> = {},
    past?: Parameters<StackWorker["seed"]>[0],
  ): StackWorker {
    if (this.workers.has(stack.name)) throw new Error(`stack "${stack.name}" is already kept by this runner`);
    this.settings.set(stack.name, settings);
    const worker = new StackWorker(stack, { ...this.deps(), ...hooks });
    // Seeded before it starts: its first run already knows the revisions recorded before.
    if (past) worker.seed(past);
    this.workers.set(stack.name, worker);
    if (this.ready) worker.start();
    return worker;
  }

  /** Stops keeping a stack: cancels its current update cleanly and waits for it. */
  async removeStack(name: string): Promise<void> {
    const worker = this.workers.get(name);
    if (!worker) return;
    this.workers.delete(name);
    await worker.stop();
    this.settings.delete(name);
  }

  /**
   * Starts the HTTP server(s) and every worker; resolves with the addresses listened on. With an
   * `apiListen` apart from `listen`, the API listens there and the webhook receivers on `listen`.
   */
  async start(): Promise<RunnerAddresses> {
    const apart = this.config.apiListen !== undefined && this.config.apiListen !== this.config.listen;
    const api = await this.listen(this.config.apiListen ?? this.config.listen, apart ? "api" : "all");
    const webhooks = apart ? await this.listen(this.config.listen, "webhooks") : api;
    for (const w of this.workers.values()) w.start();
    this.ready = true;
    this.log.info(
      {
        phase: "start",
        api,
        webhooks,
        controlApi:
          [this.config.apiToken ? "token" : "", this.identity ? "kubernetes identities" : ""].filter(Boolean).join(" + ") || "disabled",
        stacks: [...this.workers.keys()],
      },
      "ferry runner started",
    );
    return { api, webhooks };
  }

  private async listen(address: string, served: ServedRoutes): Promise<string> {
    const [host, port] = splitListen(address);
    const server = http.createServer((req, res) => void handleRequest(this, req, res, served));
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    const bound = server.address() as { address: string; port: number };
    return `http://${bound.address.includes(":") ? `[${bound.address}]` : bound.address}:${bound.port}`;
  }

  /** Whether the runner has started its workers (for /readyz). */
  isReady(): boolean {
    return this.ready;
  }

  /** Stops accepting work, cancels current updates cleanly, and closes the server. */
  async stop(): Promise<void> {
    this.ready = false;
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  private acquire(): Promise<() => void> {
    const release = (): void => {
      const next = this.waiting.shift();
      if (next) next();
      else this.slots++;
    };
    if (this.slots > 0) {
      this.slots--;
      return Promise.resolve(release);
    }
    return new Promise((resolve) => this.waiting.push(() => resolve(release)));
  }

  private deps(): WorkerDeps {
    return {
      reconcile: (stack, o) =>
        runStack(this.settings.get(stack.name)!, workerMode(o), {
          ...this.binaries,
          signal: o.signal,
          log: this.log,
          // What ferry must leave as it is (a suspended HelmRelease's objects) is not judged by the live view.
          onDesired: (objects) => o.onDesired(objects.map((d) => ({ id: d.id, object: d.object, ignored: d.suspended === true }))),
        }),
      remoteHead: (stack) => remoteHead(sourceOf(this.settings.get(stack.name)!)),
      acquire: () => this.acquire(),
      liveView: (stack, on) =>
        new LiveView(
          defaultLiveViewOptions({
            access: { kubeconfig: stack.kubeconfig, context: stack.context },
            onDrift: on.drift,
            onState: on.state,
            warn: (m) => this.log.warn({ stack: stack.name, phase: "watch" }, m),
          }),
        ),
      notify: (n) => void notify(this.config.notifications, n, (m) => this.log.warn({ stack: n.stack, phase: "notify" }, m)),
      metrics: this.metrics,
      log: this.log,
      retryDelayMs: this.config.retryDelay,
      maxRetryDelayMs: this.config.maxRetryDelay,
    };
  }
}

/** The pipeline mode of a worker's run: detect, a heal of named objects, or an apply of everything (full) or of what changed and drifted. */
export function workerMode(o: Parameters<WorkerDeps["reconcile"]>[1]): Mode {
  if (o.detectOnly) return { kind: "detect" };
  if (o.targets && !o.unpin) return { kind: "heal", targets: o.targets };
  const run = o.trigger === "drift" || o.trigger === "refresh" ? "drift" : o.trigger === "manual" ? "manual" : "sync";
  if (o.full) return { kind: "apply", run, unpin: o.unpin, scope: "full" };
  return { kind: "apply", run, unpin: o.unpin, scope: "changed", drifted: [...(o.drifted ?? []), ...(o.targets ?? [])] };
}

/** A runner stack's settings for a run: everything comes from the runner's config file. */
function resolveSettings(stack: RunnerStack, env: NodeJS.ProcessEnv): SyncSettings {
  return resolveSyncSettings(
    {
      stack: stack.name,
      repo: stack.repo,
      ref: stack.ref,
      path: stack.path,
      kubeconfig: stack.kubeconfig,
      context: stack.context,
      clusterIdentifier: stack.clusterIdentifier,
      stacksDir: false,
      policy: stack.policy,
    },
    env,
  );
}

function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(":");
  return [listen.slice(0, i) || "127.0.0.1", Number(listen.slice(i + 1))];
}
