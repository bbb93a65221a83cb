import { ChangeCounts } from "./change-summary";
import { Revision } from "../source/git-source";
import { FailureReason } from "./reconcile-result";

/** What a merge would do to one object. */
export type PreviewOp = "create" | "update" | "replace" | "delete";

/** One field an update or replace changes; values of Secrets and Pulumi secrets are masked. */
export interface FieldDiff {
  /** Property path inside the object, e.g. `data.GREETING` or `spec.template.spec.containers[0].image`. */
  readonly path: string;
  readonly kind: "add" | "update" | "delete";
  /** The value now (absent for "add"); `[secret]` when masked. */
  readonly old?: unknown;
  /** The value after the merge (absent for "delete"); `[secret]` when masked. */
  readonly new?: unknown;
}

/** One object a merge would create, update, replace or delete. */
export interface PreviewObjectChange {
  readonly op: PreviewOp;
  /** `Kind/namespace/name` (or `Kind/name` when cluster-scoped). */
  readonly object: string;
  /** Field-level diffs of an update or replace; empty for create and delete. */
  readonly fields: readonly FieldDiff[];
}

/** The outcome of `ferry preview` for one stack: data, rendered later as text, JSON or Markdown. */
export interface PreviewReport {
  readonly stack: string;
  /** The ref asked for (branch, tag or SHA). */
  readonly ref: string;
  readonly succeeded: boolean;
  /** Why the preview failed (the ref's files do not load, the cluster is unreachable...). */
  readonly reason?: FailureReason;
  readonly message?: string;
  /** The commit previewed, when the source was fetched. */
  readonly revision?: Revision;
  /** Counts per operation; `unchanged` counts the objects left as they are. */
  readonly changes?: ChangeCounts;
  /** Every object that would change, in the order of the preview. */
  readonly objects: readonly PreviewObjectChange[];
  readonly durationMs: number;
}

/** Whether a successful preview would change anything (the exit code 1 of `ferry preview`). */
export function previewHasChanges(report: PreviewReport): boolean {
  return report.objects.length > 0;
}
