import * as http from "node:http";
import { AddressInfo } from "node:net";

/** One request the fake GitHub received. */
export interface RecordedRequest {
  readonly method: string;
  /** Path with query, e.g. `/repos/acme/config/issues/7/comments?per_page=100&page=1`. */
  readonly path: string;
  /** The JSON body, parsed (the raw text when it is not JSON); undefined when there was none. */
  readonly body: unknown;
  readonly headers: http.IncomingHttpHeaders;
}

/** An issue comment as the fake stores it. */
export interface FakeComment {
  readonly id: number;
  readonly body: string;
  /** The author's login; logins ending in `[bot]` are served as `type: "Bot"`, like github-actions[bot]. */
  readonly user: string;
}

/** A commit status as the fake stores it. */
export interface FakeStatus {
  readonly repo: string;
  readonly sha: string;
  readonly state: string;
  readonly context: string;
  readonly description?: string;
  readonly target_url?: string;
}

/** A failure the fake answers with instead of serving a request; see {@link FakeGitHub.failNext}. */
export type FakeFailure =
  /** The token's rate limit is used up: 403, `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds). */
  | { readonly kind: "rate-limit"; readonly resetInSeconds?: number }
  /**
   * Too many requests at once: 403 (or 429) with `retry-after` and, unless another is given, GitHub's
   * "You have exceeded a secondary rate limit" message.
   */
  | { readonly kind: "secondary-rate-limit"; readonly status?: 403 | 429; readonly retryAfterSeconds?: number; readonly message?: string }
  /** A token without the permission: 403 "Resource not accessible by integration", with requests to spare. */
  | { readonly kind: "forbidden" }
  /** A server error, 502 by default; with `afterHandling` the request takes effect first (GitHub sometimes fails after a write). */
  | { readonly kind: "server-error"; readonly status?: number; readonly afterHandling?: boolean };

/** The GitHub REST endpoints ferry uses (issue comments and commit statuses), served on loopback. */
export interface FakeGitHub {
  /** API root, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** The comments of a pull request, oldest first. */
  comments(repo: string, pr: number): FakeComment[];
  /** The statuses set on a commit, oldest first. */
  statuses(sha: string): FakeStatus[];
  /** Seeds a comment, by default from a person. */
  addComment(repo: string, pr: number, body: string, user?: string): void;
  /**
   * Answers the next authenticated request (of `method`, if given) with a failure, `times` times in a row
   * (default once). Failures queue up in the order given.
   */
  failNext(failure: FakeFailure, options?: { method?: string; times?: number }): void;
  close(): Promise<void>;
}

const BOT = "github-actions[bot]";
const STATES = ["pending", "success", "failure", "error"];
const RATE_LIMIT = 5000;
const SECONDARY_RATE_LIMIT_MESSAGE =
  "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.";

/** The headers GitHub sends on every answer: the core rate limit and what is left of it. */
function rateLimitHeaders(remaining: number, resetInSeconds = 3600): Record<string, string> {
  return {
    "x-ratelimit-limit": String(RATE_LIMIT),
    "x-ratelimit-remaining": String(remaining),
    "x-ratelimit-used": String(RATE_LIMIT - remaining),
    "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + resetInSeconds),
    "x-ratelimit-resource": "core",
  };
}

/** The status, headers and body GitHub answers a failure with. */
function failureAnswer(failure: FakeFailure): { status: number; headers: Record<string, string>; data: unknown } {
  switch (failure.kind) {
    case "rate-limit":
      return {
        status: 403,
        headers: rateLimitHeaders(0, failure.resetInSeconds ?? 1),
        data: {
          message: "API rate limit exceeded for installation ID 1234.",
          documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        },
      };
    case "secondary-rate-limit":
      return {
        status: failure.status ?? 403,
        headers: { ...rateLimitHeaders(4990), "retry-after": String(failure.retryAfterSeconds ?? 1) },
        data: {
          message: failure.message ?? SECONDARY_RATE_LIMIT_MESSAGE,
          documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        },
      };
    case "forbidden":
      return {
        status: 403,
        headers: rateLimitHeaders(4990),
        data: { message: "Resource not accessible by integration", documentation_url: "https://docs.github.com/rest", status: "403" },
      };
    case "server-error":
      return { status: failure.status ?? 502, headers: {}, data: { message: "Server Error" } };
  }
}

