import * as http from "node:http";
import { ApiDecision, authorizeRequest, decideIdentity, IdentityReviewer, RequestHead } from "./api-auth";
import { RunnerConfig } from "./runner-config";
import { RunnerMetrics } from "./runner-metrics";
import { StackWorker } from "./stack-worker";
import { pushedBranch, verifyWebhook, WebhookKind } from "./webhook";

/** What the HTTP API reads of a running agent (the Runner). */
export interface RunnerView {
  readonly config: RunnerConfig;
  readonly metrics: RunnerMetrics;
  readonly workers: ReadonlyMap<string, StackWorker>;
  isReady(): boolean;
  /** In a cluster (operator mode): judges Kubernetes bearer tokens of control calls (TokenReview + SubjectAccessReview). */
  readonly identity?: IdentityReviewer;
  /** In a cluster: the Stack object behind a stack name (`<namespace>.<name>`), or undefined when there is none. */
  stackTarget?(stackName: string): { namespace: string; name: string } | undefined;
}

/**
 * The access decision of a request: the pure rule, and for a control call whose bearer token is not
 * the static one, the identity reviewer's verdict (asked only then). A reviewer that fails gives 503.
 */
async function decideAccess(runner: RunnerView, head: RequestHead): Promise<ApiDecision | { allow: false; status: 503; error: string }> {
  const reviewer = runner.identity;
  if (!reviewer || !runner.stackTarget) return authorizeRequest(head, runner.config.apiToken);
  const decision = authorizeRequest(head, runner.config.apiToken, (stack) => runner.stackTarget?.(stack));
  if (decision.allow !== "review") return decision;
  try {
    return decideIdentity(head, decision, await reviewer.review(decision.bearer, decision.target));
  } catch (err) {
    // The reviewer's errors name the review and the fix (e.g. the agent's RBAC), never the token.
    return { allow: false, status: 503, error: `cannot check the caller's identity: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, type = "application/json"): void {
  const text = typeof body === "string" ? body : JSON.stringify(body, null, 2);
  res.writeHead(status, { "Content-Type": type }).end(text);
}

/** Reads a request body, refusing (with undefined) one larger than `limit` bytes. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      // Past the limit the rest is drained and dropped, so the client still gets its 413.
      if (size <= limit) chunks.push(c);
    });
    req.on("end", () => resolve(size > limit ? undefined : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Largest body of a control call (`{"full": true}`). */
const MAX_CONTROL_BODY = 4096;

/** The body of `POST /api/stacks/<name>/reconcile`: none, or `{"full": true}` for a refresh of every object. */
async function reconcileRequest(req: http.IncomingMessage): Promise<{ full: boolean } | { error: string }> {
  const body = await readBody(req, MAX_CONTROL_BODY);
  if (!body) return { error: `body larger than ${MAX_CONTROL_BODY} bytes` };
  const text = body.toString("utf8").trim();
  if (!text) return { full: false };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: 'the body must be JSON, e.g. {"full": true}' };
  }
  const full = (parsed as { full?: unknown } | null)?.full;
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || (full !== undefined && typeof full !== "boolean"))
    return { error: 'the body must be {"full": true} or {"full": false}' };
  return { full: full === true };
}

/**
 * What one listening address serves: everything, or (with `apiListen` apart from `listen`) the API,
 * metrics and health on one and the webhook receivers (and health) on the other.
 */
export type ServedRoutes = "all" | "api" | "webhooks";

/**
 * The runner's HTTP API: `/healthz`, `/readyz`, `/metrics`, `GET /api/stacks[/<name>]`,
 * `POST /api/stacks/<name>/reconcile|suspend|resume` (the bearer token, or in a cluster a Kubernetes identity allowed to
 * patch the Stack object; reconcile takes `{"full": true}`), and push receivers
 * `POST /hooks/github|gitlab|generic` (HMAC). Cross-origin requests are refused (see {@link authorizeRequest}).
 */
export async function handleRequest(
  runner: RunnerView,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  served: ServedRoutes = "all",
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const parts = url.pathname.split("/").filter(Boolean);
  try {
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
    const decision = await decideAccess(runner, { method: req.method ?? "GET", pathname: url.pathname, headers });
    if (!decision.allow) {
      // Drain a refused body so the client reads the answer instead of a reset connection.
      req.resume();
      if (decision.status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="ferry"');
      return send(res, decision.status, { error: decision.error });
    }
    if (req.method === "GET" && url.pathname === "/healthz") return send(res, 200, "ok", "text/plain");
    if (req.method === "GET" && url.pathname === "/readyz")
      return send(res, runner.isReady() ? 200 : 503, runner.isReady() ? "ok" : "starting", "text/plain");
    const api = served !== "webhooks";
    if (req.method === "GET" && url.pathname === "/metrics" && api) {
      return send(res, 200, await runner.metrics.registry.metrics(), runner.metrics.registry.contentType);
    }
    if (parts[0] === "api" && parts[1] === "stacks" && api) {
      if (req.method === "GET" && parts.length === 2)
        return send(
          res,
          200,
          [...runner.workers.values()].map((w) => w.status),
        );
      const worker = parts[2] ? runner.workers.get(parts[2]) : undefined;
      if (!worker) return send(res, 404, { error: `no stack "${parts[2] ?? ""}"` });
      if (req.method === "GET" && parts.length === 3) return send(res, 200, worker.status);
      if (req.method === "POST" && parts.length === 4 && parts[3] === "reconcile") {
        const asked = await reconcileRequest(req);
        if ("error" in asked) return send(res, 400, { error: asked.error });
        worker.trigger("manual", undefined, { full: asked.full });
        return send(res, 202, { stack: worker.stack.name, accepted: "reconcile", full: asked.full });
      }
      if (req.method === "POST" && parts.length === 4 && (parts[3] === "suspend" || parts[3] === "resume")) {
        worker.setSuspended(parts[3] === "suspend");
        return send(res, 202, { stack: worker.stack.name, accepted: parts[3] });
      }
      return send(res, 405, { error: "method not allowed" });
    }
    if (req.method === "POST" && parts[0] === "hooks" && served !== "api" && ["github", "gitlab", "generic"].includes(parts[1] ?? "")) {
      const body = await readBody(req, runner.config.maxWebhookBytes);
      if (!body) return send(res, 413, { error: `body larger than ${runner.config.maxWebhookBytes} bytes` });
      if (!verifyWebhook(parts[1] as WebhookKind, headers, body, runner.config.webhookSecret)) {
        return send(res, 401, { error: "missing or wrong signature" });
      }
      const branch = pushedBranch(body);
      // A push concerns the stacks following that branch (or their default branch); each checks the remote.
      const concerned = [...runner.workers.values()].filter((w) => !branch || !w.stack.ref || w.stack.ref === branch);
      for (const w of concerned) void w.poll();
      return send(res, 202, { branch, stacks: concerned.map((w) => w.stack.name) });
    }
    return send(res, 404, { error: "not found" });
  } catch (err) {
    return send(res, 500, { error: err instanceof Error ? err.message : String(err) });
  }
}
