import Bottleneck from "bottleneck";
import * as fs from "node:fs";
import { STATUS_CODES } from "node:http";
import { retry } from "@octokit/plugin-retry";
import { throttling, ThrottlingOptions } from "@octokit/plugin-throttling";
import { Octokit } from "@octokit/rest";
import { z } from "zod";
import { previewCommentMarker } from "../preview/render-preview";
import { SettingsError } from "../reconcile/stack-settings";

/** Where preview results go on GitHub: the API, the token, the repository and, as needed, the pull request and commit. */
export interface GitHubTarget {
  /** REST API root without a trailing slash, e.g. `https://api.github.com`. */
  readonly apiUrl: string;
  /** Never logged or shown in errors. */
  readonly token: string;
  /** `owner/name`. */
  readonly repo: string;
  /** The pull request to comment on. */
  readonly pr?: number;
  /** The commit (head of the pull request) that gets a status. */
  readonly sha?: string;
}

/** How the GitHub client retries and waits; see {@link defaultGitHubClientOptions}. */
export interface GitHubClientOptions {
  /** Receives one line per retry and per rate-limit wait (never the token). @default stderr, as `github  <line>` */
  readonly log: (line: string) => void;
  /** Retries of a call that failed transiently (5xx, network error, timeout), after 1, 4, 9... s. @default 3 */
  readonly retries: number;
  /** How many times one call waits out a rate limit (primary or secondary) before failing. @default 2 */
  readonly rateLimitRetries: number;
  /** The longest single rate-limit wait, in seconds; a later reset fails the call rather than stall CI. @default 600 */
  readonly maxRateLimitWaitSeconds: number;
  /** How long a second of waiting lasts, in ms: scales backoff, rate-limit waits and write spacing (tests pass 1). @default 1000 */
  readonly msPerSecond: number;
}

/** The defaults of {@link GitHubClientOptions}. */
export function defaultGitHubClientOptions(overrides: Partial<GitHubClientOptions> = {}): GitHubClientOptions {
  return {
    log: (line) => process.stderr.write(`github  ${line}\n`),
    retries: 3,
    rateLimitRetries: 2,
    maxRateLimitWaitSeconds: 600,
    msPerSecond: 1000,
    ...overrides,
  };
}

/** A commit status, as `POST /repos/{owner}/{repo}/statuses/{sha}` takes it. */
export interface CommitStatus {
  readonly state: "pending" | "success" | "failure" | "error";
  /** Names the check; one status per context is shown, the latest wins (e.g. `ferry/preview: dev`). */
  readonly context: string;
  /** Cut to 140 characters, GitHub's limit. */
  readonly description: string;
  readonly targetUrl?: string;
}

const DEFAULT_API_URL = "https://api.github.com";
const API_VERSION = "2022-11-28";
const REQUEST_TIMEOUT_MS = 30_000;
// plugin-retry's list plus 410 (gone for good) and 429 (a rate limit: waited out as GitHub asks, not on a fixed backoff).
const DO_NOT_RETRY = [400, 401, 403, 404, 410, 422, 429, 451];
// GitHub's advice when a secondary rate limit names no retry-after.
const SECONDARY_RATE_LIMIT_FALLBACK_SECONDS = 60;
const PAGE_SIZE = 100;
// A pull request has at most a few thousand comments; the cap only guards against a server that always says "next".
const MAX_PAGES = 100;
const STATUS_DESCRIPTION_MAX = 140;
const REPO_PATTERN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const SHA_PATTERN = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

const PERMISSIONS_HINT = "the workflow needs `permissions: pull-requests: write` and `statuses: write`";

const EventSchema = z.object({
  pull_request: z
    .object({
      number: z.number().int().positive(),
      head: z.object({ sha: z.string() }),
    })
    .optional(),
});

const CommentSchema = z.object({
  id: z.number(),
  body: z.string().nullish(),
  html_url: z.string().optional(),
  user: z.object({ login: z.string(), type: z.string().optional() }).nullish(),
});
type Comment = z.infer<typeof CommentSchema>;

type Permission = "pull-requests" | "statuses";

/**
 * Resolves where to post: explicit options first, then GitHub Actions' environment (`GITHUB_TOKEN`,
 * `GITHUB_API_URL`, `GITHUB_REPOSITORY`, and the pull request number and head SHA from the event at `GITHUB_EVENT_PATH`).
 */
