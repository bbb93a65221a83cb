import { parseUpdateMessage, RunKind } from "./update-message";

/** One update of a stack as Pulumi's history records it (the fields ferry reads). */
export interface UpdateRecord {
  readonly version: number;
  readonly kind: string;
  readonly startTime: Date | string;
  readonly endTime?: Date | string;
  readonly message: string;
  readonly result: string;
  readonly environment?: Readonly<Record<string, string>>;
  readonly resourceChanges?: Readonly<Record<string, number | undefined>>;
}

/** One line of `ferry history`: who changed what, when, and how it went. */
export interface HistoryEntry {
  /** Pulumi's update version (the number `ferry rollback --to` accepts). */
  readonly version: number;
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly result: "succeeded" | "failed" | "in-progress";
  /** sync (a commit), heal (live drift), drift (the drift interval), manual, rollback, resume; unknown for updates ferry did not make. */
  readonly run: RunKind | "unknown";
  /** The config repo's commit applied. */
  readonly sha?: string;
  readonly ref?: string;
  readonly author?: string;
  readonly authorEmail?: string;
  readonly subject?: string;
  /** Rollbacks: the commit deployed before, and who rolled back. */
  readonly from?: string;
  readonly by?: string;
  /** Pulumi's resource counts of the update (objects plus ferry's grouping components). */
  readonly changes: {
    readonly create: number;
    readonly update: number;
    readonly replace: number;
    readonly delete: number;
    readonly same: number;
  };
}

/**
 * Turns Pulumi's whole stack history (every operation, newest first, as `pulumi stack history`
 * lists it) into ferry's history: updates only (not refreshes), newest first. Pure.
 */
export function historyEntries(updates: readonly UpdateRecord[]): HistoryEntry[] {
  // The file backend records no version numbers (all 0): number its operations 1.. from the oldest,
  // as the Pulumi Cloud does, so `ferry rollback --to <version>` works on every backend. Pulumi's
  // own order decides, not the start times: the file backend keeps them to the second only.
  const numbered = updates.every((u) => !u.version) ? updates.map((u, i) => ({ ...u, version: updates.length - i })) : updates;
  return numbered
    .filter((u) => u.kind === "update")
    .map((u) => {
      const env = u.environment ?? {};
      const message = parseUpdateMessage(u.message ?? "");
      const rc = u.resourceChanges ?? {};
      const n = (k: string): number => rc[k] ?? 0;
      return {
        version: u.version,
        startedAt: iso(u.startTime),
        endedAt: u.endTime ? iso(u.endTime) : undefined,
        result: u.result === "succeeded" ? "succeeded" : u.result === "failed" ? "failed" : "in-progress",
        run: message?.kind ?? "unknown",
        sha: env["git.head"],
        ref: env["git.headName"],
        author: env["git.author"],
        authorEmail: env["git.author.email"],
        subject: message?.subject ?? (u.message || undefined),
        from: message?.from,
        by: message?.by,
        changes: { create: n("create") + n("import"), update: n("update"), replace: n("replace"), delete: n("delete"), same: n("same") },
      } satisfies HistoryEntry;
    })
    .sort((a, b) => b.version - a.version);
}

function iso(t: Date | string): string {
  return (t instanceof Date ? t : new Date(t)).toISOString();
}

/** A rollback target that cannot be used, with the reason. */
export class RollbackTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RollbackTargetError";
  }
}

/**
 * Which commit `ferry rollback --to <target>` goes back to. Only commits the stack applied
 * successfully before count (known-good states):
 * - `previous`: the newest such commit other than the one deployed now;
 * - a number: that update version of `ferry history`;
 * - a SHA or an unambiguous prefix of 4 or more hex digits.
 * Pure; throws {@link RollbackTargetError} with the reason.
 */
export function resolveRollbackTarget(entries: readonly HistoryEntry[], target: string): { sha: string; entry: HistoryEntry } {
  const good = entries.filter((e) => e.result === "succeeded" && e.sha).sort((a, b) => b.version - a.version);
  const current = good[0]?.sha;
  if (target === "previous") {
    const entry = good.find((e) => e.sha !== current);
    if (!entry) {
      throw new RollbackTargetError(
        current
          ? `the stack's history has no successful update of a commit other than the deployed ${current.slice(0, 7)}`
          : "the stack's history has no successful update to roll back to",
      );
    }
    return { sha: entry.sha!, entry };
  }
  if (/^\d+$/.test(target) && target.length < 7) {
    const entry = entries.find((e) => e.version === Number(target));
    if (!entry) throw new RollbackTargetError(`the stack's history has no update ${target} (see ferry history)`);
    if (entry.result !== "succeeded") {
      throw new RollbackTargetError(`update ${target} did not succeed (${entry.result}); roll back to a known-good update`);
    }
    if (!entry.sha) {
      throw new RollbackTargetError(`update ${target} recorded no commit of the config repo (not made by ferry); pick an update that did`);
    }
    return { sha: entry.sha, entry };
  }
  if (!/^[0-9a-f]{4,40}$/i.test(target)) {
    throw new RollbackTargetError(`"${target}" is not a commit SHA, an update number or "previous"`);
  }
  const matches = [...new Set(good.filter((e) => e.sha!.startsWith(target.toLowerCase())).map((e) => e.sha!))];
  if (matches.length > 1) {
    throw new RollbackTargetError(
      `"${target}" matches ${matches.length} commits of the history (${matches.map((s) => s.slice(0, 10)).join(", ")}); give more digits`,
    );
  }
  if (matches.length === 0) {
    throw new RollbackTargetError(
      `commit ${target} is not in the stack's history of successful updates; ferry rolls back only to a state it applied before (see ferry history), or deploy it with ferry sync --ref`,
    );
  }
  const entry = good.find((e) => e.sha === matches[0])!;
  return { sha: entry.sha!, entry };
}
