import { createHash, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";

/** How to enable the control API, said in every refusal that concerns the token (never the token itself). */
export const API_TOKEN_HELP =
  "set FERRY_API_TOKEN (or FERRY_API_TOKEN_FILE, a file holding it) for `ferry run`, and the same for `ferry reconcile|suspend|resume`";

/** Shortest token `ferry run` accepts: a guessable token would be no lock at all. */
export const MIN_API_TOKEN_LENGTH = 16;

/**
 * The control API's bearer token: FERRY_API_TOKEN, else the trimmed content of FERRY_API_TOKEN_FILE,
 * else "" (none configured). Throws when the file cannot be read; the message never holds the token.
 */
export function readApiToken(env: NodeJS.ProcessEnv): string {
  if (env.FERRY_API_TOKEN) return env.FERRY_API_TOKEN.trim();
  const file = env.FERRY_API_TOKEN_FILE;
  if (!file) return "";
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new Error(`FERRY_API_TOKEN_FILE ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`, { cause: err });
  }
}

/** The head of an HTTP request, as {@link authorizeRequest} judges it (header names in lower case). */
export interface RequestHead {
  readonly method: string;
  readonly pathname: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
}

/** Whether a request may go on to routing, or the status and message it is refused with. */
export type ApiDecision = { readonly allow: true } | { readonly allow: false; readonly status: 401 | 403 | 415; readonly error: string };

/**
 * Whether a request may change state: anything but GET and HEAD under `/api/` (today
 * `POST /api/stacks/<name>/reconcile|suspend|resume`). Webhooks (`/hooks/`) carry their own HMAC. Pure.
 */
export function isControlRequest(method: string, pathname: string): boolean {
  // By segments, as the router reads the path: `//api/...` must not slip past as "not under /api/".
  return method !== "GET" && method !== "HEAD" && pathname.split("/").find((s) => s !== "") === "api";
}

/**
 * Whether an `Origin` header names the server's own origin (the host the request was sent to). ferry
 * serves no web pages, so in practice any Origin a browser sends is another site's; "null" never matches. Pure.
 */
export function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && url.host === host.toLowerCase();
}

/** Compares `Authorization: Bearer <token>` with the configured token in constant time. Pure. */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const presented = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? "")?.[1];
  if (!token || !presented) return false;
  // Digests have one length, so neither the comparison nor its length check tells anything about the token.
  const digest = (s: string): Buffer => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(presented), digest(token));
}

/**
 * The runner's access rule, before routing:
 * 1. a request whose `Origin` is another site's is refused (403): a browser page cannot reach the API;
 * 2. reads (health, readiness, metrics, `GET /api/stacks`) and webhooks (HMAC-verified later) go on;
 * 3. a state-changing call is refused while no token is configured (403: the control API is off),
 *    without the right `Authorization: Bearer <token>` (401), or with a body that is not JSON (415),
 *    so a cross-site "simple" POST (text/plain, form) never counts. Pure.
 */
export function authorizeRequest(head: RequestHead, token: string): ApiDecision {
  const origin = head.headers.origin;
  if (origin !== undefined && !isSameOrigin(origin, head.headers.host)) {
    return { allow: false, status: 403, error: `cross-origin request from ${origin} refused: the ferry API serves no browser pages` };
  }
  if (!isControlRequest(head.method, head.pathname)) return { allow: true };
  if (!token) return { allow: false, status: 403, error: `the control API is disabled: no token is configured; ${API_TOKEN_HELP}` };
  if (!bearerMatches(head.headers.authorization, token)) {
    return { allow: false, status: 401, error: `missing or wrong bearer token (Authorization: Bearer <token>); ${API_TOKEN_HELP}` };
  }
  const type = head.headers["content-type"];
  const length = head.headers["content-length"];
  const hasBody = head.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
  if ((type !== undefined || hasBody) && !/^application\/json\s*(;|$)/i.test(type ?? "")) {
    return { allow: false, status: 415, error: "send no body, or Content-Type: application/json" };
  }
  return { allow: true };
}
