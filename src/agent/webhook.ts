import { createHmac, timingSafeEqual } from "node:crypto";

/** Which receiver a push arrived at; each verifies its provider's signature scheme. */
export type WebhookKind = "github" | "gitlab" | "generic";

/** Constant-time comparison of two strings (false when lengths differ). */
function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verifies a push: GitHub `X-Hub-Signature-256: sha256=<hmac>`, GitLab `X-Gitlab-Token: <secret>`,
 * generic `X-Signature: sha256=<hmac>`. Pure.
 */
export function verifyWebhook(
  kind: WebhookKind,
  headers: Readonly<Record<string, string | undefined>>,
  body: Buffer,
  secret: string,
): boolean {
  if (!secret) return false;
  const hmac = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
  switch (kind) {
    case "github":
      return safeEqual(headers["x-hub-signature-256"] ?? "", hmac);
    case "gitlab":
      return safeEqual(headers["x-gitlab-token"] ?? "", secret);
    case "generic":
      return safeEqual(headers["x-signature"] ?? "", hmac);
  }
}

/** The branch a push payload names (`ref: refs/heads/<branch>` in GitHub, GitLab and ours), if any. Pure. */
export function pushedBranch(body: Buffer): string | undefined {
  try {
    const payload = JSON.parse(body.toString("utf8")) as { ref?: unknown };
    return typeof payload.ref === "string" && payload.ref.startsWith("refs/heads/") ? payload.ref.slice("refs/heads/".length) : undefined;
  } catch {
    return undefined;
  }
}
