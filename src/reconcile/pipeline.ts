import { allObjects, DesiredObject, DesiredState, unitKey } from "../desired-state/desired-state";
import { DesiredStateError, GuardError } from "../desired-state/manifest-error";
import { ProgramInput } from "../desired-state/program-input";
import { Redactor, redactor } from "../desired-state/sensitive-values";
import { resourceName } from "../desired-state/object-id";
import { Revision, SourceError } from "../source/git-source";
import { adoptions } from "./adoption";
import { changeOf, countChanges, hasChanges, isKubernetesObject, objectDisplayName } from "./change-summary";
import { clusterRejections, dryRunRejections, engineRejections, Rejection, rejectionMessage, sameData } from "./dry-run";
import { buildFailures, holdBack, UnitFailure } from "../desired-state/unit-isolation";
import { keptObjects } from "./kept-objects";
import { hookDigests, hookName, releaseHookRuns } from "./helm-hook-runner";
import { declaredDeletes } from "./identity-guard";
import { Mode, runKind, writes } from "./mode";
import { decideRef, Pin } from "./pin";
import { EngineError, EngineStep, LockedError, Observed, Ports, StackSnapshot } from "./ports";
import { decidePrune } from "./prune-guard";
import { runRedaction } from "./run-redaction";
import { checkHealth, healthFailure, UnitReadiness } from "./health";
import { FailureReason, ObjectStep, ReconcileResult } from "./reconcile-result";
import { touchesStack } from "./touched-stacks";
import { changedLive, changedObjects, changedScope, ChangedScopeInput, kindName, observedKinds, RunScope } from "./run-scope";
import { formatUpdateMessage } from "./update-message";

/** What a run reports while it runs. */
export interface Progress {
  readonly phase: (phase: "lock" | "fetch" | "build" | "plan" | "apply" | "health" | "done", detail: string) => void;
  readonly object: (step: ObjectStep) => void;
}

/** Options of a run beyond its mode: the stack's guards and the caller's hooks. Defaults in {@link defaultPipelineOptions}. */
export interface PipelineOptions {
  readonly stack: string;
  /** The stack's cluster folder (a preview with a base asks whether the change touches it). */
  readonly path: string;
  /** Largest share of the managed objects one run may delete (0..1). */
  readonly maxPruneShare: number;
  /** This run may delete more than that share. */
  readonly allowPrune: boolean;
  /** How long to wait for another run of the stack to finish before giving up as `Locked`. */
  readonly lockWaitMs: number;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
  /** Receives the desired objects once they are built (the agent watches them). */
  readonly onDesired?: (objects: readonly DesiredObject[]) => void;
}

/** The pipeline's defaults, in one place. */
export function defaultPipelineOptions(o: Pick<PipelineOptions, "stack" | "path"> & Partial<PipelineOptions>): PipelineOptions {
  return { maxPruneShare: 0.5, allowPrune: false, lockWaitMs: 0, ...o };
}

/** A phase that ends the run early, with why. */
class Stop {
  constructor(
    readonly reason: FailureReason,
    readonly message: string,
  ) {}
}

/** What the run knows so far; each phase adds to it. */
interface RunState {
  snapshot?: StackSnapshot;
  revision?: Revision;
  /** The pin the run records (the state's, a new rollback's, or none when lifted). */
  pin?: Pin;
  unpinned?: "resume" | "new-commit";
  state?: DesiredState;
  /** Masks the strings that reveal the desired state's Secret data. */
  redact?: Redactor;
  input?: ProgramInput;
  planned?: EngineStep[];
  /**
   * What the update touches: every object (full), targets (a heal of drifted objects the stack
   * manages, or a run of what changed), or none. Undefined: full.
   */
  scope?: RunScope;
  /**
   * Units that failed or were held back so far. While there is one, the update leaves every state
   * entry the program does not register as it is: nothing is deleted, whatever failed declared stays.
   */
  failures: UnitFailure[];
  /** The cluster's identity ({@link Cluster.uid}), read before the update and recorded in its outputs. */
  clusterUid?: string;
  /** The update left undeclared state entries alone because units were held back. */
  keptUndeclared?: boolean;
  objects: ObjectStep[];
  steps: EngineStep[];
}