export function githubTarget(
  options: { repo?: string; pr?: number; sha?: string; apiUrl?: string },
  env: NodeJS.ProcessEnv = process.env,
): GitHubTarget {
  const token = env.GITHUB_TOKEN?.trim();
  if (!token) {
    throw new SettingsError(
      `GITHUB_TOKEN is not set: set it to a token with \`pull-requests: write\` and \`statuses: write\` permissions (in GitHub Actions: \`env: GITHUB_TOKEN: \${{ secrets.GITHUB_TOKEN }}\` and a \`permissions:\` block granting both)`,
    );
  }
  const apiUrl = (options.apiUrl ?? env.GITHUB_API_URL ?? DEFAULT_API_URL).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]/.test(apiUrl))
    throw new SettingsError(`GitHub API URL "${apiUrl}" is not an http(s) URL: fix --github-api-url or GITHUB_API_URL`);
  const repo = options.repo ?? env.GITHUB_REPOSITORY;
  if (!repo) throw new SettingsError("no GitHub repository: pass --github-repo <owner/name> or set GITHUB_REPOSITORY");
  if (!REPO_PATTERN.test(repo))
    throw new SettingsError(`GitHub repository "${repo}" is not owner/name: fix --github-repo or GITHUB_REPOSITORY`);

  let { pr, sha } = options;
  if ((pr === undefined || sha === undefined) && env.GITHUB_EVENT_PATH) {
    const event = readPullRequestEvent(env.GITHUB_EVENT_PATH);
    pr ??= event?.number;
    sha ??= event?.head.sha;
  }
  if (pr !== undefined && !(Number.isInteger(pr) && pr > 0))
    throw new SettingsError(`--github-pr must be a pull request number, got ${pr}`);
  if (sha !== undefined && !SHA_PATTERN.test(sha))
    throw new SettingsError(`--github-sha must be a full commit SHA (40 hex characters), got "${sha}"`);
  return { apiUrl, token, repo, pr, sha };
}

/** The pull request part of a GitHub Actions event file, or undefined for events of other kinds (push, schedule...). */
function readPullRequestEvent(file: string): z.infer<typeof EventSchema>["pull_request"] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new SettingsError(`GITHUB_EVENT_PATH ${file}: cannot read the event: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = EventSchema.safeParse(raw);
  if (!parsed.success) {
    throw new SettingsError(`GITHUB_EVENT_PATH ${file}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  return parsed.data.pull_request;
}

/**
 * Creates or updates the pull request's one preview comment of a stack (found by `previewCommentMarker(stack)`),
 * leaving every other comment alone.
 */
export async function upsertPreviewComment(
  target: GitHubTarget,
  stack: string,
  body: string,
  options: Partial<GitHubClientOptions> = {},
): Promise<{ action: "created" | "updated"; id: number; url: string }> {
  const pr = requirePr(target);
  const o = defaultGitHubClientOptions(options);
  const client = githubClient(target, o);
  const marker = previewCommentMarker(stack);
  const text = body.startsWith(marker) ? body : `${marker}\n${body}`;
  return withFailureHints(target, "pull-requests", async () => {
    const existing = await findPreviewComment(client, target, pr, marker);
    if (existing) return { action: "updated", ...(await updateComment(client, target, existing.id, text)) };
    return createCommentOnce(client, target, o, pr, marker, text);
  });
}

/** Sets a status on the target's commit (`target.sha`), shown on the pull request as a check. */
export async function setCommitStatus(
  target: GitHubTarget,
  status: CommitStatus,
  options: Partial<GitHubClientOptions> = {},
): Promise<void> {
  const sha = requireSha(target);
  const chars = Array.from(status.description);
  const description =
    chars.length <= STATUS_DESCRIPTION_MAX ? status.description : chars.slice(0, STATUS_DESCRIPTION_MAX - 1).join("") + "…";
  const client = githubClient(target, defaultGitHubClientOptions(options));
  // Retried like any call: a status posted twice is harmless, the latest of a context wins.
  await withFailureHints(target, "statuses", () =>
    client.rest.repos.createCommitStatus({
      ...repoOf(target),
      sha,
      state: status.state,
      context: status.context,
      description,
      ...(status.targetUrl ? { target_url: status.targetUrl } : {}),
    }),
  );
}

/**
 * The stack's comment: the first whose body starts with the marker; failing that, a bot's comment that
 * contains it (someone moved it). People quoting the marker in their own comments are never matched that way.
 */
