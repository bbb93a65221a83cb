import { displayName, ObjectId, resourceName } from "../desired-state/object-id";
import { Logger } from "../lib/log";
import { backoffDelay } from "./backoff";
import { ChangeCounts, hasChanges } from "../reconcile/change-summary";
import { LiveViewState, RunEnd, WatchedObject } from "./live-view";
import { Notification } from "./notifier";
import { Pin } from "../reconcile/pin";
import { ReconcileResult } from "../reconcile/reconcile-result";
import { RunnerMetrics } from "./runner-metrics";
import { RunnerStack } from "./runner-config";
import { planRun, Trigger } from "./run-plan";

export type { Trigger } from "./run-plan";

/** One past run, as `ferry status` and the API show it. */
export interface RunRecord {
  /** The first trigger of the run; `triggers` has all that were coalesced into it. */
  readonly trigger: Trigger;
  readonly triggers: readonly Trigger[];
  readonly revision?: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly result: "Succeeded" | "Failed";
  readonly reason?: string;
  readonly message?: string;
  readonly changes?: ChangeCounts;
  readonly drift?: boolean;
  /** How much of the stack the run's update touched (see ReconcileResult.scope). */
  readonly scope?: ReconcileResult["scope"];
}

/** The state of one stack, in the vocabulary of Flux and Argo CD. */
export interface StackStatus {
  readonly name: string;
  mode: RunnerStack["mode"];
  condition: "Ready" | "Reconciling" | "Stalled" | "Suspended" | "Pending";
  reason?: string;
  message?: string;
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  drift: { detected: boolean; at?: string; objects: string[] };
  objectsManaged?: number;
  /** Held at a rolled-back commit: the runner applies it instead of the branch head until resumed. */
  pinned?: Pin;
  /** The live view (absent with `watch: false`, while suspended, and before the first run built the desired state). */
  liveView?: LiveViewState;
  history: RunRecord[];
}

/** What a worker uses of its stack's live view (see LiveView). */
export interface LiveViewPort {
  runStarted(): void;
  prepare(objects: readonly WatchedObject[]): void;
  runEnded(end: RunEnd): void;
  drifted(): ObjectId[];
  synced(): boolean;
  stop(): void;
}

/** What a worker needs from the runner: the I/O, injected so the scheduling can be tested alone. */
export interface WorkerDeps {
  reconcile(
    stack: RunnerStack,
    options: {
      trigger: Trigger;
      detectOnly: boolean;
      targets?: readonly ObjectId[];
      /** Refresh and update every object; otherwise only what changed in Git, plus `drifted`. */
      full: boolean;
      drifted?: readonly ObjectId[];
      /** Lift a rollback's pin and follow the branch again. */
      unpin: boolean;
      signal: AbortSignal;
      onDesired: (o: WatchedObject[]) => void;
    },
  ): Promise<ReconcileResult>;
  remoteHead(stack: RunnerStack): Promise<string>;
  /** Waits for one of the runner's parallel slots; returns its release. */
  acquire(): Promise<() => void>;
  /** Starts the stack's live view. */
  liveView(stack: RunnerStack, on: { drift(ids: ObjectId[]): void; state(state: LiveViewState): void }): LiveViewPort;
  notify(n: Notification): void;
  readonly metrics: RunnerMetrics;
  readonly log: Logger;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  /** Called when the status changed (a run started or ended, the stack stalled); `run` is the run that just ended. */
  statusChanged?(status: StackStatus, run?: RunRecord): void;
  /** `ferry suspend|resume` through the API: where the choice is kept (operator mode: the Stack's spec.suspend). */
  suspendRequested?(stack: RunnerStack, suspended: boolean): void;
}

const HISTORY = 20;
const LIVE_DEBOUNCE_MS = 300;

/**
 * Keeps one stack equal to Git: runs on a new commit, on the drift interval, on a live change of a
 * managed object, and on request. Never two runs at once; triggers that arrive during a run are
 * coalesced into one follow-up run. Failures are retried with backoff and jitter.
 */
export class StackWorker {
  readonly status: StackStatus;
  private running: Promise<void> | undefined;
  private pending:
    | {
        triggers: Set<Trigger>;
        targets: Map<string, ObjectId> | "all";
        full: boolean;
        /** The newest head a poll saw during the run: no follow-up commit run when the run applied it. */
        head?: string;
      }
    | undefined;
  private timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private liveTimer: NodeJS.Timeout | undefined;
  private liveTargets = new Map<string, ObjectId>();
  private failures = 0;
  /** Set while the stack is Stalled (kept across the Reconciling of a retry), for the recovery notice. */
  private stalled = false;
  private desired: WatchedObject[] = [];
  private view: LiveViewPort | undefined;
  /** No full run succeeded since start or resume: drift made meanwhile is unseen by the live view. */
  private fullDue = true;
  private abort = new AbortController();
  private stopped = false;
  /** `ferry resume` asked to lift a pin; kept until a run succeeds. */
  private unpinRequested = false;
  private lastPolledHead: string | undefined;

