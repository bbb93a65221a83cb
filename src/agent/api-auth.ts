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

/** The Stack object a control call concerns, and what the caller must be allowed to do to it. */
export interface IdentityTarget {
  readonly namespace: string;
  readonly name: string;
  readonly verb: "patch";
}

/** A user as the API server's TokenReview names it. */
export interface ReviewedUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
}

/** What the identity reviewer said of a bearer token and a target (never holding the token). */
export type IdentityVerdict =
  | { readonly kind: "allowed"; readonly user: ReviewedUser }
  | { readonly kind: "unauthenticated"; readonly reason: string }
  | { readonly kind: "forbidden"; readonly user: ReviewedUser; readonly reason: string };

/** Judges a Kubernetes bearer token: who it is (TokenReview) and whether it may change the target (SubjectAccessReview). */
export interface IdentityReviewer {
  review(token: string, target: IdentityTarget): Promise<IdentityVerdict>;
}

/** A control call whose bearer token is not the static one: the identity reviewer decides, then {@link decideIdentity}. */
export interface IdentityReviewNeeded {
  readonly allow: "review";
  readonly bearer: string;
  readonly target: IdentityTarget;
}

/** Where the control API finds the Stack object behind a stack name (operator mode); absent outside a cluster. */
export type StackTargetLookup = (stackName: string) => { readonly namespace: string; readonly name: string } | undefined;

/** The stack a control call names (`/api/stacks/<name>/...`, the raw segment as the router reads it), if any. Pure. */
export function controlledStack(pathname: string): string | undefined {
  const parts = pathname.split("/").filter(Boolean);
  return parts[0] === "api" && parts[1] === "stacks" && parts[2] ? parts[2] : undefined;
}

/** The bearer token of an `Authorization` header, if it has the form `Bearer <token>`. Pure. */
export function presentedBearer(authorization: string | undefined): string | undefined {
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? "")?.[1];
}

/** Compares `Authorization: Bearer <token>` with the configured token in constant time. Pure. */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const presented = presentedBearer(authorization);
  if (!token || !presented) return false;
  // Digests have one length, so neither the comparison nor its length check tells anything about the token.
  const digest = (s: string): Buffer => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(presented), digest(token));
}

/** The last rule of a control call that got past authentication: no body, or a JSON one (415 otherwise). Pure. */
function bodyDecision(head: RequestHead): ApiDecision {
  const type = head.headers["content-type"];
  const length = head.headers["content-length"];
  const hasBody = head.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
  if ((type !== undefined || hasBody) && !/^application\/json\s*(;|$)/i.test(type ?? "")) {
    return { allow: false, status: 415, error: "send no body, or Content-Type: application/json" };
  }
  return { allow: true };
}

/** How to call the control API with a Kubernetes identity, said in refusals of the identity path. */
const IDENTITY_HELP =
  "send `Authorization: Bearer <token>` with ferry's API token or a Kubernetes token (e.g. `kubectl create token <serviceaccount>`)";

/**
 * The runner's access rule, before routing:
 * 1. a request whose `Origin` is another site's is refused (403): a browser page cannot reach the API;
 * 2. reads (health, readiness, metrics, `GET /api/stacks`) and webhooks (HMAC-verified later) go on;
 * 3. a state-changing call with the configured static token goes on (4.);
 *    without one: with `stackTarget` (operator mode: an identity reviewer is present) a bearer token for
 *    a stack with a Stack object is left to the reviewer ({@link IdentityReviewNeeded}, then
 *    {@link decideIdentity}); otherwise it is refused while no token is configured (403: the control
 *    API is off) or without the right `Authorization: Bearer <token>` (401);
 * 4. a body that is not JSON is refused (415), so a cross-site "simple" POST (text/plain, form) never counts. Pure.
 */
export function authorizeRequest(head: RequestHead, token: string): ApiDecision;
export function authorizeRequest(head: RequestHead, token: string, stackTarget: StackTargetLookup): ApiDecision | IdentityReviewNeeded;
export function authorizeRequest(head: RequestHead, token: string, stackTarget?: StackTargetLookup): ApiDecision | IdentityReviewNeeded {
  const origin = head.headers.origin;
  if (origin !== undefined && !isSameOrigin(origin, head.headers.host)) {
    return { allow: false, status: 403, error: `cross-origin request from ${origin} refused: the ferry API serves no browser pages` };
  }
  if (!isControlRequest(head.method, head.pathname)) return { allow: true };
  if (bearerMatches(head.headers.authorization, token)) return bodyDecision(head);
  if (stackTarget) {
    const bearer = presentedBearer(head.headers.authorization);
    if (!bearer) return { allow: false, status: 401, error: `missing bearer token; ${IDENTITY_HELP}` };
    const stack = controlledStack(head.pathname);
    const object = stack === undefined ? undefined : stackTarget(stack);
    if (!object) {
      return {
        allow: false,
        status: 401,
        error: `wrong bearer token: a Kubernetes identity may only change a stack that is a Stack object, and "${stack ?? head.pathname}" is none`,
      };
    }
    return { allow: "review", bearer, target: { ...object, verb: "patch" } };
  }
  if (!token) return { allow: false, status: 403, error: `the control API is disabled: no token is configured; ${API_TOKEN_HELP}` };
  return { allow: false, status: 401, error: `missing or wrong bearer token (Authorization: Bearer <token>); ${API_TOKEN_HELP}` };
}

/**
 * The access decision once the identity reviewer has judged the token of an {@link IdentityReviewNeeded}:
 * unauthenticated -> 401, authenticated but not allowed -> 403 naming the user and the missing
 * permission, allowed -> the body rule. Never echoes the token, even should a reason hold it. Pure.
 */
export function decideIdentity(head: RequestHead, review: IdentityReviewNeeded, verdict: IdentityVerdict): ApiDecision {
  const scrub = (reason: string): string => (reason ? `: ${reason.split(review.bearer).join("<token>")}` : "");
  switch (verdict.kind) {
    case "unauthenticated":
      return {
        allow: false,
        status: 401,
        error: `the bearer token is neither ferry's API token nor a valid Kubernetes token (TokenReview${scrub(verdict.reason)}); ${IDENTITY_HELP}`,
      };
    case "forbidden": {
      const { namespace, name, verb } = review.target;
      return {
        allow: false,
        status: 403,
        error:
          `${verdict.user.username} may not ${verb} stacks.ferry.dev "${name}" in namespace "${namespace}"${scrub(verdict.reason)}; ` +
          `grant it with a Role (apiGroups: [ferry.dev], resources: [stacks], verbs: [${verb}]) and a RoleBinding in "${namespace}"`,
      };
    }
    case "allowed":
      return bodyDecision(head);
  }
}