async function findPreviewComment(client: Octokit, target: GitHubTarget, pr: number, marker: string): Promise<Comment | undefined> {
  let fallback: Comment | undefined;
  let pages = 0;
  const listing = client.paginate.iterator(client.rest.issues.listComments, { ...repoOf(target), issue_number: pr, per_page: PAGE_SIZE });
  for await (const page of listing) {
    const comments = z.array(CommentSchema).safeParse(page.data);
    if (!comments.success) {
      throw new Error(
        `GitHub API GET ${pathOf(target, page.url)}: unexpected response: ${comments.error.issues[0]?.message ?? "not a list"} (is --github-api-url the REST API root?)`,
      );
    }
    for (const c of comments.data) {
      const text = c.body ?? "";
      if (text.trimStart().startsWith(marker)) return c;
      if (!fallback && text.includes(marker) && c.user?.type === "Bot") fallback = c;
    }
    if (++pages >= MAX_PAGES) break;
  }
  return fallback;
}

async function updateComment(client: Octokit, target: GitHubTarget, id: number, text: string): Promise<{ id: number; url: string }> {
  const res = await client.rest.issues.updateComment({ ...repoOf(target), comment_id: id, body: text });
  const updated = parseComment(`PATCH ${pathOf(target, res.url)}`, res.data);
  return { id: updated.id, url: updated.html_url ?? "" };
}

/**
 * Posts the comment without the client's blind retry: GitHub may fail a POST after creating the comment,
 * and a second POST would leave two. After a transient failure it looks again and posts only if none is there.
 */
async function createCommentOnce(
  client: Octokit,
  target: GitHubTarget,
  o: GitHubClientOptions,
  pr: number,
  marker: string,
  text: string,
): Promise<{ action: "created" | "updated"; id: number; url: string }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await client.rest.issues.createComment({ ...repoOf(target), issue_number: pr, body: text, request: { retries: 0 } });
      const created = parseComment(`POST ${pathOf(target, res.url)}`, res.data);
      return { action: "created", id: created.id, url: created.html_url ?? "" };
    } catch (err) {
      const failure = octokitFailure(err);
      if (!failure || !isTransient(failure) || attempt > o.retries) throw err;
      o.log(
        redact(
          `GitHub API ${callOf(target, failure)}: ${outcomeOf(failure)}; ` +
            `looking for the comment before posting again in ${attempt ** 2} s (retry ${attempt} of ${o.retries})`,
          target.token,
        ),
      );
      await sleep(attempt ** 2 * o.msPerSecond);
      const existing = await findPreviewComment(client, target, pr, marker);
      if (existing) {
        if (existing.body === text) return { action: "created", id: existing.id, url: existing.html_url ?? "" };
        return { action: "updated", ...(await updateComment(client, target, existing.id, text)) };
      }
    }
  }
}

function parseComment(call: string, data: unknown): Comment {
  const parsed = CommentSchema.safeParse(data);
  if (!parsed.success) throw new Error(`GitHub API ${call}: unexpected response: ${parsed.error.issues[0]?.message ?? "not a comment"}`);
  return parsed.data;
}

function requirePr(target: GitHubTarget): number {
  if (target.pr === undefined) {
    throw new SettingsError(
      "no pull request to comment on: pass --github-pr <number> (in GitHub Actions, a pull_request event provides it through GITHUB_EVENT_PATH)",
    );
  }
  return target.pr;
}

function requireSha(target: GitHubTarget): string {
  if (target.sha === undefined) {
    throw new SettingsError(
      "no commit to set a status on: pass --github-sha <full SHA> (in GitHub Actions, a pull_request event provides it through GITHUB_EVENT_PATH)",
    );
  }
  return target.sha;
}

function repoOf(target: GitHubTarget): { owner: string; repo: string } {
  if (!REPO_PATTERN.test(target.repo)) throw new SettingsError(`GitHub repository "${target.repo}" is not owner/name`);
  const [owner, repo] = target.repo.split("/") as [string, string];
  return { owner, repo };
}

/**
 * An Octokit for one target: bearer token and API version on every call; transient failures retried by
 * plugin-retry; rate limits waited out a bounded number of times (plugin-throttling for the 403s it knows,
 * {@link ferryRequestPolicy} for the rest); every retry and wait reported through `o.log`.
 */
