import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { authorizeRequest, bearerMatches, IdentityReviewer, isControlRequest, isSameOrigin, readApiToken } from "../../src/agent/api-auth";
import { loadRunnerConfig, RunnerConfig } from "../../src/agent/runner-config";
import { RunnerMetrics } from "../../src/agent/runner-metrics";
import { handleRequest, RunnerView, ServedRoutes } from "../../src/agent/runner-server";
import { StackWorker } from "../../src/agent/stack-worker";
import { tempDir } from "../helpers/temp-dir";

const TOKEN = "0123456789abcdef0123456789abcdef";
const head = (method: string, pathname: string, headers: Record<string, string> = {}) => ({ method, pathname, headers });

describe("control API access rule", () => {
  it("lets reads and webhooks through without a token, and no GET counts as a state change", () => {
    for (const p of ["/healthz", "/readyz", "/metrics", "/api/stacks", "/api/stacks/dev", "/api/stacks/dev/resume"]) {
      assert.equal(isControlRequest("GET", p), false, p);
      assert.deepEqual(authorizeRequest(head("GET", p), ""), { allow: true });
    }
    assert.deepEqual(authorizeRequest(head("POST", "/hooks/github", { "content-type": "text/plain" }), ""), { allow: true });
  });

  it("treats every other method under /api as a state change, however the path is spelled", () => {
    for (const m of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) assert.equal(isControlRequest(m, "/api/stacks/dev/resume"), true, m);
    assert.equal(isControlRequest("POST", "//api/stacks/dev/resume"), true);
    assert.equal(isControlRequest("POST", "/api"), true);
    assert.equal(isControlRequest("POST", "/hooks/generic"), false);
  });

  it("disables state-changing calls while no token is configured, and says how to set one", () => {
    const d = authorizeRequest(head("POST", "/api/stacks/dev/resume", { authorization: "Bearer anything" }), "");
    assert.equal(d.allow, false);
    assert.equal(!d.allow && d.status, 403);
    assert.match(!d.allow ? d.error : "", /disabled.*FERRY_API_TOKEN.*FERRY_API_TOKEN_FILE/);
  });

  it("wants the exact bearer token, and never echoes it", () => {
    const post = (authorization?: string) =>
      authorizeRequest(head("POST", "/api/stacks/dev/resume", authorization ? { authorization } : {}), TOKEN);
    assert.deepEqual(post(`Bearer ${TOKEN}`), { allow: true });
    assert.deepEqual(post(`bearer  ${TOKEN}`), { allow: true });
    for (const wrong of [
      undefined,
      TOKEN,
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      "Bearer ",
      `Bearer ${TOKEN} extra`,
    ]) {
      const d = post(wrong);
      assert.equal(!d.allow && d.status, 401, String(wrong));
      assert.ok(!d.allow && !d.error.includes(TOKEN));
    }
    assert.equal(bearerMatches(`Bearer ${TOKEN}`, ""), false);
  });

  it("refuses a state-changing call whose body is not JSON (a browser's simple POST)", () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const post = (h: Record<string, string>) => authorizeRequest(head("POST", "/api/stacks/dev/suspend", { ...auth, ...h }), TOKEN);
    assert.deepEqual(post({}), { allow: true });
    assert.deepEqual(post({ "content-length": "0" }), { allow: true });
    assert.deepEqual(post({ "content-type": "application/json; charset=utf-8", "content-length": "2" }), { allow: true });
    for (const h of [
      { "content-type": "text/plain", "content-length": "3" },
      { "content-type": "text/plain" },
      { "content-type": "application/x-www-form-urlencoded", "content-length": "3" },
      { "content-type": "multipart/form-data; boundary=x", "transfer-encoding": "chunked" },
      { "content-length": "3" },
    ] as Record<string, string>[]) {
      const d = post(h);
      assert.equal(!d.allow && d.status, 415, JSON.stringify(h));
    }
  });

  it("refuses any request whose Origin is not the server's own, reads included", () => {
    assert.equal(isSameOrigin("http://127.0.0.1:8080", "127.0.0.1:8080"), true);
    assert.equal(isSameOrigin("https://ferry.example.com", "ferry.example.com"), true);
    for (const [origin, host] of [
      ["http://evil.example", "127.0.0.1:8080"],
      ["null", "127.0.0.1:8080"],
      ["http://127.0.0.1:8081", "127.0.0.1:8080"],
      ["file://", "127.0.0.1:8080"],
      ["http://127.0.0.1:8080", undefined],
    ] as const) {
      assert.equal(isSameOrigin(origin, host), false, `${origin} ${host}`);
    }
    for (const [method, p] of [
      ["POST", "/api/stacks/dev/resume"],
      ["GET", "/api/stacks"],
      ["POST", "/hooks/generic"],
      ["OPTIONS", "/api/stacks/dev/resume"],
    ]) {
      const d = authorizeRequest(
        head(method!, p!, { origin: "http://evil.example", host: "127.0.0.1:8080", authorization: `Bearer ${TOKEN}` }),
        TOKEN,
      );
      assert.equal(!d.allow && d.status, 403, `${method} ${p}`);
      assert.match(!d.allow ? d.error : "", /cross-origin/);
    }
  });

  it("reads the token from FERRY_API_TOKEN or FERRY_API_TOKEN_FILE; the runner refuses a short one", () => {
    const dir = tempDir();
    const tokenFile = path.join(dir, "token");
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    assert.equal(readApiToken({ FERRY_API_TOKEN: TOKEN }), TOKEN);
    assert.equal(readApiToken({ FERRY_API_TOKEN_FILE: tokenFile }), TOKEN);
    assert.equal(readApiToken({}), "");
    assert.throws(
      () => readApiToken({ FERRY_API_TOKEN_FILE: path.join(dir, "missing") }),
      /FERRY_API_TOKEN_FILE .*missing: cannot read it \(ENOENT\)/,
    );
    const config = path.join(dir, "ferry.yaml");
    fs.writeFileSync(config, "apiListen: 127.0.0.1:9090\nstacks:\n  - {name: prod, repo: r, path: p}\n");
    const c = loadRunnerConfig(config, { FERRY_API_TOKEN_FILE: tokenFile });
    assert.equal(c.apiToken, TOKEN);
    assert.equal(c.apiListen, "127.0.0.1:9090");
    assert.equal(loadRunnerConfig(config, {}).apiToken, "");
    assert.throws(
      () => loadRunnerConfig(config, { FERRY_API_TOKEN: "short" }),
      (err: unknown) => /at least 16 characters/.test((err as Error).message) && !(err as Error).message.includes("short"),
    );
  });
});

