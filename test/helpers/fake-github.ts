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
  close(): Promise<void>;
}

const BOT = "github-actions[bot]";
const STATES = ["pending", "success", "failure", "error"];

/** Starts a fake GitHub API on 127.0.0.1 that accepts only `Authorization: Bearer <token>` (default `test-token`). */
export async function startFakeGitHub(options: { token?: string } = {}): Promise<FakeGitHub> {
  const token = options.token ?? "test-token";
  const requests: RecordedRequest[] = [];
  const comments: (FakeComment & { repo: string; pr: number })[] = [];
  const statuses: FakeStatus[] = [];
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
    const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers }).end(JSON.stringify(data));
    };
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
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
