import { DesiredState } from "../desired-state/desired-state";
import { HelmHook } from "../desired-state/helm-hooks";
import { KubeObject, ObjectId } from "../desired-state/object-id";
import { ProgramInput } from "../desired-state/program-input";
import { Revision } from "../source/git-source";
import { UpdateRecord } from "./history";
import { Pin } from "./pin";

/** The config repo of a stack, as a run sees it. */
export interface Source {
  /** The commit the followed ref points to now, asked of the remote without fetching. */
  head(): Promise<string>;
  /** Fetches and checks out `ref` (the followed ref when undefined) into the run's checkout. */
  checkout(ref: string | undefined): Promise<Revision>;
  /** The paths the change `base...head` touches, in the run's checkout. */
  changedPaths(base: string, head: string): Promise<string[]>;
}

/**
 * Builds the desired state of the run's checkout: load, render, identify. Bad input throws
 * `DesiredStateError` (file and line) or `GuardError` (an empty or missing folder).
 */
export interface Renderer {
  build(): Promise<DesiredState>;
  /**
   * Charts read the live cluster while they render (Helm's `lookup`): what they render may change
   * once the objects an update created exist, so an update that created objects builds again.
   */
  readonly readsCluster?: boolean;
}

/** Which object to read: its API version, kind, name and namespace (none when cluster-scoped). */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

/** What the live cluster serves: the checks the engine's own dry run skips, and the objects' live state. */
export interface Cluster {
  /** Whether the cluster serves this kind at this API version. */
  serves(apiVersion: string, kind: string): Promise<boolean>;
  /**
   * What tells this cluster (and its etcd) from another: the uid of its kube-system Namespace, new
   * when the cluster was rebuilt or its etcd lost.
   */
  uid(): Promise<string | undefined>;
  /** Whether a namespace exists. */
  hasNamespace(name: string): Promise<boolean>;
  /**
   * A server-side apply of the object in a dry run (nothing is persisted): the API server's refusal,
   * or undefined. `impersonate`: the user it is applied as (`system:serviceaccount:<ns>:<name>`),
   * so the cluster's RBAC for that account decides.
   */
  dryRun(object: KubeObject, options?: { readonly impersonate?: string }): Promise<string | undefined>;
  /**
   * The resourceVersion and generation of every live object of these kinds, read with one list per
   * API version, kind and namespace (the objects' metadata only is compared), keyed by
   * `resourceName`; a kind that cannot be listed is left out of the answer.
   */
  observe(kinds: readonly { readonly apiVersion: string; readonly kind: string; readonly namespace?: string }[]): Promise<{
    readonly seen: ReadonlyMap<string, Observed>;
    readonly unlisted: readonly string[];
  }>;
  /** The live object, status included, or undefined when it is not there. */
  read(ref: ObjectRef): Promise<Readonly<Record<string, unknown>> | undefined>;
  /**
   * Runs one event's hooks of a release as Helm does (in order, delete policies, wait for a Job or
   * Pod until `timeoutMs`): the failure, naming the hook, or undefined. `namespaces`: the Namespaces
   * Git declares, by name; a hook's is created first when missing (the update then takes it over). A
   * hook with a `serviceAccount` (its release's) is run impersonating it. See `helm-hook-runner.ts`.
   */
  runHooks(
    hooks: readonly HelmHook[],
    options: { readonly timeoutMs: number; readonly signal?: AbortSignal; readonly namespaces?: ReadonlyMap<string, KubeObject> },
  ): Promise<string | undefined>;
}

/** What marks a change of a live object: its resourceVersion, and its generation (spec changes) when it has one. */
export interface Observed {
  readonly resourceVersion?: string;
  readonly generation?: number;
}

/** One Kubernetes object of the stack's state. */
export interface ManagedObject {
  readonly urn: string;
  readonly id: ObjectId;
  /** The object as the program last declared it (secret values revealed). */
  readonly inputs?: Readonly<Record<string, unknown>>;
  /** Its inputs held secret values. */
  readonly secret?: boolean;
  /** The live object's version when the engine last read or wrote it (its recorded outputs). */
  readonly observed?: Observed;
}