  constructor(
    readonly stack: RunnerStack,
    private readonly deps: WorkerDeps,
  ) {
    this.status = {
      name: stack.name,
      mode: stack.mode,
      condition: stack.mode === "suspended" ? "Suspended" : "Pending",
      drift: { detected: false, objects: [] },
      history: [],
    };
  }

  /** Starts the timers and the first run. */
  start(): void {
    this.timers.push(setInterval(() => void this.poll(), this.stack.pollInterval));
    this.timers.push(setInterval(() => this.trigger("drift"), this.stack.driftInterval));
    if (this.stack.watch) this.timers.push(setInterval(() => this.trigger("refresh"), this.stack.fullRefreshInterval));
    this.trigger("start");
  }

  /** Stops timers and watches, cancels the current run cleanly and waits for it. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.liveTimer) clearTimeout(this.liveTimer);
    this.stopView();
    this.abort.abort();
    await this.running;
  }

  /** Suspends, or resumes (to the configured mode, or enforce) and lifts a rollback's pin; kept where the deps keep it. */
  setSuspended(suspended: boolean): void {
    this.deps.suspendRequested?.(this.stack, suspended);
    this.applySuspended(suspended);
  }

  /** Takes over a past status (the run history and revisions another agent replica recorded) before start(). */
  seed(past: {
    readonly history: readonly RunRecord[];
    readonly lastAppliedRevision?: string;
    readonly lastAttemptedRevision?: string;
  }): void {
    this.status.history = [...past.history];
    this.status.lastAppliedRevision = past.lastAppliedRevision;
    this.status.lastAttemptedRevision = past.lastAttemptedRevision;
  }

  /** Follows a suspend that changed where it is kept (the Stack's spec): acts only on a change. */
  followSuspended(suspended: boolean): void {
    if (suspended !== (this.status.mode === "suspended")) this.applySuspended(suspended);
  }

  private applySuspended(suspended: boolean): void {
    if (!suspended) this.unpinRequested = true;
    this.status.mode = suspended ? "suspended" : this.stack.mode === "suspended" ? "enforce" : this.stack.mode;
    if (suspended) {
      this.status.condition = "Suspended";
      this.stopView();
      this.fullDue = true;
      this.deps.statusChanged?.(this.status);
    } else this.trigger("manual");
  }

  /** Asks the remote whether the followed ref moved; runs when it did. */
  async poll(): Promise<void> {
    if (this.stopped || this.status.mode === "suspended") return;
    try {
      const head = await this.deps.remoteHead(this.stack);
      const seen = head === this.lastPolledHead;
      this.lastPolledHead = head;
      // A new commit, or the source is back after it was unreachable. A pinned stack applies its
      // pinned commit, not the head: it runs once per new head (the pin's policy may lift it).
      const sourceBack = this.stalled && this.status.reason === "SourceFailed" && !this.running;
      const moved = head !== this.status.lastAttemptedRevision && !(this.status.pinned && seen);
      if (moved || sourceBack) this.trigger("commit", undefined, { head });
    } catch (err) {
      // Git unreachable: the cluster stays as it is; the stack is Stalled until the source is back.
      const message = err instanceof Error ? err.message : String(err);
      this.markStalled("SourceFailed", message);
    }
  }

  /**
   * Requests a run; coalesced with any run in progress. Live triggers name the drifted objects;
   * `full` asks for a refresh of every object (`ferry reconcile --full`).
   */
  trigger(trigger: Trigger, targets?: readonly ObjectId[], options: { full?: boolean; head?: string } = {}): void {
    if (this.stopped) return;
    if (this.status.mode === "suspended" && trigger !== "manual") return;
    const full = options.full ?? false;
    if (this.running) {
      this.pending ??= { triggers: new Set(), targets: new Map(), full: false };
      this.pending.triggers.add(trigger);
      this.pending.full ||= full;
      if (options.head) this.pending.head = options.head;
      if (!targets || this.pending.targets === "all") this.pending.targets = "all";
      else for (const t of targets) this.pending.targets.set(resourceName(t), t);
      return;
    }
    this.startRun(new Set([trigger]), targets ? new Map(targets.map((t) => [resourceName(t), t])) : "all", full);
  }