/**
 * One run of a stack, whatever its mode — `ferry sync`, `ferry preview`, `ferry rollback` and every
 * run of the agent:
 * 1. lock: one run per stack at a time, across processes (modes that write);
 * 2. open: read the stack's state (managed objects, a rollback's pin), recovering from a crash;
 * 3. fetch: check out the commit the mode asks for (the branch, the pinned commit, a PR's ref);
 * 4. build: load, render and identify the desired state; bad input stops here, naming file and line;
 * 5. guard: refuse an empty state or too large a prune; take over state entries of older URNs;
 *    a full update may not delete an object Git still declares;
 * 6. check: the API server's dry run of every object the update creates or changes, and the kinds
 *    and namespaces it needs — detect and preview instead run the engine's refreshing plan (which
 *    dry-runs the same way) and end there;
 * 7. apply: `pulumi up --refresh`, watched: an unforeseen delete of a declared object aborts it;
 * 8. health: each unit's readiness, read from the cluster (kstatus's rules); only the units that
 *    ask (`wait`, `healthChecks`) are waited for, and one that is not ready in time fails the run;
 * 9. record: the result, with what changed.
 * Each phase maps its failure to a reason; nothing is applied before phase 7, nothing undone after it.
 */
export async function reconcile(mode: Mode, ports: Ports, options: PipelineOptions): Promise<ReconcileResult> {
  const started = Date.now();
  const run: RunState = { objects: [], steps: [], failures: [] };
  // 9. Record: what a result shows never reveals Secret data (values read from Secrets, Secret
  //    objects' data, anything a chart rendered from them).
  const result = (r: { succeeded: boolean; reason?: FailureReason; message?: string } & Partial<ReconcileResult>): ReconcileResult => {
    const hide = runRedaction(run.state, (id) => ports.engine.urnOf(id));
    return {
      stack: options.stack,
      objects: hide.redact.data(run.objects),
      durationMs: Date.now() - started,
      revision: run.revision,
      pin: run.pin,
      unpinned: run.unpinned,
      ...r,
      ...(r.message !== undefined ? { message: hide.redact.text(r.message) } : {}),
      ...(r.planned ? { planned: hide.steps(r.planned) } : {}),
      ...(r.units ? { units: hide.redact.data(r.units) } : {}),
      ...(run.failures.length > 0 ? { failedUnits: hide.redact.data(run.failures) } : {}),
    };
  };
  let release: (() => Promise<void>) | undefined;
  try {
    if (writes(mode) || mode.kind === "detect") release = await lock(ports, options);
    await open(mode, ports, options, run);
    const skipped = await fetch(mode, ports, options, run);
    if (skipped) return result({ succeeded: true, skipped: true });
    await build(mode, ports, options, run);
    guard(mode, ports, options, run);
    if (mode.kind === "preview" || mode.kind === "detect") {
      await plan(ports, options, run);
      const changes = countChanges(run.planned!);
      if (mode.kind === "preview") return result({ succeeded: true, changes, planned: run.planned });
      return result({ succeeded: true, changes, drift: hasChanges(changes), pin: run.snapshot?.pin });
    }
    const healing = mode.kind === "heal" && run.scope?.kind === "targets";
    if (!healing) await check(ports, options, run);
    const hooks = healing ? undefined : hookRuns(ports, run);
    if (hooks) await runHooks("pre", hooks.pre, ports, options, run);
    let changes = await apply(mode, ports, options, run);
    changes = (await settle(mode, ports, options, run)) ?? changes;
    if (hooks) await runHooks("post", hooks.post, ports, options, run);
    const units = await health(mode, ports, options, run);
    options.progress?.phase("done", "");
    for (const u of units.filter((u) => u.waited === "failed")) {
      run.failures.push({ unit: u.unit, reason: "HealthCheckFailed", message: healthFailure([u], run.state!) });
    }
    if (run.failures.length > 0)
      return result({
        succeeded: false,
        ...failedRun(run.failures, run.keptUndeclared ? "kept" : "full"),
        changes,
        units,
        ...scopeOf(run),
      });
    return result({ succeeded: true, changes, units, ...scopeOf(run) });
  } catch (err) {
    if (err instanceof Stop) {
      // A failed run records nothing: the pin in force is still the state's.
      return result({ succeeded: false, reason: err.reason, message: err.message, pin: run.snapshot?.pin, planned: run.planned });
    }
    throw err;
  } finally {
    await release?.();
  }
}