/** A worker that records what the API asked of it. */
function fakeWorker(name: string, calls: string[]): StackWorker {
  return {
    stack: { name, ref: "main" },
    status: { name, suspended: false },
    trigger: (t: string) => calls.push(`trigger ${name} ${t}`),
    setSuspended: (s: boolean) => calls.push(`${s ? "suspend" : "resume"} ${name}`),
    poll: () => {
      calls.push(`poll ${name}`);
      return Promise.resolve();
    },
  } as unknown as StackWorker;
}

async function serve(
  token: string,
  served: ServedRoutes,
  calls: string[],
  identity?: IdentityReviewer,
): Promise<{ port: number; close(): Promise<void> }> {
  const view: RunnerView = {
    config: { apiToken: token, webhookSecret: "", maxWebhookBytes: 1024 * 1024 } as unknown as RunnerConfig,
    metrics: new RunnerMetrics(),
    workers: new Map([
      ["dev", fakeWorker("dev", calls)],
      ["apps.web", fakeWorker("apps.web", calls)],
    ]),
    isReady: () => true,
    ...(identity && {
      identity,
      // As in operator mode: a Stack object's worker is `<namespace>.<name>`; "dev" stands for a config-file stack.
      stackTarget: (stack: string) => (stack === "apps.web" ? { namespace: "apps", name: "web" } : undefined),
    }),
  };
  const server = http.createServer((req, res) => void handleRequest(view, req, res, served));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One raw request (http.request: no client adds or hides a header). */
function request(
  port: number,
  method: string,
  p: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: p, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("control API server", () => {
  const calls: string[] = [];
  let withToken: Awaited<ReturnType<typeof serve>>;
  let withoutToken: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    withToken = await serve(TOKEN, "all", calls);
    withoutToken = await serve("", "all", calls);
  });
  after(async () => {
    await withToken.close();
    await withoutToken.close();
  });
  const auth = { authorization: `Bearer ${TOKEN}` };

  it("resumes with the token, and refuses without it (401) or with a wrong one, changing nothing", async () => {
    calls.length = 0;
    const none = await request(withToken.port, "POST", "/api/stacks/dev/resume");
    assert.equal(none.status, 401);
    assert.equal(none.headers["www-authenticate"], 'Bearer realm="ferry"');
    assert.equal(
      (await request(withToken.port, "POST", "/api/stacks/dev/resume", { authorization: "Bearer wrong-token-0000000" })).status,
      401,
    );
    // Other spellings of the same route are judged as the router reads them.
    for (const p of ["/api//stacks/dev/resume", "/./api/stacks/dev/resume", "/x/../api/stacks/dev/resume"]) {
      assert.equal((await request(withToken.port, "POST", p)).status, 401, p);
    }
    assert.deepEqual(calls, []);
    const ok = await request(withToken.port, "POST", "/api/stacks/dev/resume", auth);
    assert.equal(ok.status, 202, ok.body);
    assert.equal(
      (await request(withToken.port, "POST", "/api/stacks/dev/suspend", { ...auth, "content-type": "application/json" }, "{}")).status,
      202,
    );
    assert.equal((await request(withToken.port, "POST", "/api/stacks/dev/reconcile", auth)).status, 202);
    assert.deepEqual(calls, ["resume dev", "suspend dev", "trigger dev manual"]);
  });

  it("refuses cross-origin and text/plain posts even with the token", async () => {
    calls.length = 0;
    const cross = await request(withToken.port, "POST", "/api/stacks/dev/resume", { ...auth, origin: "http://evil.example" });
    assert.equal(cross.status, 403);
    const preflight = await request(withToken.port, "OPTIONS", "/api/stacks/dev/resume", { origin: "http://evil.example" });
    assert.equal(preflight.status, 403);
    assert.equal(preflight.headers["access-control-allow-origin"], undefined);
    const plain = await request(withToken.port, "POST", "/api/stacks/dev/resume", { ...auth, "content-type": "text/plain" }, "x");
    assert.equal(plain.status, 415);
    assert.equal((await request(withToken.port, "GET", "/api/stacks", { origin: "http://evil.example" })).status, 403);
    assert.deepEqual(calls, []);
  });

  it("without a configured token, answers 403 with how to set one, and serves reads", async () => {
    calls.length = 0;
    const r = await request(withoutToken.port, "POST", "/api/stacks/dev/suspend", auth);
    assert.equal(r.status, 403);
    assert.match(r.body, /control API is disabled.*FERRY_API_TOKEN/);
    assert.equal((await request(withoutToken.port, "GET", "/api/stacks/dev")).status, 200);
    assert.equal((await request(withoutToken.port, "GET", "/healthz")).status, 200);
    assert.equal((await request(withoutToken.port, "GET", "/metrics")).status, 200);
    assert.deepEqual(calls, []);
  });

  it("changes nothing on GET, on any route", async () => {
    calls.length = 0;
    for (const p of ["/api/stacks/dev/resume", "/api/stacks/dev/suspend", "/api/stacks/dev/reconcile", "/hooks/github", "/hooks/generic"]) {
      const r = await request(withToken.port, "GET", p, auth);
      assert.ok(r.status === 405 || r.status === 404, `${p}: ${r.status}`);
    }
    assert.deepEqual(calls, []);
  });

  it("serves the API and the webhook receivers apart when asked", async () => {
    calls.length = 0;
    const api = await serve(TOKEN, "api", calls);
    const hooks = await serve(TOKEN, "webhooks", calls);
    try {
      assert.equal((await request(api.port, "GET", "/api/stacks")).status, 200);
      assert.equal((await request(api.port, "POST", "/hooks/generic", { "content-type": "application/json" }, "{}")).status, 404);
      assert.equal((await request(hooks.port, "GET", "/api/stacks")).status, 404);
      assert.equal((await request(hooks.port, "POST", "/api/stacks/dev/resume", auth)).status, 404);
      assert.equal((await request(hooks.port, "GET", "/metrics")).status, 404);
      assert.equal((await request(hooks.port, "GET", "/healthz")).status, 200);
      // Webhooks keep their HMAC: an unsigned push is refused.
      assert.equal((await request(hooks.port, "POST", "/hooks/generic", { "content-type": "application/json" }, "{}")).status, 401);
      assert.deepEqual(calls, []);
    } finally {
      await api.close();
      await hooks.close();
    }
  });
});

