import { ChangeCounts } from "./change-summary";
import { Revision } from "../source/git-source";
import { Pin } from "./pin";

/** Why a reconcile did not succeed, in the vocabulary of Flux's conditions. */
export type FailureReason = "SourceFailed" | "BuildFailed" | "GuardRefused" | "ApplyFailed" | "Locked";

/** One changed object of a run. */
export interface ObjectStep {
  readonly change: string;
  readonly object: string;
}

/** The outcome of one reconcile, as data: rendered later into output, logs and status. */
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
}
