import { z } from "zod";
import { parseDuration } from "../lib/duration";
import { PolicySchema, RunnerStack } from "./runner-config";
import { RunRecord, StackStatus } from "./stack-worker";

/** The Stack custom resource's group, version and plural (charts/ferry/crds/stacks.ferry.dev.yaml). */
export const STACK_GROUP = "ferry.dev";
export const STACK_VERSION = "v1alpha1";
export const STACK_PLURAL = "stacks";
export const STACK_API_VERSION = `${STACK_GROUP}/${STACK_VERSION}`;

/** Annotation that asks for a run now (the value is any new string, e.g. a timestamp), as Flux's `reconcile.fluxcd.io/requestedAt`. */
export const REQUESTED_AT_ANNOTATION = "reconcile.ferry.dev/requestedAt";

/** How many runs the object's status keeps (the agent keeps more in memory). */
export const STATUS_HISTORY = 5;

const duration = z.string().regex(/^\d+(ms|s|m|h)$/, "a duration like 30s, 5m or 1h");
const secretRef = z.object({ name: z.string().min(1), key: z.string().min(1).optional() });

/** The spec of a Stack object, with the CRD's defaults applied again (an object written before a default was added). */
const StackSpecSchema = z.object({
  repo: z.string().min(1),
  ref: z.string().min(1).optional(),
  path: z.string().min(1),
  suspend: z.boolean().default(false),
  mode: z.enum(["enforce", "detect"]).default("enforce"),
  interval: duration.default("1m"),
  driftInterval: duration.default("5m"),
  fullRefreshInterval: duration.default("1h"),
  watch: z.boolean().default(true),
  cluster: z.object({ kubeconfigSecretRef: secretRef.optional(), context: z.string().min(1).optional() }).optional(),
  serviceAccountName: z.string().min(1).optional(),
  clusterIdentifier: z.string().min(1).optional(),
  gitSecretRef: z.object({ name: z.string().min(1) }).optional(),
  passphraseSecretRef: secretRef.optional(),
  policy: PolicySchema.default({}),
});

/** A validated Stack spec. */
export type StackSpec = z.infer<typeof StackSpecSchema>;

/** One kstatus condition, as the object's status carries it. */
export interface Condition {
  readonly type: "Ready" | "Reconciling" | "Stalled";
  readonly status: "True" | "False" | "Unknown";
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
  readonly reason: string;
  readonly message: string;
}

/** The part of a Stack object the agent reads. */
export interface StackObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid?: string;
    readonly generation?: number;
    readonly resourceVersion?: string;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec?: unknown;
  readonly status?: {
    readonly conditions?: readonly Condition[];
    readonly history?: readonly RunRecord[];
    readonly lastAppliedRevision?: string;
    readonly lastAttemptedRevision?: string;
    readonly lastHandledReconcileAt?: string;
    readonly [k: string]: unknown;
  };
}

/** The agent's name of a Stack object (its worker, its Pulumi stack): `<namespace>.<name>` (a namespace has no dots). */
export function stackKey(o: { readonly metadata: { readonly namespace: string; readonly name: string } }): string {
  return `${o.metadata.namespace}.${o.metadata.name}`;
}

