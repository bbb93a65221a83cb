import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  authorizeRequest,
  controlledStack,
  decideIdentity,
  IdentityReviewer,
  IdentityReviewNeeded,
  IdentityTarget,
  IdentityVerdict,
  RequestHead,
} from "../../src/agent/api-auth";
import * as k8s from "@kubernetes/client-node";
import { cachedReviewer, defaultReviewCacheOptions, kubeIdentityReviewer } from "../../src/agent/kube-auth";

const TOKEN = "0123456789abcdef0123456789abcdef";
const SA_TOKEN = "eyJhbGciOiJSUzI1NiJ9.service-account-token.signature";
const USER = { username: "system:serviceaccount:apps:deployer", groups: ["system:serviceaccounts"] };
const head = (pathname: string, headers: Record<string, string> = {}, method = "POST"): RequestHead => ({ method, pathname, headers });
/** Operator mode: worker names are `<namespace>.<name>`. */
const stackTarget = (stack: string) => {
  const dot = stack.indexOf(".");
  return dot > 0 ? { namespace: stack.slice(0, dot), name: stack.slice(dot + 1) } : undefined;
};

/** The whole access rule with a reviewer, as handleRequest runs it. */
async function decide(h: RequestHead, token: string, reviewer: IdentityReviewer) {
  const d = authorizeRequest(h, token, stackTarget);
  return d.allow === "review" ? decideIdentity(h, d, await reviewer.review(d.bearer, d.target)) : d;
}

/** A reviewer that answers from a table of tokens and records what it was asked (tokens replaced by their role). */
function fakeReviewer(asked: string[] = []): IdentityReviewer {
  return {
    review: (token, target) => {
      asked.push(`${target.verb} ${target.namespace}/${target.name}`);
      const verdict: IdentityVerdict =
        token === SA_TOKEN
          ? target.namespace === "apps"
            ? { kind: "allowed", user: USER }
            : { kind: "forbidden", user: USER, reason: "" }
          : { kind: "unauthenticated", reason: "[invalid bearer token, token lookup failed]" };
      return Promise.resolve(verdict);
    },
  };
}

