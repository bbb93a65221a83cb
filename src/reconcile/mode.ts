import { ObjectId } from "../desired-state/object-id";
import { Pin } from "./pin";
import { RunKind } from "./update-message";

/**
 * What a run of the pipeline is for. Every run fetches and builds the same way; the mode decides
 * which commit, what the engine does, and what is recorded.
 * - apply: make the cluster match the followed branch (or the pinned commit); `unpin` lifts a pin;
 *   `scope` says whether every object is refreshed and updated or only what changed or drifted.
 * - detect: a refreshing plan that reports drift and changes nothing.
 * - heal: apply only these drifted objects (a targeted update).
 * - rollback: apply an earlier commit and pin the stack to it.
 * - preview: what merging `ref` would do, in a checkout and workspace of its own; nothing is written.
 */
export type Mode =
  | {
      readonly kind: "apply";
      readonly run: Extract<RunKind, "sync" | "drift" | "manual">;
      readonly unpin?: boolean;
      /**
       * How much of the stack the run reads and writes: `full` refreshes every object from the
       * cluster and updates all of them (the safety net: it also finds drift nobody watched);
       * `changed` touches only the objects whose desired state differs from what the last update
       * applied, the `drifted` ones, and deletions of what Git no longer declares.
       */
      readonly scope: "full" | "changed";
      /** Objects the live view saw drift from what ferry applied (a `changed` run applies them too). */
      readonly drifted?: readonly ObjectId[];
    }
  | { readonly kind: "detect" }
  | { readonly kind: "heal"; readonly targets: readonly ObjectId[] }
  | { readonly kind: "rollback"; readonly pin: Omit<Pin, "at" | "head"> }
  | {
      readonly kind: "preview";
      readonly ref: string;
      /** Only when the change base...ref touches the stack's folder or a shared folder (a pull request's base). */
      readonly base?: string;
      /** Every stack's cluster folder, to tell a stack's own folder from shared folders. */
      readonly stackFolders?: readonly string[];
    };

/** Whether a mode changes the cluster (and so runs under the stack's lock and may be recorded). */
export function writes(mode: Mode): boolean {
  return mode.kind === "apply" || mode.kind === "heal" || mode.kind === "rollback";
}

/** The kind of run an update of this mode records (`ferry history`'s RUN column). */
export function runKind(mode: Mode, unpinned: boolean): RunKind {
  switch (mode.kind) {
    case "rollback":
      return "rollback";
    case "heal":
      return "heal";
    case "apply":
      return unpinned ? "resume" : mode.run;
    default:
      return "sync";
  }
}