/** The namespace and name behind a stack key, or undefined for a name that is not one. */
export function parseStackKey(key: string): { namespace: string; name: string } | undefined {
  const i = key.indexOf(".");
  if (i <= 0 || i === key.length - 1) return undefined;
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Validates a Stack's spec; the error names the object and each wrong field. */
export function parseStackSpec(o: StackObject): StackSpec {
  const parsed = StackSpecSchema.safeParse(o.spec ?? {});
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((i) => `spec.${i.path.join(".")}: ${i.message}`).join("; ");
  throw new Error(
    `Stack ${stackKey(o)}: invalid spec: ${fields}; fix the object (kubectl edit stack ${o.metadata.name} -n ${o.metadata.namespace})`,
  );
}

/** Where the agent put a stack's credentials for its run (files it wrote from the Secrets). */
export interface StackFiles {
  /** Kubeconfig of the target cluster: the manager's token in-cluster, or the kubeconfig Secret's content. */
  readonly kubeconfig: string;
}

/** The worker's stack of a Stack object: what a runner config file entry says. Pure. */
export function toRunnerStack(o: StackObject, spec: StackSpec, files: StackFiles): RunnerStack {
  return {
    name: stackKey(o),
    repo: spec.repo,
    ref: spec.ref,
    path: spec.path,
    kubeconfig: files.kubeconfig,
    context: spec.cluster?.kubeconfigSecretRef ? spec.cluster.context : undefined,
    clusterIdentifier: spec.clusterIdentifier ?? stackKey(o),
    mode: spec.suspend ? "suspended" : spec.mode,
    pollInterval: parseDuration(spec.interval),
    driftInterval: parseDuration(spec.driftInterval),
    watch: spec.watch,
    fullRefreshInterval: parseDuration(spec.fullRefreshInterval),
    policy: spec.policy,
  };
}

/** The Secrets a Stack names, each with the key read from it (git credentials: every key). */
export function secretsOf(spec: StackSpec): {
  git?: string;
  passphrase?: { name: string; key: string };
  kubeconfig?: { name: string; key: string };
} {
  return {
    git: spec.gitSecretRef?.name,
    passphrase: spec.passphraseSecretRef && { name: spec.passphraseSecretRef.name, key: spec.passphraseSecretRef.key ?? "passphrase" },
    kubeconfig: spec.cluster?.kubeconfigSecretRef && {
      name: spec.cluster.kubeconfigSecretRef.name,
      key: spec.cluster.kubeconfigSecretRef.key ?? "value",
    },
  };
}

/**
 * The environment a stack's runs read their secrets from (as `ferry sync`): a git Secret in Flux's
 * shape (`identity` + `known_hosts`, `bearerToken`, or `username` + `password`), already written to
 * files by the caller, and the state passphrase. Pure.
 */
export function secretEnv(
  git: { identityFile?: string; knownHostsFile?: string; bearerToken?: string; password?: string } | undefined,
  passphrase: string | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  if (git?.identityFile) env.FERRY_GIT_SSH_KEY_FILE = git.identityFile;
  if (git?.knownHostsFile) env.FERRY_GIT_KNOWN_HOSTS_FILE = git.knownHostsFile;
  const token = git?.bearerToken ?? git?.password;
  if (token) env.FERRY_GIT_TOKEN = token;
  if (passphrase !== undefined) env.PULUMI_CONFIG_PASSPHRASE = passphrase;
  return env;
}

/**
 * The kstatus conditions of a stack now: Reconciling while a run is under way or none finished yet
 * (Ready Unknown), Ready True after a run succeeded, Stalled + Ready False after a failure. Abnormal
 * conditions are left out when false, as kstatus expects. A condition that keeps its status keeps its
 * lastTransitionTime. A suspended stack keeps the conditions it had (undefined). Pure.
 */
export function stackConditions(
  status: Pick<StackStatus, "condition" | "reason" | "message" | "lastAttemptedRevision" | "lastAppliedRevision">,
  previous: readonly Condition[],
  generation: number,
  now: Date,
): Condition[] | undefined {
  const at = now.toISOString();
  const make = (type: Condition["type"], s: Condition["status"], reason: string, message: string): Condition => {
    const before = previous.find((c) => c.type === type);
    return {
      type,
      status: s,
      observedGeneration: generation,
      lastTransitionTime: before && before.status === s ? before.lastTransitionTime : at,
      reason,
      message,
    };
  };
  const revision = status.lastAttemptedRevision ? ` ${status.lastAttemptedRevision.slice(0, 12)}` : "";
  switch (status.condition) {
    case "Suspended":
      return undefined;
    case "Pending":
    case "Reconciling": {
      const message = `reconciling${revision}`;
      return [make("Ready", "Unknown", "Progressing", message), make("Reconciling", "True", "Progressing", message)];
    }
    case "Ready":
      return [
        make("Ready", "True", status.reason ?? "ReconciliationSucceeded", `Applied revision ${status.lastAppliedRevision ?? "(none)"}`),
      ];
    case "Stalled": {
      const reason = status.reason ?? "Failed";
      const message = status.message || reason;
      return [make("Ready", "False", reason, message), make("Stalled", "True", reason, message)];
    }
  }
}

/** The status subresource of a Stack: conditions, revisions, drift and the recent runs. Pure. */
export function stackStatus(o: StackObject, worker: StackStatus, owner: string, generation: number, now: Date): Record<string, unknown> {
  const conditions = stackConditions(worker, o.status?.conditions ?? [], generation, now) ?? o.status?.conditions ?? [];
  return {
    observedGeneration: generation,
    owner,
    conditions,
    lastAppliedRevision: worker.lastAppliedRevision,
    lastAttemptedRevision: worker.lastAttemptedRevision,
    lastHandledReconcileAt: o.status?.lastHandledReconcileAt,
    objectsManaged: worker.objectsManaged,
    pinned: worker.pinned,
    drift: worker.drift,
    history: worker.history.slice(0, STATUS_HISTORY),
  };
}

/** The Kubernetes Event of a finished run: Normal on success, Warning on failure; undefined for a run that changed nothing. Pure. */
export function runEvent(run: RunRecord): { type: "Normal" | "Warning"; reason: string; message: string } | undefined {
  const rev = run.revision ? ` revision ${run.revision.slice(0, 12)}` : "";
  if (run.result === "Failed")
    return { type: "Warning", reason: run.reason ?? "ReconciliationFailed", message: `${run.message ?? "run failed"}${rev}` };
  const c = run.changes;
  const changed = c ? c.created + c.updated + c.replaced + c.deleted : 0;
  if (changed === 0) return undefined;
  const counts = c ? `${c.created} created, ${c.updated} updated, ${c.replaced} replaced, ${c.deleted} deleted` : "";
  return { type: "Normal", reason: "ReconciliationSucceeded", message: `${run.trigger} run applied${rev}: ${counts}` };
}
