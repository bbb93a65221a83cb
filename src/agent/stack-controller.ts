import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { isNotFound } from "../lib/kube-config";
import { Logger } from "../lib/log";
import { resolveSyncSettings, SyncSettings } from "../reconcile/stack-settings";
import { Runner } from "./runner";
import {
  parseStackSpec,
  REQUESTED_AT_ANNOTATION,
  runEvent,
  secretEnv,
  secretsOf,
  STACK_API_VERSION,
  STACK_GROUP,
  STACK_PLURAL,
  STACK_VERSION,
  StackObject,
  stackKey,
  stackStatus,
  StackSpec,
  toRunnerStack,
} from "./stack-object";
import { StackLeases } from "./stack-leases";
import { RunRecord, StackStatus, StackWorker } from "./stack-worker";

/** The settings of the agent in a cluster (`ferry operator`); defaults in {@link defaultControllerOptions}. */
export interface StackControllerOptions {
  /** The agent's own identity (its ServiceAccount in a pod). */
  readonly kubeConfig: k8s.KubeConfig;
  /** The namespace whose Stacks the agent keeps; undefined: every namespace. */
  readonly namespace: string | undefined;
  /** Where the replicas' Leases live (the agent's own namespace). */
  readonly leaseNamespace: string;
  /** This replica's name (the pod's name). */
  readonly identity: string;
  readonly leaseDurationMs: number;
  /** In-cluster targets: the ServiceAccount (in the Stack's namespace) whose token the apply uses, unless the Stack names one. */
  readonly managerServiceAccount: string;
  /** Lifetime of the manager tokens the agent requests; renewed at half of it. */
  readonly managerTokenSeconds: number;
  /** Folder for the files a run reads its credentials from (mode 0700); emptied on stop. */
  readonly secretsDir: string;
  /** After a Stack could not be started (a Secret missing), how long before it is tried again. */
  readonly retryMs: number;
  readonly runner: Runner;
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
}

/** The agent's defaults in a cluster, in one place. */
export function defaultControllerOptions(
  o: Omit<StackControllerOptions, "leaseDurationMs" | "managerServiceAccount" | "managerTokenSeconds" | "retryMs"> &
    Partial<StackControllerOptions>,
): StackControllerOptions {
  return { leaseDurationMs: 15_000, managerServiceAccount: "ferry-manager", managerTokenSeconds: 3600, retryMs: 30_000, ...o };
}

/** A Stack this replica keeps: its worker, the generation it runs, and what to clean up. */
interface Owned {
  readonly worker: StackWorker;
  generation: number;
  spec: StackSpec;
  readonly files: string;
  readonly timers: NodeJS.Timeout[];
  statusTimer?: NodeJS.Timeout;
  lastRun?: RunRecord;
  handledAt?: string;
}

/** A Stack that could not be started, and why (shown on its status until it starts). */
interface Refused {
  readonly reason: string;
  readonly message: string;
  /** The generation of the spec that was refused. */
  readonly generation?: number;
}

const STATUS_DEBOUNCE_MS = 250;
const OWNER_FILE = ".owner";

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Ferry in a cluster: keeps the Stack objects this replica holds the Lease of (see StackLeases),
 * each with a worker of the shared runner; writes each one's kstatus conditions, revisions, drift
 * and recent runs to its status, emits Events, follows spec changes, `spec.suspend` and the
 * `reconcile.ferry.dev/requestedAt` annotation. Credentials come from the Secrets a Stack names;
 * an in-cluster target is applied with a short-lived token of its manager ServiceAccount.
 */
export class StackController {
  private readonly objects = new Map<string, StackObject>();
  private readonly owned = new Map<string, Owned>();
  private readonly starting = new Map<string, Promise<void>>();
  private readonly refused = new Map<string, Refused>();
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private informer: k8s.Informer<StackObject & k8s.KubernetesObject> | undefined;
  private leases: StackLeases | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Marks the credential folders this replica wrote (the path is the same on every replica). */
  private readonly mark: string;

