import { ObjectId, resourceName } from "../desired-state/object-id";

/** Why a run started. `refresh` is the safety-net full refresh on its long interval. */
export type Trigger = "start" | "commit" | "drift" | "live" | "manual" | "retry" | "refresh";

/** What a worker does for a batch of coalesced triggers. */
export type RunPlan =
  | {
      readonly kind: "run";
      /** Refresh and update every object (`up --refresh`), or only what changed in Git plus `drifted`. */
      readonly full: boolean;
      /** A heal of these objects alone. */
      readonly targets?: readonly ObjectId[];
      /** Objects the live view judges drifted, applied by a run that is not full. */
      readonly drifted?: readonly ObjectId[];
    }
  /** Nothing to do: the live view saw nothing drift; the run is recorded without calling the pipeline. */
  | { readonly kind: "skip"; readonly message: string };

/** What the worker knows when it plans a run. */
export interface RunPlanInput {
  readonly triggers: ReadonlySet<Trigger>;
  /** The objects named by live triggers, or "all" when any trigger named none. */
  readonly targets: readonly ObjectId[] | "all";
  /** A full run was asked for (`ferry reconcile --full`). */
  readonly fullRequested: boolean;
  /** No full run has succeeded since the worker started (or resumed): drift made meanwhile is unseen. */
  readonly fullDue: boolean;
  readonly detect: boolean;
  /** The last run failed: only a real run may turn the stack Ready again. */
  readonly stalled: boolean;
  /** The live view, when the stack has one. */
  readonly view?: { readonly synced: boolean; readonly drifted: readonly ObjectId[] };
}

/**
 * Plans a run: a live change heals the objects it names; the first run, the safety-net refresh, a
 * requested full run, and any run without a synced live view refresh everything; a drift tick
 * heals what the view judges drifted, or is skipped when nothing did; commit, manual and retry runs
 * apply what changed in Git plus what drifted. Detect mode always runs its full plan. Pure.
 */
export function planRun(input: RunPlanInput): RunPlan {
  const { triggers, view } = input;
  const only = (...allowed: Trigger[]): boolean => [...triggers].every((t) => allowed.includes(t));
  const named = input.targets === "all" ? [] : input.targets;
  if (input.detect) return { kind: "run", full: true };
  const explicitFull = input.fullRequested || triggers.has("start") || triggers.has("refresh") || input.fullDue;
  if (only("live") && input.targets !== "all" && !explicitFull) return { kind: "run", full: false, targets: named };
  if (explicitFull || !view?.synced) return { kind: "run", full: true };
  if (only("live", "drift")) {
    const heal = union(named, view.drifted);
    if (heal.length > 0) return { kind: "run", full: false, targets: heal };
    if (input.stalled) return { kind: "run", full: true };
    return { kind: "skip", message: "nothing drifted (live view)" };
  }
  return { kind: "run", full: false, drifted: union(named, view.drifted) };
}

function union(a: readonly ObjectId[], b: readonly ObjectId[]): ObjectId[] {
  return [...new Map([...a, ...b].map((id) => [resourceName(id), id])).values()];
}