describe("control API server with Kubernetes identities", () => {
  const ALLOWED = "allowed-service-account-token";
  const FORBIDDEN = "forbidden-service-account-token";
  const BROKEN = "token-while-the-api-server-is-down";
  const reviewer: IdentityReviewer = {
    review: (token, target) => {
      const user = { username: "system:serviceaccount:apps:ci", groups: [] };
      if (token === BROKEN) return Promise.reject(new Error("TokenReview failed (HTTP 503)"));
      if (token === ALLOWED && target.namespace === "apps" && target.name === "web") return Promise.resolve({ kind: "allowed", user });
      if (token === FORBIDDEN) return Promise.resolve({ kind: "forbidden", user, reason: "" });
      return Promise.resolve({ kind: "unauthenticated", reason: "invalid bearer token" });
    },
  };

  it("answers 401 (WWW-Authenticate), 403 or 202 by the reviewer's verdict; only the allowed call changes anything", async () => {
    const calls: string[] = [];
    const server = await serve("", "all", calls, reviewer);
    try {
      const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
      const garbage = await request(server.port, "POST", "/api/stacks/apps.web/suspend", bearer("garbage"));
      assert.equal(garbage.status, 401, garbage.body);
      assert.equal(garbage.headers["www-authenticate"], 'Bearer realm="ferry"');
      const forbidden = await request(server.port, "POST", "/api/stacks/apps.web/suspend", bearer(FORBIDDEN));
      assert.equal(forbidden.status, 403, forbidden.body);
      assert.match(forbidden.body, /system:serviceaccount:apps:ci may not patch stacks.ferry.dev \\"web\\" in namespace \\"apps\\"/);
      assert.ok(!forbidden.body.includes(FORBIDDEN));
      const down = await request(server.port, "POST", "/api/stacks/apps.web/suspend", bearer(BROKEN));
      assert.equal(down.status, 503, down.body);
      assert.match(down.body, /cannot check the caller's identity: TokenReview failed/);
      assert.equal((await request(server.port, "POST", "/api/stacks/dev/suspend", bearer(ALLOWED))).status, 401);
      assert.deepEqual(calls, []);
      const ok = await request(server.port, "POST", "/api/stacks/apps.web/suspend", bearer(ALLOWED));
      assert.equal(ok.status, 202, ok.body);
      assert.deepEqual(calls, ["suspend apps.web"]);
    } finally {
      await server.close();
    }
  });

  it("keeps the static token next to the identities, for every stack", async () => {
    const calls: string[] = [];
    const server = await serve(TOKEN, "all", calls, reviewer);
    try {
      assert.equal((await request(server.port, "POST", "/api/stacks/dev/resume", { authorization: `Bearer ${TOKEN}` })).status, 202);
      assert.equal((await request(server.port, "POST", "/api/stacks/apps.web/resume", { authorization: `Bearer ${TOKEN}` })).status, 202);
      assert.deepEqual(calls, ["resume dev", "resume apps.web"]);
    } finally {
      await server.close();
    }
  });
});