function githubClient(target: GitHubTarget, o: GitHubClientOptions): Octokit {
  const onLimit =
    (what: string) =>
    (seconds: number, request: { method: string; url: string }, octokit: { request: Octokit["request"] }, done: number): boolean =>
      mayWaitOutRateLimit(o, `GitHub API ${describeRequest(target, octokit, request)}`, what, seconds, done);
  const Client = Octokit.plugin(ferryRequestPolicy(target, o), retry, throttling);
  return new Client({
    baseUrl: target.apiUrl,
    userAgent: "ferry",
    log: {
      debug: () => undefined,
      info: () => undefined,
      warn: (message: string) => o.log(redact(message, target.token)),
      error: (message: string) => o.log(redact(message, target.token)),
    },
    request: { fetch: fetchWithTimeout },
    retry: { retries: o.retries, doNotRetry: DO_NOT_RETRY, retryAfterBaseValue: o.msPerSecond },
    throttle: {
      onRateLimit: onLimit("GitHub's rate limit for this token is used up"),
      onSecondaryRateLimit: onLimit("GitHub's secondary rate limit (too many requests at once)"),
      fallbackSecondaryRateRetryAfter: SECONDARY_RATE_LIMIT_FALLBACK_SECONDS,
      retryAfterBaseValue: o.msPerSecond,
      ...writeSpacing(o.msPerSecond),
    },
  });
}

/** Whether a rate-limited call waits (and says so) or gives up (and says why). */
function mayWaitOutRateLimit(o: GitHubClientOptions, call: string, what: string, seconds: number, done: number): boolean {
  if (done >= o.rateLimitRetries) {
    o.log(`${call}: ${what}; still limited after ${done} wait(s), giving up`);
    return false;
  }
  if (seconds > o.maxRateLimitWaitSeconds) {
    o.log(`${call}: ${what}; it lifts in ${seconds} s, later than ferry waits (${o.maxRateLimitWaitSeconds} s), giving up`);
    return false;
  }
  o.log(`${call}: ${what}; waiting ${seconds} s (wait ${done + 1} of ${o.rateLimitRetries})`);
  return true;
}

/** Attempts made for the call an error ends, set on each attempt's error (the last one is what callers see). */
const attemptsOf = new WeakMap<Error, number>();

/**
 * The innermost request hook (registered before plugin-retry's): authenticates, reports each transient
 * failure plugin-retry is about to retry, and has plugin-retry wait out the rate limits plugin-throttling v8
 * does not recognise (a 429, or a 403 with only a retry-after), as long as GitHub asks.
 */
function ferryRequestPolicy(target: GitHubTarget, o: GitHubClientOptions) {
  return (octokit: Pick<Octokit, "hook" | "request">): void => {
    const attempts = new WeakMap<object, number>();
    octokit.hook.before("request", (request) => {
      attempts.set(request, (attempts.get(request) ?? 0) + 1);
      request.headers.authorization = `Bearer ${target.token}`;
      request.headers.accept = "application/vnd.github+json";
      request.headers["x-github-api-version"] = API_VERSION;
    });
    octokit.hook.error("request", (error, request) => {
      const failure = octokitFailure(error);
      if (!failure) throw error;
      attemptsOf.set(failure, attempts.get(request) ?? 1);
      const call = `GitHub API ${describeRequest(target, octokit, request)}`;
      const done = Number(request.request?.retryCount ?? 0);
      if (isTransient(failure)) {
        const max = Number(request.request?.retries ?? o.retries);
        if (done < max) {
          o.log(redact(`${call}: ${outcomeOf(failure)}; retrying in ${(done + 1) ** 2} s (retry ${done + 1} of ${max})`, target.token));
        }
        throw failure;
      }
      const limit = rateLimitOf(failure);
      if (limit && !throttlingHandles(failure)) {
        const seconds = limit.retryAfterSeconds ?? SECONDARY_RATE_LIMIT_FALLBACK_SECONDS;
        const what =
          limit.kind === "primary"
            ? "GitHub's rate limit for this token is used up"
            : "GitHub's secondary rate limit (too many requests at once)";
        if (mayWaitOutRateLimit(o, call, what, seconds, done)) {
          const retryable = octokit as unknown as { retry: { retryRequest(e: Error, retries: number, afterSeconds: number): Error } };
          throw retryable.retry.retryRequest(failure, o.rateLimitRetries, seconds);
        }
      }
      throw failure;
    });
  };
}