  private startRun(triggers: Set<Trigger>, targets: Map<string, ObjectId> | "all", full: boolean): void {
    this.running = this.run(triggers, targets, full).finally(() => {
      this.running = undefined;
      const next = this.pending;
      this.pending = undefined;
      // A poll during the run saw the head the run then applied: that is no new commit.
      if (next?.head && next.head === this.status.lastAttemptedRevision && !this.stalled) next.triggers.delete("commit");
      if (next && next.triggers.size > 0 && !this.stopped) this.startRun(next.triggers, next.targets, next.full);
    });
  }

  /** The live view, started once the desired objects are known (never with `watch: false` or while suspended). */
  private ensureView(): LiveViewPort | undefined {
    if (this.view || this.stopped || !this.stack.watch || this.status.mode === "suspended") return this.view;
    const name = this.stack.name;
    this.view = this.deps.liveView(this.stack, {
      drift: (ids) => this.onLive(ids),
      state: (state) => {
        if (!this.view) return;
        this.status.liveView = state;
        this.deps.metrics.liveViewSynced.set({ stack: name }, state.synced ? 1 : 0);
      },
    });
    return this.view;
  }

  private stopView(): void {
    this.view?.stop();
    this.view = undefined;
    this.status.liveView = undefined;
    this.deps.metrics.liveViewSynced.set({ stack: this.stack.name }, 0);
  }

  private onLive(ids: ObjectId[]): void {
    if (this.stopped || this.status.mode === "suspended") return;
    for (const id of ids) this.liveTargets.set(resourceName(id), id);
    this.deps.log.info({ stack: this.stack.name, phase: "watch", objects: ids.map(displayName) }, "live change of a managed object");
    if (this.status.mode === "detect") this.deps.metrics.driftDetected.inc({ stack: this.stack.name, source: "watch" });
    if (this.liveTimer) return;
    this.liveTimer = setTimeout(() => {
      this.liveTimer = undefined;
      const targets = [...this.liveTargets.values()];
      this.liveTargets.clear();
      this.trigger("live", targets);
    }, LIVE_DEBOUNCE_MS);
  }

  private async run(triggers: Set<Trigger>, targets: Map<string, ObjectId> | "all", fullRequested: boolean): Promise<void> {
    const trigger = [...triggers][0]!;
    const release = await this.deps.acquire();
    const started = Date.now();
    const detect = this.status.mode === "detect";
    const view = this.view;
    const plan = planRun({
      triggers,
      targets: targets === "all" ? "all" : [...targets.values()],
      fullRequested,
      fullDue: this.fullDue,
      detect,
      stalled: this.stalled,
      view: view ? { synced: view.synced(), drifted: view.drifted() } : undefined,
    });
    const log = this.deps.log.child({ stack: this.stack.name, trigger });
    if (plan.kind === "skip") {
      release();
      log.debug({ phase: "done" }, plan.message);
      const changes = { created: 0, updated: 0, replaced: 0, deleted: 0, unchanged: 0 };
      this.record([...triggers], started, {
        stack: this.stack.name,
        succeeded: true,
        message: plan.message,
        changes,
        objects: [],
        durationMs: 0,
      });
      return;
    }
    this.status.condition = "Reconciling";
    this.deps.statusChanged?.(this.status);
    // The live view keeps watching: what changes during the run is judged when it ends.
    view?.runStarted();
    log.info(
      { phase: "start", detect, full: plan.full, targets: plan.targets?.length, drifted: plan.drifted?.length },
      "reconcile started",
    );
    const unpin = this.unpinRequested;
    let built: WatchedObject[] | undefined;
    let result: ReconcileResult;
    try {
      result = await this.deps.reconcile(this.stack, {
        trigger,
        detectOnly: detect,
        targets: plan.targets,
        full: plan.full,
        drifted: plan.drifted,
        unpin,
        signal: this.abort.signal,
        onDesired: (o) => {
          built = o;
          this.desired = o;
          const v = this.view ?? this.ensureView();
          if (v && v !== view) v.runStarted(); // started during this run
          v?.prepare(o);
        },
      });
    } catch (err) {
      result = {
        stack: this.stack.name,
        succeeded: false,
        reason: "ApplyFailed",
        message: String(err),
        objects: [],
        durationMs: Date.now() - started,
      };
    } finally {
      release();
    }
    if (unpin && result.succeeded && !detect) this.unpinRequested = false;
    if (plan.full && result.succeeded && !detect) this.fullDue = false;
    this.record([...triggers], started, result);
    // The new baseline is what this run applied (or, in detect mode, what Git declares); a failed
    // run keeps the old one. What the run healed and still differs is a normalisation to accept.
    const applied = result.succeeded && !detect;
    this.view?.runEnded({
      baseline: result.succeeded ? built : undefined,
      healed: applied ? [...(plan.targets ?? []), ...(plan.drifted ?? [])] : [],
    });
  }