/** 1. One run per stack at a time: the checkout, workspace and program input are the run's alone. */
async function lock(ports: Ports, options: PipelineOptions): Promise<() => Promise<void>> {
  try {
    return await ports.lock.acquire({
      waitMs: options.lockWaitMs,
      onWait: (line) => options.progress?.phase("lock", line),
    });
  } catch (err) {
    if (err instanceof LockedError) throw new Stop("Locked", err.message);
    throw err;
  }
}

/** 2. Open the stack and read its state once; a crashed run's leftovers are cleared first. */
async function open(mode: Mode, ports: Ports, options: PipelineOptions, run: RunState): Promise<void> {
  try {
    run.snapshot = await ports.engine.open((what) => options.progress?.phase("fetch", what));
  } catch (err) {
    throw new Stop(err instanceof EngineError && err.locked ? "Locked" : "ApplyFailed", errorText(err));
  }
  run.pin = run.snapshot.pin;
  if (run.snapshot.pendingCreates > 0 && writes(mode)) {
    const pending = run.snapshot.pendingCreates;
    try {
      run.snapshot = await ports.engine.resolvePendingCreates();
    } catch (err) {
      throw new Stop("ApplyFailed", `cannot resolve the creates an interrupted update left pending: ${errorText(err)}`);
    }
    options.progress?.phase("fetch", `resolved ${pending} create(s) left pending by an interrupted update`);
  }
}

