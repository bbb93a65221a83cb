import { createHash } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { IdentityReviewer, IdentityTarget, IdentityVerdict, ReviewedUser } from "./api-auth";

/** The group and plural of the Stack objects a control call is checked against (charts/ferry/crds/stacks.ferry.dev.yaml). */
const STACKS = { group: "ferry.dev", resource: "stacks" } as const;

/** Options of {@link cachedReviewer}; see {@link defaultReviewCacheOptions}. */
export interface ReviewCacheOptions {
  /** How long a verdict is reused, in milliseconds. */
  readonly ttlMs: number;
  /** Most verdicts kept; the oldest go first. */
  readonly maxEntries: number;
  /** The clock (tests pass their own). */
  readonly now: () => number;
}

/** The defaults: a verdict lives 10 s (a revoked RoleBinding bites within that), at most 1000 kept. */
export function defaultReviewCacheOptions(overrides: Partial<ReviewCacheOptions> = {}): ReviewCacheOptions {
  return { ttlMs: 10_000, maxEntries: 1000, now: Date.now, ...overrides };
}

/**
 * Wraps a reviewer so that one token and target is reviewed at most once per `ttlMs` (concurrent asks
 * share one review). Keys are a sha256 of token and target: the cache never holds a token. A review
 * that throws is not kept.
 */
export function cachedReviewer(inner: IdentityReviewer, options: ReviewCacheOptions = defaultReviewCacheOptions()): IdentityReviewer {
  const verdicts = new Map<string, { readonly until: number; readonly verdict: Promise<IdentityVerdict> }>();
  return {
    review(token, target) {
      const now = options.now();
      const key = createHash("sha256")
        .update(JSON.stringify([token, target.namespace, target.name, target.verb]))
        .digest("hex");
      const hit = verdicts.get(key);
      if (hit && hit.until > now) return hit.verdict;
      for (const [k, v] of verdicts) if (v.until <= now) verdicts.delete(k);
      while (verdicts.size >= options.maxEntries) verdicts.delete(verdicts.keys().next().value!);
      const verdict = inner.review(token, target);
      verdicts.set(key, { until: now + options.ttlMs, verdict });
      verdict.catch(() => {
        if (verdicts.get(key)?.verdict === verdict) verdicts.delete(key);
      });
      return verdict;
    },
  };
}

/** What a failed review call says: the API server's status, and the permission the agent needs when it was refused. */
function reviewError(what: string, permission: string, err: unknown): Error {
  if (!(err instanceof k8s.ApiException)) {
    // A network error names the server, not the request body (which holds the token).
    return new Error(`${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const fix = err.code === 403 ? `; the agent's ServiceAccount needs ${permission} (the chart's ClusterRole grants it)` : "";
  // Only the status code: the API server's answer is not repeated to the caller.
  return new Error(`${what} failed (HTTP ${err.code})${fix}`, { cause: err });
}

/**
 * The identity reviewer of the control API in a cluster: a TokenReview (authentication.k8s.io/v1) says
 * who the bearer token is, a SubjectAccessReview (authorization.k8s.io/v1) whether that user may
 * patch the Stack object. Runs with the agent's own credentials (it needs `create` on tokenreviews and
 * subjectaccessreviews); verdicts are cached (see {@link cachedReviewer}).
 */
export function kubeIdentityReviewer(kc: k8s.KubeConfig, cache: ReviewCacheOptions = defaultReviewCacheOptions()): IdentityReviewer {
  const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  const review = async (token: string, target: IdentityTarget): Promise<IdentityVerdict> => {
    let tokenReview: k8s.V1TokenReview;
    try {
      tokenReview = await authn.createTokenReview({
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
      });
    } catch (err) {
      throw reviewError("TokenReview", "create on tokenreviews.authentication.k8s.io", err);
    }
    const status = tokenReview.status;
    const info = status?.user;
    if (!status?.authenticated || !info?.username) {
      return { kind: "unauthenticated", reason: status?.error ?? "not authenticated" };
    }
    const user: ReviewedUser = { username: info.username, uid: info.uid, groups: info.groups ?? [] };
    let access: k8s.V1SubjectAccessReview;
    try {
      access = await authz.createSubjectAccessReview({
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: info.username,
            uid: info.uid,
            groups: info.groups,
            extra: info.extra,
            resourceAttributes: { ...STACKS, verb: target.verb, namespace: target.namespace, name: target.name },
          },
        },
      });
    } catch (err) {
      throw reviewError("SubjectAccessReview", "create on subjectaccessreviews.authorization.k8s.io", err);
    }
    const result = access.status;
    if (result?.allowed && !result.denied) return { kind: "allowed", user };
    return { kind: "forbidden", user, reason: result?.evaluationError || result?.reason || "" };
  };
  return cachedReviewer({ review }, cache);
}