/** What a run needs to know of a stack's state, read once. */
export interface StackSnapshot {
  readonly objects: readonly ManagedObject[];
  /** Creates of Kubernetes objects an interrupted update left pending. */
  readonly pendingCreates: number;
  /** The pin `ferry rollback` set, carried by the stack's outputs. */
  readonly pin?: Pin;
  /** The cluster the last update applied to ({@link Cluster.uid}), carried by the stack's outputs. */
  readonly clusterUid?: string;
  /** Each unit's hooks' digest as the last update recorded it (`hookDigests`), carried by the stack's outputs. */
  readonly hooks?: Readonly<Record<string, string>>;
}

/** What the engine does to one resource (Pulumi's step operations). */
export type EngineOp =
  | "same"
  | "create"
  | "update"
  | "replace"
  | "delete"
  | "create-replacement"
  | "delete-replaced"
  | "read"
  | "read-replacement"
  | "refresh"
  | "import"
  | "import-replacement"
  | "discard"
  | "discard-replaced"
  | "remove-pending-replace";

/** One step the engine planned or performed. */
export interface EngineStep {
  readonly op: EngineOp;
  readonly urn: string;
  readonly type: string;
  /** Planned steps: the changed property paths and how (`add`, `update`, `delete`, `...-replace`). */
  readonly detailedDiff?: Readonly<Record<string, { kind?: string; inputDiff?: boolean }>>;
  readonly diffs?: readonly string[];
  /** Planned steps: the object as the state has it and as the program declares it; secrets show as "[secret]". */
  readonly oldInputs?: Readonly<Record<string, unknown>>;
  readonly newInputs?: Readonly<Record<string, unknown>>;
}

/** An error the engine reported, on one resource when `urn` is set. */
export interface EngineDiagnostic {
  readonly urn?: string;
  readonly message: string;
}

/**
 * A plan or an update that failed; `locked` when another process is updating the stack, `vetoed`
 * (the reason) when the caller's veto aborted the update.
 */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly diagnostics: readonly EngineDiagnostic[],
    readonly locked: boolean,
    options?: { cause?: unknown; vetoed?: string },
  ) {
    super(message, options);
    this.name = "EngineError";
    this.vetoed = options?.vetoed;
  }

  readonly vetoed?: string;
}

/** The Pulumi stack of a run. */
export interface Engine {
  /**
   * Opens the stack, recovering first from a crashed run; says what it recovered. Only runs that write
   * create a stack the backend does not have; the others plan against an empty state, or fail.
   */
  open(onRecovered: (what: string) => void): Promise<StackSnapshot>;
  /** Resolves creates an interrupted update left pending; returns the snapshot after. */
  resolvePendingCreates(): Promise<StackSnapshot>;
  /** What an update would do (a preview); nothing is written. Throws {@link EngineError}. */
  plan(input: ProgramInput, options: { readonly refresh: boolean; readonly signal?: AbortSignal }): Promise<EngineStep[]>;
  /**
   * Updates the stack, refreshing first. With `targets`, only those objects (URNs of state entries;
   * `creates`: of objects the state does not hold yet) are refreshed and updated (with what depends
   * on them when `dependents`), and the stack's frame — its outputs, its providers — with them; the
   * engine leaves every other entry as the state has it. Throws
   * {@link EngineError}.
   */
  apply(
    input: ProgramInput,
    options: {
      readonly message: string;
      readonly revision: Revision;
      readonly targets?: { readonly urns: readonly string[]; readonly creates?: readonly string[]; readonly dependents: boolean };
      readonly signal?: AbortSignal;
      /** Asked before each step starts: a reason aborts the update before that step. */
      readonly veto?: (step: EngineStep) => string | undefined;
      readonly onStep: (step: EngineStep) => void;
    },
  ): Promise<void>;
  /** The stack's whole update history, newest first. */
  history(): Promise<UpdateRecord[]>;
  /** The URN the program registers an object under. */
  urnOf(id: ObjectId): string;
}

/** The lock that gives one run at a time a stack's checkout, workspace and program input, across processes. */
export interface StackLock {
  /**
   * Takes the lock, waiting up to `waitMs` (telling `onWait` once, in a line naming the holder);
   * throws {@link LockedError} when it is still held then. Resolves with the release.
   */
  acquire(options: { readonly waitMs: number; readonly onWait?: (line: string) => void }): Promise<() => Promise<void>>;
}

/** The stack is being reconciled by another run. */
export class LockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LockedError";
  }
}

/** Everything the pipeline does I/O through. */
export interface Ports {
  readonly source: Source;
  readonly renderer: Renderer;
  readonly cluster: Cluster;
  readonly engine: Engine;
  readonly lock: StackLock;
}