/** Starts a fake GitHub API on 127.0.0.1 that accepts only `Authorization: Bearer <token>` (default `test-token`). */
export async function startFakeGitHub(options: { token?: string } = {}): Promise<FakeGitHub> {
  const token = options.token ?? "test-token";
  const requests: RecordedRequest[] = [];
  const comments: (FakeComment & { repo: string; pr: number })[] = [];
  const statuses: FakeStatus[] = [];
  const failures: { failure: FakeFailure; method?: string }[] = [];
  let nextId = 1;
  let base = "";

  const addComment = (repo: string, pr: number, body: string, user: string): FakeComment & { repo: string; pr: number } => {
    const c = { id: nextId++, repo, pr, body, user };
    comments.push(c);
    return c;
  };
  const served = (c: FakeComment & { repo: string; pr: number }) => ({
    id: c.id,
    body: c.body,
    user: { login: c.user, type: c.user.endsWith("[bot]") ? "Bot" : "User" },
    html_url: `https://github.com/${c.repo}/pull/${c.pr}#issuecomment-${c.id}`,
  });

  const handle = (req: http.IncomingMessage, raw: string, res: http.ServerResponse): void => {
    const write = (status: number, data: unknown, headers: Record<string, string>) => {
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers }).end(JSON.stringify(data));
    };
    let send = (status: number, data: unknown, headers: Record<string, string> = {}) =>
      write(status, data, { ...rateLimitHeaders(4999), ...headers });
    let body: unknown;
    let parsed = true;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
      parsed = false;
    }
    requests.push({ method: req.method ?? "", path: req.url ?? "", body, headers: req.headers });
    if (!parsed) return send(400, { message: "Problems parsing JSON" });
    if (req.headers.authorization !== `Bearer ${token}`) {
      send(401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" });
      return;
    }
    const queued = failures.findIndex((f) => f.method === undefined || f.method === req.method);
    if (queued >= 0) {
      const [{ failure }] = failures.splice(queued, 1) as [{ failure: FakeFailure }];
      const answer = failureAnswer(failure);
      if (!(failure.kind === "server-error" && failure.afterHandling)) return write(answer.status, answer.data, answer.headers);
      send = () => write(answer.status, answer.data, answer.headers); // serve the request, then fail the answer
    }
    const url = new URL(req.url ?? "/", base);
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const [root, owner, name, section, a, b] = parts;
    const repo = `${owner}/${name}`;
    const notFound = () => send(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });
    if (root !== "repos" || !owner || !name) return notFound();

    // GET|POST /repos/{owner}/{repo}/issues/{pr}/comments
    if (parts.length === 6 && section === "issues" && /^\d+$/.test(a ?? "") && b === "comments") {
      const pr = Number(a);
      if (req.method === "GET") {
        const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get("per_page") ?? 30) || 30));
        const page = Math.max(1, Number(url.searchParams.get("page") ?? 1) || 1);
        const all = comments.filter((c) => c.repo === repo && c.pr === pr);
        const slice = all.slice((page - 1) * perPage, page * perPage);
        const lastPage = Math.max(1, Math.ceil(all.length / perPage));
        const link = (p: number, rel: string) => `<${base}${url.pathname}?per_page=${perPage}&page=${p}>; rel="${rel}"`;
        const links = page < lastPage ? [link(page + 1, "next"), link(lastPage, "last")] : [];
        if (page > 1) links.push(link(1, "first"), link(page - 1, "prev"));
        send(200, slice.map(served), links.length ? { Link: links.join(", ") } : {});
        return;
      }
      if (req.method === "POST") {
        const text = (body as { body?: unknown } | undefined)?.body;
        if (typeof text !== "string")
          return send(422, { message: "Validation Failed", errors: [{ field: "body", code: "missing_field" }] });
        if (text.length > 65536)
          return send(422, { message: "Validation Failed", errors: [{ message: "Body is too long (maximum is 65536 characters)" }] });
        send(201, served(addComment(repo, pr, text, BOT)));
        return;
      }
    }

    // PATCH /repos/{owner}/{repo}/issues/comments/{id}
    if (parts.length === 6 && section === "issues" && a === "comments" && /^\d+$/.test(b ?? "") && req.method === "PATCH") {
      const i = comments.findIndex((c) => c.repo === repo && c.id === Number(b));
      const existing = comments[i];
      if (!existing) return notFound();
      const text = (body as { body?: unknown } | undefined)?.body;
      if (typeof text !== "string") return send(422, { message: "Validation Failed", errors: [{ field: "body", code: "missing_field" }] });
      const updated = { ...existing, body: text };
      comments[i] = updated;
      send(200, served(updated));
      return;
    }

    // POST /repos/{owner}/{repo}/statuses/{sha}
    if (parts.length === 5 && section === "statuses" && /^[0-9a-f]{40}$/i.test(a ?? "") && req.method === "POST") {
      const s = (body ?? {}) as { state?: unknown; context?: unknown; description?: unknown; target_url?: unknown };
      if (typeof s.state !== "string" || !STATES.includes(s.state)) {
        return send(422, { message: "Validation Failed", errors: [{ field: "state", code: "invalid" }] });
      }
      if (typeof s.description === "string" && s.description.length > 140) {
        return send(422, { message: "Validation Failed", errors: [{ message: "description is too long (maximum is 140 characters)" }] });
      }
      const status: FakeStatus = {
        repo,
        sha: a ?? "",
        state: s.state,
        context: typeof s.context === "string" ? s.context : "default",
        ...(typeof s.description === "string" ? { description: s.description } : {}),
        ...(typeof s.target_url === "string" ? { target_url: s.target_url } : {}),
      };
      statuses.push(status);
      send(201, { id: statuses.length, ...status });
      return;
    }
    notFound();
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(req, Buffer.concat(chunks).toString("utf8"), res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    requests,
    comments: (repo, pr) => comments.filter((c) => c.repo === repo && c.pr === pr).map(({ id, body, user }) => ({ id, body, user })),
    statuses: (sha) => statuses.filter((s) => s.sha === sha),
    addComment: (repo, pr, body, user = "octocat") => void addComment(repo, pr, body, user),
    failNext: (failure, { method, times = 1 } = {}) => {
      for (let i = 0; i < times; i++) failures.push({ failure, method });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
