/** Something worth telling people about a stack. */
export interface Notification {
  readonly stack: string;
  readonly event: "failure" | "drift" | "recovery";
  readonly message: string;
  readonly revision?: string;
}

/** Where notifications go: a generic JSON webhook or a Slack-compatible one. */
export interface NotificationTarget {
  readonly type: "generic" | "slack";
  readonly url: string;
}

/** The body posted to a target. Pure. */
export function notificationBody(target: NotificationTarget, n: Notification): unknown {
  if (target.type === "slack") {
    const icon = n.event === "recovery" ? ":white_check_mark:" : n.event === "drift" ? ":warning:" : ":x:";
    return { text: `${icon} ferry ${n.stack}: ${n.event}${n.revision ? ` at ${n.revision.slice(0, 7)}` : ""}: ${n.message}` };
  }
  return { source: "ferry", ...n, time: new Date().toISOString() };
}

/** Posts a notification to every target; a target that fails is reported, never fatal. */
export async function notify(targets: readonly NotificationTarget[], n: Notification, onError: (m: string) => void): Promise<void> {
  await Promise.all(
    targets.map(async (t) => {
      try {
        const res = await fetch(t.url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(notificationBody(t, n)),
          signal: AbortSignal.timeout(10_000),
        });
        if (!res.ok) onError(`notification to ${t.type} webhook answered ${res.status}`);
      } catch (err) {
        onError(`notification to ${t.type} webhook failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }),
  );
}