describe("control API with Kubernetes identities", () => {
  it("names the stack a control call concerns as the router reads the path", () => {
    assert.equal(controlledStack("/api/stacks/apps.web/suspend"), "apps.web");
    assert.equal(controlledStack("//api//stacks/apps.web/resume"), "apps.web");
    assert.equal(controlledStack("/api/stacks"), undefined);
    assert.equal(controlledStack("/hooks/generic"), undefined);
  });

  it("lets an identity allowed to patch the Stack object through, checked against <namespace>/<name>", async () => {
    const asked: string[] = [];
    const d = await decide(head("/api/stacks/apps.web/suspend", { authorization: `Bearer ${SA_TOKEN}` }), TOKEN, fakeReviewer(asked));
    assert.deepEqual(d, { allow: true });
    assert.deepEqual(asked, ["patch apps/web"]);
  });

  it("answers 401 to a token the API server does not know, and never echoes it", async () => {
    const d = await decide(head("/api/stacks/apps.web/suspend", { authorization: "Bearer garbage-token" }), TOKEN, fakeReviewer());
    assert.equal(!d.allow && d.status, 401);
    assert.match(!d.allow ? d.error : "", /neither ferry's API token nor a valid Kubernetes token \(TokenReview: \[invalid bearer token/);
    assert.ok(!d.allow && !d.error.includes("garbage-token"));
  });

  it("answers 403 naming the user and the missing permission when the identity may not patch the stack", async () => {
    const d = await decide(head("/api/stacks/prod.web/resume", { authorization: `Bearer ${SA_TOKEN}` }), TOKEN, fakeReviewer());
    assert.equal(!d.allow && d.status, 403);
    assert.equal(
      !d.allow && d.error,
      'system:serviceaccount:apps:deployer may not patch stacks.ferry.dev "web" in namespace "prod"; ' +
        'grant it with a Role (apiGroups: [ferry.dev], resources: [stacks], verbs: [patch]) and a RoleBinding in "prod"',
    );
  });

  it("scrubs the token from a reviewer's reason", () => {
    const review: IdentityReviewNeeded = { allow: "review", bearer: SA_TOKEN, target: { namespace: "a", name: "b", verb: "patch" } };
    const h = head("/api/stacks/a.b/resume");
    for (const verdict of [
      { kind: "unauthenticated", reason: `bad ${SA_TOKEN}` },
      { kind: "forbidden", user: USER, reason: `no ${SA_TOKEN}` },
    ] as IdentityVerdict[]) {
      const d = decideIdentity(h, review, verdict);
      assert.ok(!d.allow && !d.error.includes(SA_TOKEN) && d.error.includes("<token>"), verdict.kind);
    }
  });

  it("keeps the static token working without asking the reviewer", async () => {
    const asked: string[] = [];
    const d = await decide(head("/api/stacks/apps.web/suspend", { authorization: `Bearer ${TOKEN}` }), TOKEN, fakeReviewer(asked));
    assert.deepEqual(d, { allow: true });
    // Also for a stack that is no Stack object (the config-file stacks of the same agent).
    assert.deepEqual(await decide(head("/api/stacks/dev/suspend", { authorization: `Bearer ${TOKEN}` }), TOKEN, fakeReviewer(asked)), {
      allow: true,
    });
    assert.deepEqual(asked, []);
  });

  it("with no static token configured but a reviewer present, identities still work (the API is not disabled)", async () => {
    const ok = await decide(head("/api/stacks/apps.web/reconcile", { authorization: `Bearer ${SA_TOKEN}` }), "", fakeReviewer());
    assert.deepEqual(ok, { allow: true });
    const none = await decide(head("/api/stacks/apps.web/reconcile"), "", fakeReviewer());
    assert.equal(!none.allow && none.status, 401);
    assert.match(!none.allow ? none.error : "", /missing bearer token.*kubectl create token/);
  });

  it("refuses an identity for a stack that is no Stack object (401), without asking the reviewer", async () => {
    const asked: string[] = [];
    const d = await decide(head("/api/stacks/dev/resume", { authorization: `Bearer ${SA_TOKEN}` }), "", fakeReviewer(asked));
    assert.equal(!d.allow && d.status, 401);
    assert.match(!d.allow ? d.error : "", /"dev" is none/);
    assert.deepEqual(asked, []);
  });

  it("keeps the other rules: reads and webhooks go on, cross-origin 403, a non-JSON body 415 after the identity", async () => {
    const asked: string[] = [];
    const reviewer = fakeReviewer(asked);
    assert.deepEqual(await decide(head("/api/stacks/apps.web", {}, "GET"), "", reviewer), { allow: true });
    assert.deepEqual(await decide(head("/hooks/github", { "content-type": "text/plain" }), "", reviewer), { allow: true });
    const cross = await decide(
      head("/api/stacks/apps.web/resume", { authorization: `Bearer ${SA_TOKEN}`, origin: "http://evil.example", host: "ferry:8080" }),
      "",
      reviewer,
    );
    assert.equal(!cross.allow && cross.status, 403);
    assert.deepEqual(asked, []);
    const plain = await decide(
      head("/api/stacks/apps.web/resume", { authorization: `Bearer ${SA_TOKEN}`, "content-type": "text/plain", "content-length": "1" }),
      "",
      reviewer,
    );
    assert.equal(!plain.allow && plain.status, 415);
  });

  it("without a reviewer, behaves as before: 403 while no token is configured, 401 with a wrong one", () => {
    const h = head("/api/stacks/apps.web/resume", { authorization: `Bearer ${SA_TOKEN}` });
    const off = authorizeRequest(h, "");
    assert.equal(off.allow === false && off.status, 403);
    const wrong = authorizeRequest(h, TOKEN);
    assert.equal(wrong.allow === false && wrong.status, 401);
  });
});

describe("identity review cache", () => {
  const target: IdentityTarget = { namespace: "apps", name: "web", verb: "patch" };

  it("reuses a verdict for the same token and target within its lifetime, and asks again after", async () => {
    let now = 1_000;
    let reviews = 0;
    const reviewer = cachedReviewer(
      {
        review: () => {
          reviews++;
          return Promise.resolve({ kind: "allowed", user: USER });
        },
      },
      defaultReviewCacheOptions({ now: () => now }),
    );
    // Concurrent asks share one review.
    await Promise.all([reviewer.review(SA_TOKEN, target), reviewer.review(SA_TOKEN, target)]);
    now += 9_999;
    await reviewer.review(SA_TOKEN, target);
    assert.equal(reviews, 1);
    await reviewer.review(SA_TOKEN, { ...target, name: "api" });
    await reviewer.review("another-token", target);
    assert.equal(reviews, 3);
    now += 1;
    await reviewer.review(SA_TOKEN, target);
    assert.equal(reviews, 4);
  });

  it("does not keep a failed review, and stays within its size", async () => {
    let fail = true;
    let reviews = 0;
    const reviewer = cachedReviewer(
      {
        review: () => {
          reviews++;
          return fail
            ? Promise.reject(new Error("TokenReview failed (HTTP 503)"))
            : Promise.resolve({ kind: "unauthenticated", reason: "" });
        },
      },
      defaultReviewCacheOptions({ maxEntries: 2 }),
    );
    await assert.rejects(reviewer.review(SA_TOKEN, target), /HTTP 503/);
    fail = false;
    assert.equal((await reviewer.review(SA_TOKEN, target)).kind, "unauthenticated");
    assert.equal(reviews, 2);
    for (const t of ["a", "b", "c"]) await reviewer.review(t, target);
    // SA_TOKEN's verdict was pushed out by the newer ones.
    await reviewer.review(SA_TOKEN, target);
    assert.equal(reviews, 6);
  });
});

describe("Kubernetes identity reviewer", () => {
  it("fails with the review it could not make, never the token, when the API server cannot be reached", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: "http://127.0.0.1:9", skipTLSVerify: true }],
      users: [{ name: "u", token: "agent-token" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    await assert.rejects(kubeIdentityReviewer(kc).review(SA_TOKEN, { namespace: "apps", name: "web", verb: "patch" }), (err: Error) => {
      assert.match(err.message, /^TokenReview failed: /);
      assert.ok(!err.message.includes(SA_TOKEN) && !err.message.includes("agent-token"), err.message);
      return true;
    });
  });
});