/** What plugin-throttling v8 waits out itself: a 403 saying "secondary rate", or with no requests remaining. */
function throttlingHandles(failure: OctokitFailure): boolean {
  return failure.status === 403 && (/\bsecondary rate\b/i.test(failure.message) || headerOf(failure, "x-ratelimit-remaining") === "0");
}

/** A failure that may go away on its own: no answer (network, timeout) or a status plugin-retry retries (5xx...). */
function isTransient(failure: OctokitFailure): boolean {
  return !failure.response || (failure.status >= 400 && !DO_NOT_RETRY.includes(failure.status));
}

/** The rate limit a 403 or 429 reports, if it is one rather than a refused permission. */
function rateLimitOf(failure: OctokitFailure): { kind: "primary" | "secondary"; resetAt?: Date; retryAfterSeconds?: number } | undefined {
  if (!failure.response || (failure.status !== 403 && failure.status !== 429)) return undefined;
  const reset = Number(headerOf(failure, "x-ratelimit-reset"));
  const resetAt = reset > 0 ? new Date(reset * 1000) : undefined;
  const retryAfter = headerOf(failure, "retry-after");
  const retryAfterSeconds =
    retryAfter !== undefined && Number.isFinite(Number(retryAfter))
      ? Math.max(0, Number(retryAfter))
      : resetAt
        ? Math.max(0, Math.ceil((resetAt.getTime() - Date.now()) / 1000) + 1)
        : undefined;
  if (/\bsecondary rate\b/i.test(failure.message)) return { kind: "secondary", retryAfterSeconds };
  if (headerOf(failure, "x-ratelimit-remaining") === "0" || /\brate limit\b/i.test(failure.message)) {
    return { kind: "primary", resetAt, retryAfterSeconds };
  }
  if (retryAfter !== undefined || failure.status === 429) return { kind: "secondary", retryAfterSeconds };
  return undefined;
}

/** The parts of Octokit's RequestError that ferry reads. */
interface OctokitFailure extends Error {
  readonly status: number;
  readonly request: { readonly method: string; readonly url: string };
  /** Absent when no answer came (network error, timeout). */
  readonly response?: { readonly status: number; readonly headers: Readonly<Record<string, unknown>>; readonly data: unknown };
}

function octokitFailure(err: unknown): OctokitFailure | undefined {
  return err instanceof Error && err.name === "HttpError" && typeof (err as Partial<OctokitFailure>).status === "number"
    ? (err as OctokitFailure)
    : undefined;
}

/** `answered 502 Bad Gateway`, or what kept an answer from coming. */
function outcomeOf(failure: OctokitFailure): string {
  return failure.response
    ? `answered ${failure.status}${STATUS_CODES[failure.status] ? ` ${STATUS_CODES[failure.status]}` : ""}`
    : failure.message;
}

function headerOf(failure: OctokitFailure, name: string): string | undefined {
  const value = failure.response?.headers[name];
  return value === undefined || value === null ? undefined : String(value);
}

/** Runs calls of one kind and turns their failures into messages that say how to fix them, never showing the token. */
async function withFailureHints<T>(target: GitHubTarget, permission: Permission, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const failure = octokitFailure(err);
    if (!failure) {
      if (err instanceof SettingsError || (err instanceof Error && err.message.startsWith("GitHub API "))) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(redact(`GitHub API: ${message} (is --github-api-url the REST API root?)`, target.token), { cause: err });
    }
    const call = `GitHub API ${callOf(target, failure)}`;
    const attempts = attemptsOf.get(failure) ?? 1;
    const tries = attempts > 1 ? ` (${attempts} attempts)` : "";
    if (!failure.response) throw new Error(redact(`${call} failed${tries}: ${failure.message}`, target.token), { cause: err });
    const { status, data } = failure.response;
    const detail = githubMessage(data);
    const hint = rateLimitHint(failure) ?? errorHint(status, permission);
    const reason = STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : "";
    throw new Error(
      redact(
        `${call} answered ${status}${reason}${detail ? `: ${detail.replace(/\.+$/, "")}` : ""}${tries}${hint ? `. ${hint}` : ""}`,
        target.token,
      ),
      {
        cause: err,
      },
    );
  }
}

