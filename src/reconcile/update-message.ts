/** Kinds of runs, as an update's message records them. */
export const RUN_KINDS = ["sync", "heal", "drift", "manual", "rollback", "resume"] as const;
/** What kind of run made an update. */
export type RunKind = (typeof RUN_KINDS)[number];

/** What an update's message says (the commit's metadata is recorded apart, in PULUMI_GIT_*). */
export interface UpdateMessage {
  readonly kind: RunKind;
  /** Short SHA of the commit applied. */
  readonly sha: string;
  readonly subject: string;
  /** Rollback only: the commit deployed before. */
  readonly from?: string;
  /** Rollback only: who rolled back. */
  readonly by?: string;
}

/** `sync 1a2b3c4: Add the web app`, `rollback 1a2b3c4 from 9f8e7d6 by alice: Add the web app`. Pure. */
export function formatUpdateMessage(m: UpdateMessage): string {
  const rollback = m.from || m.by ? ` from ${m.from ? m.from.slice(0, 7) : "-"} by ${m.by ?? "-"}` : "";
  // One line: the subject is the commit's first line.
  return `${m.kind} ${m.sha.slice(0, 7)}${rollback}: ${m.subject.split(/\r?\n/)[0]}`;
}

const PATTERN = new RegExp(`^(${RUN_KINDS.join("|")}) ([0-9a-f]{4,40})(?: from (\\S+) by (.+?))?: (.*)$`, "s");

/** Parses a message written by {@link formatUpdateMessage}; undefined for other messages. Pure. */
export function parseUpdateMessage(message: string): UpdateMessage | undefined {
  const m = PATTERN.exec(message);
  if (!m) return undefined;
  return {
    kind: m[1] as RunKind,
    sha: m[2]!,
    subject: m[5]!,
    from: m[3] && m[3] !== "-" ? m[3] : undefined,
    by: m[4] && m[4] !== "-" ? m[4] : undefined,
  };
}