  constructor(private readonly o: StackControllerOptions) {
    this.mark = `${o.identity} ${randomBytes(8).toString("hex")}`;
    this.custom = o.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.core = o.kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  /** Lists and watches the Stacks, then joins the replicas on the Leases. */
  async start(): Promise<void> {
    fs.mkdirSync(this.o.secretsDir, { recursive: true, mode: 0o700 });
    const ns = this.o.namespace;
    const listPath = ns
      ? `/apis/${STACK_GROUP}/${STACK_VERSION}/namespaces/${ns}/${STACK_PLURAL}`
      : `/apis/${STACK_GROUP}/${STACK_VERSION}/${STACK_PLURAL}`;
    const list = (): Promise<k8s.KubernetesListObject<StackObject & k8s.KubernetesObject>> =>
      (ns
        ? this.custom.listNamespacedCustomObject({ group: STACK_GROUP, version: STACK_VERSION, namespace: ns, plural: STACK_PLURAL })
        : this.custom.listClusterCustomObject({ group: STACK_GROUP, version: STACK_VERSION, plural: STACK_PLURAL })) as Promise<
        k8s.KubernetesListObject<StackObject & k8s.KubernetesObject>
      >;
    const informer = k8s.makeInformer(this.o.kubeConfig, listPath, list);
    this.informer = informer;
    informer.on("add", (obj) => this.observed(obj));
    informer.on("update", (obj) => this.observed(obj));
    informer.on("delete", (obj) => this.gone(obj));
    informer.on("error", (err: unknown) => {
      if (this.stopped) return;
      this.o.log.warn({ phase: "watch", err: errorText(err) }, "watch of Stack objects failed; starting it again");
      setTimeout(() => void informer.start().catch(() => undefined), 2000).unref();
    });
    await informer.start();
    this.leases = new StackLeases({
      kubeConfig: this.o.kubeConfig,
      namespace: this.o.leaseNamespace,
      identity: this.o.identity,
      leaseDurationMs: this.o.leaseDurationMs,
      stacks: () => [...this.objects.keys()],
      onAcquired: (key) => this.acquired(key),
      onLost: (key) => this.lost(key),
      log: this.o.log,
    });
    await this.leases.start();
    this.retryTimer = setInterval(() => this.retryRefused(), this.o.retryMs);
  }

  /** Gives every Stack back (each current run ends cleanly first) and leaves the replicas. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearInterval(this.retryTimer);
    await this.informer?.stop();
    await this.leases?.stop();
    await Promise.all([...this.owned.keys()].map((k) => this.lost(k)));
  }

  /** `ferry suspend|resume` through the API: the choice is kept in the Stack's spec.suspend. */
  private async persistSuspend(key: string, suspended: boolean): Promise<void> {
    const obj = this.objects.get(key);
    if (!obj) return;
    await this.custom.patchNamespacedCustomObject(
      { ...this.ref(obj), body: { spec: { suspend: suspended } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  }

  private ref(obj: StackObject): { group: string; version: string; plural: string; namespace: string; name: string } {
    return { group: STACK_GROUP, version: STACK_VERSION, plural: STACK_PLURAL, namespace: obj.metadata.namespace, name: obj.metadata.name };
  }

  private observed(obj: StackObject): void {
    const key = stackKey(obj);
    this.objects.set(key, obj);
    const owned = this.owned.get(key);
    if (!owned) {
      // A refused Stack is tried again when its spec changed (its own status writes change nothing), else on the retry timer.
      const refused = this.refused.get(key);
      if (refused && refused.generation !== obj.metadata.generation && this.leases?.owned().has(key)) this.retry(key);
      return;
    }
    const generation = obj.metadata.generation ?? 0;
    if (generation !== owned.generation) {
      let spec: StackSpec | undefined;
      try {
        spec = parseStackSpec(obj);
      } catch {
        spec = undefined;
      }
      // Only spec.suspend moved: follow it without a restart.
      if (spec && JSON.stringify({ ...spec, suspend: owned.spec.suspend }) === JSON.stringify(owned.spec)) {
        // In place: a status write already scheduled belongs to this same record.
        owned.generation = generation;
        owned.spec = spec;
        owned.worker.followSuspended(spec.suspend);
        this.scheduleStatus(key);
      } else {
        this.o.log.info({ stack: key, phase: "spec", generation }, "the Stack's spec changed: starting its worker again");
        void this.restart(key);
        return;
      }
    }
    const requested = obj.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const current = owned;
    if (requested && requested !== current.handledAt && requested !== obj.status?.lastHandledReconcileAt) {
      current.handledAt = requested;
      this.o.log.info({ stack: key, phase: "request", requestedAt: requested }, "reconcile requested by annotation");
      current.worker.trigger("manual");
      this.scheduleStatus(key);
    }
  }

  private gone(obj: StackObject): void {
    const key = stackKey(obj);
    this.objects.delete(key);
    this.refused.delete(key);
    // The lease is released by StackLeases (the stack is no longer listed); stop its worker now.
    if (this.owned.has(key)) void this.lost(key);
  }

  private async restart(key: string): Promise<void> {
    await this.lost(key);
    if (this.leases?.owned().has(key)) this.acquired(key);
  }

  private retry(key: string): void {
    this.refused.delete(key);
    this.acquired(key);
  }

  private retryRefused(): void {
    for (const key of [...this.refused.keys()]) if (this.leases?.owned().has(key) && !this.stopped) this.retry(key);
  }

  private acquired(key: string): void {
    if (this.stopped || this.owned.has(key) || this.starting.has(key)) return;
    const start = this.startStack(key).finally(() => this.starting.delete(key));
    this.starting.set(key, start);
  }

  private async startStack(key: string): Promise<void> {
    const obj = this.objects.get(key);
    if (!obj) return;
    const dir = path.join(this.o.secretsDir, key);
    let spec: StackSpec;
    let settings: SyncSettings;
    const timers: NodeJS.Timeout[] = [];
    try {
      spec = parseStackSpec(obj);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(dir, OWNER_FILE), this.mark, { mode: 0o600 });
      settings = await this.settingsOf(obj, spec, dir, timers);
    } catch (err) {
      for (const t of timers) clearInterval(t);
      const refused = { ...refusal(err), generation: obj.metadata.generation };
      this.refused.set(key, refused);
      this.o.log.warn({ stack: key, phase: "start", reason: refused.reason }, refused.message);
      await this.writeStatus(obj, {
        name: key,
        mode: "enforce",
        condition: "Stalled",
        reason: refused.reason,
        message: refused.message,
        drift: { detected: false, objects: [] },
        history: obj.status?.history ? [...obj.status.history] : [],
        lastAppliedRevision: obj.status?.lastAppliedRevision,
        lastAttemptedRevision: obj.status?.lastAttemptedRevision,
      });
      await this.event(obj, "Warning", refused.reason, refused.message);
      return;
    }
    if (this.stopped || !this.leases?.owned().has(key) || this.owned.has(key)) {
      for (const t of timers) clearInterval(t);
      return;
    }
    const stack = toRunnerStack(obj, spec, { kubeconfig: settings.kubeconfig! });
    const worker = this.o.runner.addStack(
      stack,
      settings,
      {
        statusChanged: (_status, run) => {
          const current = this.owned.get(key);
          if (!current) return;
          if (run) current.lastRun = run;
          this.scheduleStatus(key);
        },
        suspendRequested: (_s, suspended) =>
          void this.persistSuspend(key, suspended).catch((err: unknown) =>
            this.o.log.warn({ stack: key, phase: "suspend", err: errorText(err) }, "could not keep spec.suspend on the Stack"),
          ),
      },
      // What the replica that kept the stack before recorded: the history and revisions go on.
      obj.status && {
        history: obj.status.history ?? [],
        lastAppliedRevision: obj.status.lastAppliedRevision,
        lastAttemptedRevision: obj.status.lastAttemptedRevision,
      },
    );
    this.owned.set(key, {
      worker,
      generation: obj.metadata.generation ?? 0,
      spec,
      files: dir,
      timers,
      handledAt: obj.metadata.annotations?.[REQUESTED_AT_ANNOTATION],
    });
    this.o.log.info({ stack: key, phase: "own", replica: this.o.identity }, "this replica keeps the stack");
    this.scheduleStatus(key);
    // The object changed while its credentials were read: follow it now.
    const latest = this.objects.get(key);
    if (latest && latest !== obj) this.observed(latest);
  }

  /** Stops a stack's worker (its run ends cleanly first) and removes its credential files. */
  private async lost(key: string): Promise<void> {
    await this.starting.get(key);
    const owned = this.owned.get(key);
    if (!owned) return;
    this.owned.delete(key);
    for (const t of owned.timers) clearInterval(t);
    if (owned.statusTimer) clearTimeout(owned.statusTimer);
    await this.o.runner.removeStack(key);
    // On a shared disk another replica may have taken the stack meanwhile: its files stay.
    if (readIfExists(path.join(owned.files, OWNER_FILE)) === this.mark) fs.rmSync(owned.files, { recursive: true, force: true });
    this.o.log.info({ stack: key, phase: "disown", replica: this.o.identity }, "this replica no longer keeps the stack");
  }

  /** A stack's run settings: its Secrets written to files in `dir`, the target's kubeconfig. */
  private async settingsOf(obj: StackObject, spec: StackSpec, dir: string, timers: NodeJS.Timeout[]): Promise<SyncSettings> {
    const ns = obj.metadata.namespace;
    const refs = secretsOf(spec);
    const write = (name: string, content: string): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, content, { mode: 0o600 });
      return file;
    };
    let git: Parameters<typeof secretEnv>[0];
    if (refs.git) {
      const data = await this.secret(obj, refs.git);
      git = {
        identityFile: data.identity !== undefined ? write("identity", ensureNewline(data.identity)) : undefined,
        knownHostsFile: data.known_hosts !== undefined ? write("known_hosts", data.known_hosts) : undefined,
        bearerToken: data.bearerToken,
        password: data.password,
      };
    }
    let passphrase: string | undefined;
    if (refs.passphrase) {
      const data = await this.secret(obj, refs.passphrase.name);
      passphrase = data[refs.passphrase.key];
      if (passphrase === undefined)
        throw new StartRefused(
          "SecretKeyMissing",
          `Secret ${ns}/${refs.passphrase.name} has no key "${refs.passphrase.key}" (spec.passphraseSecretRef)`,
        );
    } else if (this.o.env.PULUMI_CONFIG_PASSPHRASE === undefined && !this.o.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
      throw new StartRefused(
        "NoPassphrase",
        `Stack ${stackKey(obj)} names no state passphrase: every replica must read the same one; set spec.passphraseSecretRef (a Secret with key "passphrase") or PULUMI_CONFIG_PASSPHRASE on the agent`,
      );
    }
    let kubeconfig: string;
    if (refs.kubeconfig) {
      const data = await this.secret(obj, refs.kubeconfig.name);
      const content = data[refs.kubeconfig.key];
      if (content === undefined)
        throw new StartRefused(
          "SecretKeyMissing",
          `Secret ${ns}/${refs.kubeconfig.name} has no key "${refs.kubeconfig.key}" (spec.cluster.kubeconfigSecretRef)`,
        );
      kubeconfig = write("kubeconfig", content);
    } else {
      const account = spec.serviceAccountName ?? this.o.managerServiceAccount;
      const tokenFile = path.join(dir, "token");
      await this.managerToken(ns, account, tokenFile);
      // Renewed at half its life: the provider, kubectl and the live view re-read a token file.
      const renew = setInterval(
        () =>
          void this.managerToken(ns, account, tokenFile).catch((err: unknown) =>
            this.o.log.warn({ stack: stackKey(obj), phase: "token", err: errorText(err) }, "could not renew the manager token"),
          ),
        (this.o.managerTokenSeconds * 1000) / 2,
      );
      renew.unref();
      timers.push(renew);
      kubeconfig = write("kubeconfig", managerKubeconfig(this.o.kubeConfig, tokenFile));
    }
    return resolveSyncSettings(
      {
        stack: stackKey(obj),
        repo: spec.repo,
        ref: spec.ref,
        path: spec.path,
        kubeconfig,
        context: refs.kubeconfig ? spec.cluster?.context : undefined,
        clusterIdentifier: spec.clusterIdentifier ?? stackKey(obj),
        stacksDir: false,
        policy: spec.policy,
      },
      { ...this.o.env, ...secretEnv(git, passphrase) },
    );
  }

  /** The data of a Secret in the Stack's namespace, decoded; a missing or forbidden one refuses the start with the fix. */
  private async secret(obj: StackObject, name: string): Promise<Record<string, string>> {
    const ns = obj.metadata.namespace;
    try {
      const s = await this.core.readNamespacedSecret({ name, namespace: ns });
      return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
    } catch (err) {
      if (isNotFound(err))
        throw new StartRefused("SecretNotFound", `Secret ${ns}/${name} named by Stack ${stackKey(obj)} does not exist; create it`);
      if (err instanceof k8s.ApiException && err.code === 403)
        throw new StartRefused(
          "SecretForbidden",
          `ferry may not read Secret ${ns}/${name} named by Stack ${stackKey(obj)}; add it to the chart's secretNames`,
        );
      throw err;
    }
  }

  private async managerToken(namespace: string, account: string, file: string): Promise<void> {
    let token: string;
    try {
      const answer = await this.core.createNamespacedServiceAccountToken({
        name: account,
        namespace,
        body: { spec: { audiences: [], expirationSeconds: this.o.managerTokenSeconds } },
      });
      token = answer.status?.token ?? "";
    } catch (err) {
      if (err instanceof k8s.ApiException && (err.code === 403 || err.code === 404))
        throw new StartRefused(
          "ManagerTokenRefused",
          `cannot get a token of ServiceAccount ${namespace}/${account} (${err.code}): create it and let ferry request its tokens (the chart's manager.serviceAccountName), or set spec.serviceAccountName`,
        );
      throw err;
    }
    const tmp = `${file}.new`;
    fs.writeFileSync(tmp, token, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  private scheduleStatus(key: string): void {
    const owned = this.owned.get(key);
    if (!owned || owned.statusTimer) return;
    owned.statusTimer = setTimeout(() => {
      owned.statusTimer = undefined;
      const obj = this.objects.get(key);
      if (!obj || this.owned.get(key) !== owned) return;
      const run = owned.lastRun;
      owned.lastRun = undefined;
      void this.writeStatus(obj, owned.worker.status, owned.generation, owned.handledAt).then(async () => {
        const e = run && runEvent(run);
        if (e) await this.event(obj, e.type, e.reason, e.message);
      });
    }, STATUS_DEBOUNCE_MS);
  }

  private async writeStatus(
    obj: StackObject,
    worker: StackStatus,
    generation = obj.metadata.generation ?? 0,
    handledAt?: string,
  ): Promise<void> {
    const status = stackStatus(obj, worker, this.o.identity, generation, new Date());
    if (handledAt) status.lastHandledReconcileAt = handledAt;
    // A merge patch: null removes what the worker no longer has (a lifted pin).
    const body = { status: Object.fromEntries(Object.entries(status).map(([k, v]) => [k, v ?? null])) };
    try {
      const written = (await this.custom.patchNamespacedCustomObjectStatus(
        { ...this.ref(obj), body },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      )) as StackObject;
      // Keep the conditions' transition times for the next write, before the watch brings the object.
      const key = stackKey(obj);
      const known = this.objects.get(key);
      if (known && known.metadata.uid === written.metadata.uid) this.objects.set(key, { ...known, status: written.status });
    } catch (err) {
      if (!isNotFound(err))
        this.o.log.warn({ stack: stackKey(obj), phase: "status", err: errorText(err) }, "could not write the Stack's status");
    }
  }

  private async event(obj: StackObject, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace: obj.metadata.namespace,
        body: {
          metadata: { generateName: `${obj.metadata.name}.`, namespace: obj.metadata.namespace },
          involvedObject: {
            apiVersion: STACK_API_VERSION,
            kind: "Stack",
            name: obj.metadata.name,
            namespace: obj.metadata.namespace,
            uid: obj.metadata.uid,
            resourceVersion: obj.metadata.resourceVersion,
          },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: "ferry" },
          reportingComponent: "ferry.dev/agent",
          reportingInstance: this.o.identity,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.o.log.warn({ stack: stackKey(obj), phase: "event", err: errorText(err) }, "could not record an Event on the Stack");
    }
  }
}

/** A Stack that cannot start until its object or Secrets change: the reason its status shows. */
class StartRefused extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function refusal(err: unknown): Refused {
  if (err instanceof StartRefused) return { reason: err.reason, message: err.message };
  return { reason: "InvalidSpec", message: errorText(err) };
}

function errorText(err: unknown): string {
  if (err instanceof k8s.ApiException) return `${err.code}: ${typeof err.body === "string" ? err.body.slice(0, 300) : ""}`;
  return err instanceof Error ? err.message : String(err);
}

function ensureNewline(s: string): string {
  return s.endsWith("\n") ? s : `${s}\n`;
}

/** A kubeconfig for the manager ServiceAccount: the agent's own API server and CA, the token from a file ferry renews. */
export function managerKubeconfig(agent: k8s.KubeConfig, tokenFile: string): string {
  const cluster = agent.getCurrentCluster();
  if (!cluster) throw new Error("the agent's kubeconfig names no cluster");
  const ca = cluster.caData ?? (cluster.caFile ? fs.readFileSync(cluster.caFile).toString("base64") : undefined);
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "target",
        cluster: {
          server: cluster.server,
          ...(ca ? { "certificate-authority-data": ca } : {}),
          ...(cluster.skipTLSVerify ? { "insecure-skip-tls-verify": true } : {}),
        },
      },
    ],
    users: [{ name: "manager", user: { tokenFile } }],
    contexts: [{ name: "target", context: { cluster: "target", user: "manager" } }],
    "current-context": "target",
  });
}
