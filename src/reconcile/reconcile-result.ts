import { ChangeCounts, ObjectChange } from "./change-summary";
import { Revision } from "../source/git-source";
import { Pin } from "./pin";
import { UnitReadiness } from "./health";
import { EngineStep } from "./ports";
import { UnitFailure } from "../desired-state/unit-isolation";

/**
 * Why a run did not succeed, in the vocabulary of Flux's conditions:
 * - SourceFailed: the config repo could not be fetched, or has no such ref;
 * - BuildFailed: the commit's files do not load or render (file and line named);
 * - GuardRefused: a guard protected the cluster (an empty folder, too large a prune, a delete of an object Git declares);
 * - DryRunFailed: the API server refuses an object of the commit (file and line named); nothing was applied;
 * - ApplyFailed: the engine failed while applying, or the stack's state could not be read;
 * - Locked: another run holds the stack;
 * - HealthCheckFailed: a unit that asks to be waited for (`wait`, `healthChecks`) was not ready within
 *   its timeout, or failed; everything was applied and stays so.
 */
export type FailureReason =
  "SourceFailed" | "BuildFailed" | "GuardRefused" | "DryRunFailed" | "ApplyFailed" | "Locked" | "HealthCheckFailed";

/** One changed object of a run. */
export interface ObjectStep {
  readonly change: Exclude<ObjectChange, "unchanged">;
  /** `Kind/namespace/name` (cluster-scoped: `Kind/name`). */
  readonly object: string;
}

/** The outcome of one run, as data: rendered later into output, logs, status and PR comments. */
export interface ReconcileResult {
  readonly stack: string;
  readonly succeeded: boolean;
  readonly reason?: FailureReason;
  readonly message?: string;
  readonly revision?: Revision;
  readonly changes?: ChangeCounts;
  readonly objects: readonly ObjectStep[];
  readonly durationMs: number;
  /** Detect mode: whether the cluster differs from Git (the changes an apply would make). */
  readonly drift?: boolean;
  /** The pin in force after the run: the stack is held at a rolled-back commit. */
  readonly pin?: Pin;
  /** The run lifted the stack's pin: on request (resume) or because the branch moved (new-commit). */
  readonly unpinned?: "resume" | "new-commit";
  /** Preview mode: the engine's plan, step by step (with field diffs). */
  readonly planned?: readonly EngineStep[];
  /** Preview mode with a base: the change does not touch this stack, nothing was previewed. */
  readonly skipped?: boolean;
  /** Runs that apply: each unit's readiness after the apply (kstatus's rules), and whether it was waited for. */
  readonly units?: readonly UnitReadiness[];
  /**
   * Units that failed (or waited for one that failed): the run applied the others, and left what
   * these declared as it was. `reason` is then the first one's.
   */
  readonly failedUnits?: readonly UnitFailure[];
  /**
   * Runs that apply: how much of the stack the update read and wrote — every object (`full`), the
   * `targets` (what changed, drifted or left Git; a heal's objects), or `none` (nothing differed
   * from what the last update applied: the engine did not run) — and how many objects that was.
   */
  readonly scope?: { readonly kind: "full" | "targets" | "none"; readonly objects: number };
}