/** 3. Check out the commit the mode asks for. Returns true when a preview's change does not touch the stack. */
async function fetch(mode: Mode, ports: Ports, options: PipelineOptions, run: RunState): Promise<boolean> {
  const snapshot = run.snapshot!;
  let ref: string | undefined;
  try {
    switch (mode.kind) {
      case "preview":
        ref = mode.ref;
        break;
      case "rollback": {
        const head = mode.pin.policy === "new-commit" ? await ports.source.head() : undefined;
        run.pin = { ...mode.pin, at: new Date().toISOString(), head };
        ref = mode.pin.revision;
        break;
      }
      default: {
        const unpin = mode.kind === "apply" && !!mode.unpin;
        const head = snapshot.pin?.policy === "new-commit" && !unpin ? await ports.source.head() : undefined;
        const decision = decideRef({ followed: undefined, pin: snapshot.pin, head, unpin });
        ref = decision.ref;
        run.pin = decision.pin;
        run.unpinned = decision.unpinned;
      }
    }
    options.progress?.phase("fetch", `fetching${ref ? ` ${ref}` : ""}${run.pin ? ` (pinned by ${run.pin.by}'s rollback)` : ""}`);
    run.revision = await ports.source.checkout(ref);
    if (mode.kind === "preview" && mode.base) {
      const changed = await ports.source.changedPaths(mode.base, run.revision.sha);
      if (!touchesStack(changed, options.path, mode.stackFolders ?? [options.path])) return true;
    }
  } catch (err) {
    throw new Stop("SourceFailed", errorText(err));
  }
  return false;
}

/**
 * 4. Build the desired state; bad input stops the run before anything touches the cluster. A unit
 * that does not build is held back (with the units that wait for it) and the run goes on with the
 * others; a preview or drift check of a commit with a broken unit fails, as the commit would, and
 * a rollback to one is refused (it goes back to a whole commit or not at all).
 */
async function build(mode: Mode, ports: Ports, options: PipelineOptions, run: RunState): Promise<void> {
  const r = run.revision!;
  options.progress?.phase("build", `${r.sha.slice(0, 7)} ${r.subject} (${r.author})`);
  try {
    run.state = await ports.renderer.build();
    run.redact = redactor(run.state.sensitive);
  } catch (err) {
    throw new Stop(err instanceof GuardError ? "GuardRefused" : "BuildFailed", errorText(err));
  }
  const failed = run.state.failed ?? [];
  // A rollback goes back to a whole commit or not at all; previews and drift checks judge the commit.
  if (failed.length > 0 && mode.kind !== "apply" && mode.kind !== "heal")
    throw new Stop("BuildFailed", new DesiredStateError(failed.flatMap((f) => f.errors)).message);
  isolate(buildFailures(run.state), options, run);
  options.onDesired?.(allObjects(run.state));
}

/**
 * Holds failed units back, with every unit that waits for them: the run goes on with the others.
 * When no unit is left, the run stops with the first failure's reason.
 */
function isolate(failures: readonly UnitFailure[], options: PipelineOptions, run: RunState, stop?: Stop): void {
  if (failures.length === 0) return;
  const { state, held } = holdBack(run.state!, failures);
  const alone = run.failures.length === 0;
  run.state = state;
  run.failures.push(...held);
  for (const f of held) options.progress?.phase("build", `${f.unit}: ${f.reason}; held back, its objects stay as they are`);
  if (state.units.length === 0) {
    const failed = failedRun(run.failures, "nothing");
    throw alone && stop ? stop : new Stop(failed.reason, failed.message);
  }
}

/**
 * A run some of whose units failed: the reason of the first that failed itself, and every unit's
 * message. `applied`: nothing (no unit was left), the rest with every undeclared state entry kept
 * (units were held back), or the rest as a full update.
 */
function failedRun(failures: readonly UnitFailure[], applied: "nothing" | "kept" | "full"): { reason: FailureReason; message: string } {
  const first = failures.find((f) => f.reason !== "DependencyFailed") ?? failures[0]!;
  const reason: FailureReason = first.reason === "HookFailed" || first.reason === "DependencyFailed" ? "ApplyFailed" : first.reason;
  const lines = failures.map((f) => `- ${f.unit}: ${f.reason}: ${f.message.replace(/\n/g, "\n  ")}`);
  const count = `${failures.length} unit${failures.length === 1 ? "" : "s"} failed`;
  return {
    reason,
    message:
      applied === "nothing"
        ? `${count}; nothing was applied:\n${lines.join("\n")}`
        : `${count}; the rest of the desired state was applied:\n${lines.join("\n")}` +
          (applied === "kept" ? "\nwhile a unit is held back, ferry deletes nothing: what it declared stays as it was" : ""),
  };
}

/**
 * 5. Guard: the prune may not be too large; state entries of older URNs are taken over; and no run
 * may delete an object Git still declares. What a full update deletes is known before it runs —
 * every state entry the program does not register, under its URN or as an alias — so such a delete
 * is refused here, before anything is applied.
 */
function guard(mode: Mode, ports: Ports, options: PipelineOptions, run: RunState): void {
  const desired = allObjects(run.state!);
  const snapshot = run.snapshot!;
  // While a unit fails, the update deletes nothing (see RunState.failures): no prune to weigh.
  const partial = run.failures.length > 0;
  if ((mode.kind === "apply" || mode.kind === "rollback") && !partial) {
    const prune = decidePrune(
      [...new Set(snapshot.objects.map((m) => resourceName(m.id)))],
      desired.map((o) => resourceName(o.id)),
      options.maxPruneShare,
      options.allowPrune,
    );
    if (!prune.allowed) throw new Stop("GuardRefused", prune.message!);
  }
  run.scope = undefined;
  if (mode.kind === "heal") {
    // Objects the state does not hold yet (or no longer) are not a heal: the run goes on like any other.
    const managed = new Set(snapshot.objects.map((m) => m.urn));
    const urns = mode.targets.map((t) => ports.engine.urnOf(t));
    // Not their dependents: the frame (every provider) would bring in the whole stack; objects gone
    // with a deleted Namespace or CRD are reported by the live view one by one.
    if (urns.every((u) => managed.has(u))) run.scope = { kind: "targets", urns, creates: [], dependents: false };
  }
  run.input = programInput(ports, run);
  if (writes(mode) && run.scope === undefined && !partial) {
    const kept = new Set([...desired.map((o) => ports.engine.urnOf(o.id)), ...Object.values(run.input.adopt)]);
    const refused = declaredDeletes(
      snapshot.objects.filter((m) => !kept.has(m.urn)).map((m) => m.urn),
      snapshot,
      desired,
    );
    if (refused) throw new Stop("GuardRefused", refused);
  }
}

/** What the program registers: the desired state (as held back so far), adoptions, the pin. */
function programInput(ports: Ports, run: RunState): ProgramInput {
  return {
    state: run.state!,
    adopt: adoptions(allObjects(run.state!), run.snapshot!, (id) => ports.engine.urnOf(id)),
    outputs: {
      ...(run.pin ? { pin: run.pin } : {}),
      // Held-back units keep what the last update recorded of their hooks.
      hooks: { ...(run.failures.length > 0 ? run.snapshot!.hooks : {}), ...hookDigests(run.state!) },
      ...(run.clusterUid ? { clusterUid: run.clusterUid } : {}),
    },
  };
}

/**
 * 6a. Before a full update: what the API server would refuse holds its unit back with nothing of it
 * applied — kinds the cluster does not serve, namespaces nobody has, and every object the update
 * creates or changes, dry-run on the API server (server-side apply, `dryRun=All`). Objects whose
 * namespace or CRD this same update creates cannot be asked yet; the update itself applies them in
 * order. When every unit is refused, the run stops with nothing applied.
 */
async function check(ports: Ports, options: PipelineOptions, run: RunState): Promise<void> {
  options.progress?.phase("plan", `dry run of ${allObjects(run.state!).length} objects from ${options.path}`);
  const refuse = (rejected: readonly Rejection[]): void => {
    if (rejected.length === 0) return;
    isolate(unitRejections(rejected, run.state!, "DryRunFailed"), options, run, new Stop("DryRunFailed", rejectionMessage(rejected)));
  };
  try {
    refuse(await clusterRejections(allObjects(run.state!), ports.cluster));
    refuse(await dryRunRejections(changedObjects(allObjects(run.state!), run.snapshot!), ports.cluster));
  } catch (err) {
    if (err instanceof Stop) throw err;
    throw new Stop("ApplyFailed", `cannot check the desired state against the cluster: ${errorText(err)}`);
  }
}

/** The units of rejected objects, each failing with its own objects' rejections. */
function unitRejections(rejected: readonly Rejection[], state: DesiredState, reason: "DryRunFailed" | "ApplyFailed"): UnitFailure[] {
  const unitOf = new Map(state.units.flatMap((u) => u.objects.map((o) => [o, unitKey(u)] as const)));
  const byUnit = new Map<string, Rejection[]>();
  for (const r of rejected) {
    for (const unit of new Set(r.objects.flatMap((o) => unitOf.get(o) ?? []))) byUnit.set(unit, [...(byUnit.get(unit) ?? []), r]);
  }
  return [...byUnit].map(([unit, rs]) => ({ unit, reason, message: rs.map((r) => r.message).join("\n") }));
}

/**
 * 6b. Detect and preview: the engine's plan, refreshed from the cluster, in which the provider
 * dry-runs every create and update on the API server. Its rejections and any planned delete of an
 * object Git still declares fail the run, as they would fail an apply.
 */
async function plan(ports: Ports, options: PipelineOptions, run: RunState): Promise<void> {
  const desired = allObjects(run.state!);
  options.progress?.phase("plan", `${desired.length} objects from ${options.path}`);
  const rejected = await clusterRejections(desired, ports.cluster).catch((err: unknown) => {
    throw new Stop("ApplyFailed", `cannot check the desired state against the cluster: ${errorText(err)}`);
  });
  if (rejected.length > 0) throw new Stop("DryRunFailed", rejectionMessage(rejected));
  try {
    run.planned = await ports.engine.plan(run.input!, { refresh: true, signal: options.signal });
  } catch (err) {
    if (err instanceof EngineError) {
      const byUrn = new Map(desired.map((o) => [ports.engine.urnOf(o.id), o]));
      const engineRejected = engineRejections(err.diagnostics, byUrn);
      if (engineRejected.length > 0) throw new Stop("DryRunFailed", rejectionMessage(engineRejected));
      throw new Stop(err.locked ? "Locked" : "ApplyFailed", err.message);
    }
    throw new Stop("ApplyFailed", errorText(err));
  }
  for (const step of run.planned) report(step, run, options);
  const deletes = run.planned.filter((s) => s.op === "delete" && isKubernetesObject(s.type)).map((s) => s.urn);
  const refused = declaredDeletes(deletes, run.snapshot!, desired);
  if (refused) throw new Stop("GuardRefused", refused);
}

/** How long a hook Job or Pod may run: helm-controller's default timeout. */
const HOOK_TIMEOUT_MS = 5 * 60_000;

/** The Helm hooks of the update, decided before it applies: what it installs (none of the release in the state) or upgrades (changed). */
function hookRuns(ports: Ports, run: RunState) {
  const managed = new Set(run.snapshot!.objects.map((m) => m.urn));
  const changed = new Set(changedObjects(allObjects(run.state!), run.snapshot!).map((o) => resourceName(o.id)));
  // A unit's hooks recorded by the last update: installed; another digest: changed (a unit of hooks only has nothing else to tell).
  const recorded = run.snapshot!.hooks ?? {};
  const digests = hookDigests(run.state!);
  const releases = (when: "pre" | "post") =>
    releaseHookRuns(run.state!, when, (unit) => {
      const key = unitKey(unit);
      return {
        installed: unit.objects.some((o) => managed.has(ports.engine.urnOf(o.id))) || recorded[key] !== undefined,
        changed:
          unit.objects.some((o) => changed.has(resourceName(o.id))) || (recorded[key] !== undefined && recorded[key] !== digests[key]),
      };
    });
  return { pre: releases("pre"), post: releases("post") };
}

/**
 * 7a/7c. Helm hooks, as helm-controller runs them: pre-install and pre-upgrade hooks before the
 * update, post-* after it, in weight order, with their delete policy. A failed hook fails its
 * release (after a pre-hook, nothing of it is applied, nor of the units that wait for it).
 */
async function runHooks(
  when: "pre" | "post",
  runs: ReturnType<typeof hookRuns>["pre"],
  ports: Ports,
  options: PipelineOptions,
  run: RunState,
): Promise<void> {
  const namespaces = new Map(
    allObjects(run.state!)
      .filter((o) => o.id.group === "" && o.id.kind === "Namespace")
      .map((o) => [o.id.name, o.object]),
  );
  for (const r of runs) {
    options.progress?.phase("apply", `${r.release}: ${r.event} hooks ${r.hooks.map((h) => hookName(h.object)).join(", ")}`);
    const failed = await ports.cluster.runHooks(r.hooks, { timeoutMs: HOOK_TIMEOUT_MS, signal: options.signal, namespaces });
    if (failed === undefined) continue;
    const message = `${r.release}: ${r.event} hook ${failed}
  fix: check the hook with kubectl (its logs, events); it runs again on the next install or upgrade of the release`;
    const failure: UnitFailure = { unit: r.release, reason: "HookFailed", message };
    // After the update its objects are applied: the unit fails, nothing is held back.
    if (when === "post") run.failures.push(failure);
    else isolate([failure], options, run, new Stop("ApplyFailed", message));
  }
}

/**
 * 7. Apply: `pulumi up --refresh`, which corrects drift and prunes what Git no longer declares. The
 * engine's steps are watched as they come: a delete of an object Git declares that the guard did not
 * foresee aborts the update. Returns the changes.
 */
async function apply(mode: Mode, ports: Ports, options: PipelineOptions, run: RunState) {
  const revision = run.revision!;
  const desired = allObjects(run.state!);
  options.progress?.phase("apply", `${desired.length} objects from ${options.path}`);
  const stateIds = new Map(run.snapshot!.objects.map((m) => [m.urn, m.id]));
  run.clusterUid = await ports.cluster.uid().catch(() => undefined);
  // What the program registers follows the units held back since the guard (dry run, pre-hooks).
  run.input = programInput(ports, run);
  run.keptUndeclared = run.failures.length > 0;
  if (run.keptUndeclared) {
    const { keep, unreadable } = keptObjects(run.snapshot!, run.input!, (id) => ports.engine.urnOf(id));
    if (unreadable.length > 0)
      throw new Stop(
        "GuardRefused",
        `units failed, and the state holds objects ferry cannot keep as they are (no recorded inputs): ${unreadable.join(", ")}`,
      );
    run.input = { ...run.input!, keep };
  }
  if (mode.kind === "apply" && mode.scope === "changed") {
    const scopeInput: ChangedScopeInput = {
      snapshot: run.snapshot!,
      desired,
      adopt: run.input.adopt,
      drifted: mode.drifted ?? [],
      keptUndeclared: run.keptUndeclared,
      // Unknown (unreadable) counts as another cluster: the run is full.
      clusterChanged: run.clusterUid === undefined || run.clusterUid !== run.snapshot!.clusterUid,
      outputsChanged: !sameData(recordedOutputs(run.snapshot!), { hooks: {}, ...run.input.outputs }),
      urnOf: (id) => ports.engine.urnOf(id),
    };
    let decided = changedScope(scopeInput);
    // Without a live view (a sync by hand), what changed in the cluster is read now, unless the run
    // is full anyway: a list of each kind's metadata, compared with the versions the state recorded.
    if (mode.drifted === undefined && decided.scope.kind !== "full") {
      const kinds = observedKinds(desired, run.snapshot!);
      const live = await ports.cluster.observe(kinds).catch(() => ({ seen: new Map<string, Observed>(), unlisted: kinds.map(kindName) }));
      const drifted = changedLive(desired, run.snapshot!, live);
      if (drifted.length > 0) options.progress?.phase("apply", `${drifted.length} object(s) changed in the cluster since the last update`);
      decided = changedScope({ ...scopeInput, drifted });
    }
    run.scope = decided.scope;
    options.progress?.phase("apply", decided.scope.kind === "full" ? `every object: ${decided.why}` : decided.why);
    if (decided.scope.kind === "none") return countChanges(run.steps);
  }
  try {
    await ports.engine.apply(run.input!, {
      message: formatUpdateMessage({
        kind: runKind(mode, !!run.unpinned),
        sha: revision.sha,
        subject: revision.subject,
        from: mode.kind === "rollback" ? mode.pin.from : undefined,
        by: mode.kind === "rollback" ? mode.pin.by : undefined,
      }),
      revision,
      targets: run.scope?.kind === "targets" ? run.scope : undefined,
      signal: options.signal,
      veto: (step) =>
        step.op === "delete" && isKubernetesObject(step.type) && stateIds.has(step.urn)
          ? declaredDeletes([step.urn], run.snapshot!, desired)
          : undefined,
      onStep: (step) => {
        run.steps.push(step);
        report(step, run, options);
      },
    });
  } catch (err) {
    if (err instanceof EngineError && err.vetoed) throw new Stop("GuardRefused", err.vetoed);
    // The engine goes on past an object it fails on (continue-on-error): the units of the objects
    // it failed on fail; a failure no object explains fails the run.
    const failures =
      err instanceof EngineError && !err.locked ? unitRejections(appliedRejections(err, run, ports), run.state!, "ApplyFailed") : [];
    if (failures.length === 0)
      throw new Stop(err instanceof EngineError && err.locked ? "Locked" : "ApplyFailed", applyFailure(err, run, ports));
    run.failures.push(...failures);
  }
  return countChanges(run.steps);
}

/**
 * 7b. Settle: a chart that reads the cluster (`lookup`) renders differently once the objects it
 * looks up exist — the install of a chart that keeps a generated password in a Secret, whose
 * StatefulSet carries a checksum of it. After an update that created objects, the desired state is
 * built again from the same checkout; when it differs from what was applied, it is guarded and
 * applied once more, so a sync leaves a state the next sync does not change. Returns the changes of
 * both updates, or undefined when nothing was applied again.
 */
async function settle(mode: Mode, ports: Ports, options: PipelineOptions, run: RunState) {
  const created = run.steps.some((s) => s.op === "create" && isKubernetesObject(s.type));
  if (!ports.renderer.readsCluster || mode.kind !== "apply" || run.failures.length > 0 || !created) return undefined;
  let next: DesiredState;
  try {
    next = await ports.renderer.build();
  } catch {
    return undefined; // the commit built once; what fails now is the next run's to report
  }
  if ((next.failed ?? []).length > 0) return undefined;
  const applied = new Map(allObjects(run.state!).map((o) => [resourceName(o.id), o.object]));
  const now = allObjects(next);
  const differ = now.filter((o) => !sameData(applied.get(resourceName(o.id)) ?? null, o.object));
  if (differ.length === 0 && now.length === applied.size) return undefined;
  options.progress?.phase(
    "apply",
    `${differ.length} object(s) render differently now that the objects their charts look up exist; applying again`,
  );
  // What either build read from Secrets stays masked.
  const sensitive = [...new Set([...(run.state!.sensitive ?? []), ...(next.sensitive ?? [])])];
  run.state = { ...next, ...(sensitive.length > 0 ? { sensitive } : {}) };
  run.redact = redactor(run.state.sensitive);
  try {
    run.snapshot = await ports.engine.open((what) => options.progress?.phase("apply", what));
  } catch (err) {
    throw new Stop(err instanceof EngineError && err.locked ? "Locked" : "ApplyFailed", errorText(err));
  }
  guard(mode, ports, options, run);
  return apply(mode, ports, options, run);
}

/**
 * 8. Health: every unit's readiness, read from the cluster once; a full update or a rollback waits
 * for the units that ask, each up to its timeout (a heal only reports). A failure to read is reported,
 * never a reason to fail a run whose apply succeeded.
 */
async function health(mode: Mode, ports: Ports, options: PipelineOptions, run: RunState): Promise<UnitReadiness[]> {
  const state = touchedState(run, ports);
  const wait = (mode.kind === "apply" || mode.kind === "rollback") && state.units.some((u) => u.health);
  options.progress?.phase("health", wait ? "reading readiness; waiting for the units that ask" : "reading readiness");
  if (state.units.length === 0) return [];
  try {
    return await checkHealth(state, ports.cluster, {
      wait,
      signal: options.signal,
      onWait: (line) => options.progress?.phase("health", line),
    });
  } catch (err) {
    options.progress?.phase("health", `cannot read readiness: ${errorText(err)}`);
    return [];
  }
}

/** The outputs the state recorded, as the program input writes them. */
function recordedOutputs(snapshot: StackSnapshot): ProgramInput["outputs"] {
  return {
    ...(snapshot.pin ? { pin: snapshot.pin } : {}),
    hooks: snapshot.hooks ?? {},
    ...(snapshot.clusterUid ? { clusterUid: snapshot.clusterUid } : {}),
  };
}

/** The desired state of the units the update touched: all of them, those with a targeted object, or none. */
function touchedState(run: RunState, ports: Ports): DesiredState {
  const scope = run.scope;
  if (scope === undefined || scope.kind === "full") return run.state!;
  if (scope.kind === "none") return { ...run.state!, units: [] };
  const urns = new Set([...scope.urns, ...scope.creates]);
  return { ...run.state!, units: run.state!.units.filter((u) => u.objects.some((o) => urns.has(ports.engine.urnOf(o.id)))) };
}

/** How much of the stack the run's update touched, for its result. */
function scopeOf(run: RunState): Pick<ReconcileResult, "scope"> {
  const s = run.scope ?? { kind: "full" };
  return {
    scope: {
      kind: s.kind,
      objects: s.kind === "full" ? allObjects(run.state!).length : s.kind === "none" ? 0 : s.urns.length + s.creates.length,
    },
  };
}

/** Reports a step that changes a Kubernetes object, once per object. */
function report(step: EngineStep, run: RunState, options: PipelineOptions): void {
  const change = changeOf(step.op);
  if (!change || change === "unchanged" || !isKubernetesObject(step.type)) return;
  const object = run.redact ? run.redact.text(objectDisplayName(step.urn)) : objectDisplayName(step.urn);
  if (run.objects.some((o) => o.object === object)) return;
  const s = { change, object };
  run.objects.push(s);
  options.progress?.object(s);
}

/** The objects an update failed on, at the file and line that declare them. */
function appliedRejections(err: EngineError, run: RunState, ports: Ports): Rejection[] {
  return engineRejections(err.diagnostics, new Map(allObjects(run.state!).map((o) => [ports.engine.urnOf(o.id), o])));
}

/** An apply failure, leading with the objects that failed at the file and line that declare them. */
function applyFailure(err: unknown, run: RunState, ports: Ports): string {
  if (!(err instanceof EngineError)) return errorText(err);
  const byUrn = new Map(allObjects(run.state!).map((o) => [ports.engine.urnOf(o.id), o]));
  const located = engineRejections(err.diagnostics, byUrn);
  if (located.length === 0) return err.message;
  // The engine's own text repeats the API server's refusal of the objects, values and all.
  const withheld = err.diagnostics.some((d) => d.urn !== undefined && byUrn.get(d.urn)?.sensitive);
  return located.map((e) => e.message).join("\n") + (withheld ? "" : `\n${err.message}`);
}

function errorText(err: unknown): string {
  if (err instanceof DesiredStateError || err instanceof GuardError || err instanceof SourceError) return err.message;
  return err instanceof Error ? err.message.trim() : String(err);
}