/** GitHub's `message`, plus the `errors` details a 422 carries. */
function githubMessage(data: unknown): string {
  if (typeof data === "string") return data.slice(0, 200);
  if (!data || typeof data !== "object") return "";
  const { message, errors } = data as { message?: unknown; errors?: unknown };
  const parts = typeof message === "string" ? [message] : [];
  if (Array.isArray(errors)) {
    for (const e of errors.slice(0, 3)) {
      if (typeof e === "string") parts.push(e);
      else if (e && typeof e === "object") {
        const { message: m, code, field } = e as { message?: unknown; code?: unknown; field?: unknown };
        parts.push(typeof m === "string" ? m : [field, code].filter((x) => typeof x === "string").join(" "));
      }
    }
  }
  return parts.filter(Boolean).join("; ");
}

/** A rate limit is never a missing permission, though GitHub answers both with 403. */
function rateLimitHint(failure: OctokitFailure): string | undefined {
  const limit = rateLimitOf(failure);
  if (!limit) return undefined;
  if (limit.kind === "primary") {
    const when = limit.resetAt ? `; it resets at ${limit.resetAt.toISOString()}` : "";
    return `Hint: the token's GitHub API rate limit is used up (a rate limit, not a missing permission)${when}. Run again after that, or spread out the jobs that share the token`;
  }
  const wait = limit.retryAfterSeconds !== undefined ? `; GitHub asks to wait ${limit.retryAfterSeconds} s` : "";
  return `Hint: GitHub's secondary rate limit refused the call (too many requests at once; not a missing permission)${wait}. Run again in a few minutes`;
}

function errorHint(status: number, permission: Permission): string {
  switch (status) {
    case 401:
      return "Hint: the token was refused; set GITHUB_TOKEN to a valid, unexpired token";
    case 403:
      return `Hint: the token is missing the \`${permission}: write\` permission (${PERMISSIONS_HINT}; a pull request from a fork gets a read-only GITHUB_TOKEN)`;
    case 404:
      return `Hint: check the repository (--github-repo owner/name) and pull request (--github-pr); GitHub also answers 404 when the token cannot see the repository or lacks \`${permission}: write\``;
    default:
      return "";
  }
}

/** `METHOD /path` of a failed call, the path relative to the API root. */
function callOf(target: GitHubTarget, failure: OctokitFailure): string {
  return `${failure.request.method} ${pathOf(target, failure.request.url)}`;
}

/** `METHOD /path` of a request as hooks and plugin-throttling see it (a route template with parameters). */
function describeRequest(target: GitHubTarget, octokit: { request: Octokit["request"] }, request: { method: string; url: string }): string {
  try {
    const parsed = octokit.request.endpoint.parse(request as Parameters<Octokit["request"]["endpoint"]["parse"]>[0]);
    return `${parsed.method} ${pathOf(target, parsed.url)}`;
  } catch {
    return `${request.method} ${request.url}`;
  }
}

function pathOf(target: GitHubTarget, url: string): string {
  return url.startsWith(target.apiUrl) ? url.slice(target.apiUrl.length) || "/" : url;
}

/** fetch with a deadline per attempt (a hung connection then counts as a transient failure and is retried). */
const fetchWithTimeout: typeof fetch = (input, init) =>
  fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).catch((err: unknown) => {
    if (err instanceof Error && err.name === "TimeoutError")
      throw new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`, { cause: err });
    throw err;
  });

type PacingGroup = NonNullable<ThrottlingOptions["write"]>;
const spacingByUnit = new Map<number, { write: PacingGroup; notifications: PacingGroup; search: PacingGroup }>();

/**
 * plugin-throttling spaces writes 1 s apart and comments 3 s apart, as GitHub asks of integrations, in
 * groups shared by every client. For a shorter second (tests) the same groups are made with scaled spacing,
 * with Bottleneck (the limiter the plugin is built on).
 */
function writeSpacing(msPerSecond: number): Partial<Record<"write" | "notifications" | "search", PacingGroup>> {
  if (msPerSecond === 1000) return {};
  let groups = spacingByUnit.get(msPerSecond);
  if (!groups) {
    const group = (id: string, seconds: number): PacingGroup =>
      new Bottleneck.Group({ id: `ferry-${id}`, maxConcurrent: 1, minTime: seconds * msPerSecond }) as unknown as PacingGroup;
    groups = { write: group("write", 1), notifications: group("notifications", 3), search: group("search", 2) };
    spacingByUnit.set(msPerSecond, groups);
  }
  return groups;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function redact(message: string, token: string): string {
  return token ? message.split(token).join("***") : message;
}