  private record(triggers: Trigger[], started: number, result: ReconcileResult): void {
    const name = this.stack.name;
    const trigger = triggers[0]!;
    const revision = result.revision?.sha;
    const durationMs = Date.now() - started;
    const entry: RunRecord = {
      trigger,
      triggers,
      revision,
      startedAt: new Date(started).toISOString(),
      durationMs,
      result: result.succeeded ? "Succeeded" : "Failed",
      reason: result.reason,
      message: result.message,
      changes: result.changes,
      drift: result.drift,
      scope: result.scope,
    };
    this.status.history = [entry, ...this.status.history].slice(0, HISTORY);
    this.deps.metrics.reconcileDuration.observe({ stack: name, trigger, result: entry.result }, durationMs / 1000);
    if (revision) this.status.lastAttemptedRevision = revision;
    const log = this.deps.log.child({ stack: name, commit: revision?.slice(0, 7), trigger, phase: "done" });
    if (!result.succeeded) {
      log.warn({ reason: result.reason, durationMs }, result.message ?? "reconcile failed");
      this.markStalled(result.reason ?? "Failed", result.message ?? "", revision);
      this.failures++;
      if (this.retryTimer) clearTimeout(this.retryTimer);
      const delay = backoffDelay(this.failures, this.deps.retryDelayMs, this.deps.maxRetryDelayMs);
      if (!this.stopped) this.retryTimer = setTimeout(() => this.trigger("retry"), delay);
      this.deps.statusChanged?.(this.status, entry);
      return;
    }
    const wasStalled = this.stalled;
    this.stalled = false;
    this.failures = 0;
    if (result.pin && !this.status.pinned)
      log.info({ pin: result.pin }, "pinned by a rollback: following the pinned commit, not the branch");
    if (result.unpinned) log.info({ unpinned: result.unpinned }, "pin lifted: following the branch again");
    this.status.pinned = result.pin;
    this.deps.metrics.objectsManaged.set({ stack: name }, this.desired.length);
    this.status.objectsManaged = this.desired.length;
    if (this.status.mode === "detect") {
      const drift = !!result.drift;
      const objects = result.objects.map((o) => `${o.change} ${o.object}`);
      if (drift && !this.status.drift.detected) {
        this.deps.metrics.driftDetected.inc({ stack: name, source: "preview" });
        this.deps.notify({ stack: name, event: "drift", message: `the cluster differs from Git: ${objects.join(", ")}`, revision });
      }
      this.status.drift = { detected: drift, at: drift ? new Date().toISOString() : undefined, objects };
      this.deps.metrics.driftState.set({ stack: name }, drift ? 1 : 0);
      log.info({ drift, objects }, drift ? "drift detected (detect mode: nothing changed)" : "no drift");
    } else {
      if (revision) this.status.lastAppliedRevision = revision;
      this.deps.metrics.lastSuccess.set({ stack: name }, Date.now() / 1000);
      const c = result.changes;
      if (trigger === "live" || (c && hasChanges(c) && trigger === "drift")) {
        this.status.drift = {
          detected: false,
          at: new Date().toISOString(),
          objects: result.objects.map((o) => `${o.change} ${o.object}`),
        };
      }
      log.info({ changes: result.changes, durationMs }, "reconcile succeeded");
    }
    this.status.condition = this.status.mode === "suspended" ? "Suspended" : "Ready";
    this.status.reason = "ReconciliationSucceeded";
    this.status.message = undefined;
    if (wasStalled) this.deps.notify({ stack: name, event: "recovery", message: "reconciling again", revision });
    this.deps.statusChanged?.(this.status, entry);
  }

  private markStalled(reason: string, message: string, revision?: string): void {
    const first = !this.stalled;
    this.stalled = true;
    this.status.condition = "Stalled";
    this.status.reason = reason;
    this.status.message = message;
    if (first) this.deps.notify({ stack: this.stack.name, event: "failure", message: `${reason}: ${message}`, revision });
    this.deps.statusChanged?.(this.status);
  }
}
