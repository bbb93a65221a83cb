import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { GitHubClientOptions, GitHubTarget, githubTarget, setCommitStatus, upsertPreviewComment } from "../../src/github/github";
import { previewCommentMarker } from "../../src/preview/render-preview";
import { SettingsError } from "../../src/reconcile/stack-settings";
import { FakeGitHub, startFakeGitHub } from "../helpers/fake-github";
import { tempDir } from "../helpers/temp-dir";

const REPO = "acme/config";
const PR = 7;
const SHA = "a1".repeat(20);

/** Client options for tests: a second of waiting lasts 1 ms, and the log lines are kept. */
function quick(): Partial<GitHubClientOptions> & { readonly lines: string[] } {
  const lines: string[] = [];
  return { lines, msPerSecond: 1, log: (line) => lines.push(line) };
}

async function withFakeGitHub(
  fn: (gh: FakeGitHub, target: GitHubTarget, client: ReturnType<typeof quick>) => Promise<void>,
): Promise<void> {
  const gh = await startFakeGitHub();
  try {
    await fn(gh, { apiUrl: gh.url, token: "test-token", repo: REPO, pr: PR, sha: SHA }, quick());
  } finally {
    await gh.close();
  }
}

const writes = (gh: FakeGitHub) => gh.requests.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path}`);

describe("GitHub pull request comments and statuses", () => {
  it("creates a stack's preview comment once and then updates it in place", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      const first = await upsertPreviewComment(target, "dev", "2 to change", client);
      assert.equal(first.action, "created");
      assert.equal(first.url, `https://github.com/${REPO}/pull/${PR}#issuecomment-${first.id}`);
      assert.deepEqual(gh.comments(REPO, PR), [
        { id: first.id, body: "<!-- ferry-preview stack=dev -->\n2 to change", user: "github-actions[bot]" },
      ]);

      const body = `${previewCommentMarker("dev")}\nno changes`;
      const second = await upsertPreviewComment(target, "dev", body, client);
      assert.deepEqual(second, { action: "updated", id: first.id, url: first.url });
      assert.deepEqual(gh.comments(REPO, PR), [{ id: first.id, body, user: "github-actions[bot]" }]);
      assert.deepEqual(writes(gh), [`POST /repos/${REPO}/issues/${PR}/comments`, `PATCH /repos/${REPO}/issues/comments/${first.id}`]);

      const patch = gh.requests.find((r) => r.method === "PATCH");
      assert.deepEqual(patch?.body, { body });
      assert.equal(patch?.headers.authorization, "Bearer test-token");
      assert.equal(patch?.headers.accept, "application/vnd.github+json");
      assert.equal(patch?.headers["x-github-api-version"], "2022-11-28");
      assert.match(patch?.headers["user-agent"] ?? "", /^ferry octokit-rest\.js\//);
    });
  });

  it("finds the preview comment on the second page of a long conversation", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      for (let i = 0; i < 150; i++) gh.addComment(REPO, PR, `looks good ${i}`);
      gh.addComment(REPO, PR, `${previewCommentMarker("dev")}\nold preview`, "github-actions[bot]");
      const result = await upsertPreviewComment(target, "dev", `${previewCommentMarker("dev")}\nnew preview`, client);
      assert.equal(result.action, "updated");
      assert.equal(result.id, 151);
      assert.deepEqual(
        gh.requests.filter((r) => r.method === "GET").map((r) => r.path),
        [`/repos/${REPO}/issues/${PR}/comments?per_page=100`, `/repos/${REPO}/issues/${PR}/comments?per_page=100&page=2`],
      );
      assert.deepEqual(writes(gh), [`PATCH /repos/${REPO}/issues/comments/151`]);
      const comments = gh.comments(REPO, PR);
      assert.equal(comments.length, 151);
      assert.equal(comments[150]?.body, `${previewCommentMarker("dev")}\nnew preview`);
      assert.ok(comments.slice(0, 150).every((c, i) => c.body === `looks good ${i}` && c.user === "octocat"));
    });
  });

  it("stops listing at a full last page without a next link", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      for (let i = 0; i < 100; i++) gh.addComment(REPO, PR, `comment ${i}`);
      const result = await upsertPreviewComment(target, "dev", "body", client);
      assert.equal(result.action, "created");
      assert.deepEqual(
        gh.requests.map((r) => `${r.method} ${r.path}`),
        [`GET /repos/${REPO}/issues/${PR}/comments?per_page=100`, `POST /repos/${REPO}/issues/${PR}/comments`],
      );
    });
  });

  it("leaves other stacks' comments and people quoting the marker alone", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      const prodBody = `${previewCommentMarker("prod")}\nprod preview`;
      const quote = `> ${previewCommentMarker("dev")}\n> 3 to change\nwhy does this delete the Service?`;
      gh.addComment(REPO, PR, prodBody, "github-actions[bot]");
      gh.addComment(REPO, PR, quote, "octocat");
      gh.addComment(REPO, PR + 1, `${previewCommentMarker("dev")}\nanother PR`, "github-actions[bot]");

      const created = await upsertPreviewComment(target, "dev", "dev preview", client);
      assert.equal(created.action, "created");
      const updated = await upsertPreviewComment(target, "dev", "dev preview again", client);
      assert.deepEqual([updated.action, updated.id], ["updated", created.id]);

      assert.deepEqual(
        gh.comments(REPO, PR).map((c) => c.body),
        [prodBody, quote, `${previewCommentMarker("dev")}\ndev preview again`],
      );
      assert.equal(gh.comments(REPO, PR + 1)[0]?.body, `${previewCommentMarker("dev")}\nanother PR`);
    });
  });

  it("updates a preview comment posted with a person's token, recognised by its first line", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      gh.addComment(REPO, PR, `${previewCommentMarker("dev")}\nposted with a personal access token`, "ci-user");
      const result = await upsertPreviewComment(target, "dev", "fresh", client);
      assert.deepEqual([result.action, result.id], ["updated", 1]);
      assert.deepEqual(gh.comments(REPO, PR), [{ id: 1, body: `${previewCommentMarker("dev")}\nfresh`, user: "ci-user" }]);
    });
  });

  it("sets a commit status on the pull request's head, cutting the description to 140 characters", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      await setCommitStatus(
        target,
        {
          state: "failure",
          context: "ferry/preview: dev",
          description: `failed: BuildFailed: ${"z".repeat(300)}`,
          targetUrl: "https://ci.example.com/run/1",
        },
        client,
      );
      const [status, ...rest] = gh.statuses(SHA);
      assert.deepEqual(rest, []);
      assert.equal(status?.repo, REPO);
      assert.equal(status?.state, "failure");
      assert.equal(status?.context, "ferry/preview: dev");
      assert.equal(status?.target_url, "https://ci.example.com/run/1");
      assert.equal(status?.description?.length, 140);
      assert.ok(status?.description?.endsWith("z…"));
      assert.deepEqual(writes(gh), [`POST /repos/${REPO}/statuses/${SHA}`]);
    });
  });

  it("names the call and hints at the token when GitHub refuses it, without showing the token", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      const token = "ghp_doNotLeakThisValue123";
      await assert.rejects(upsertPreviewComment({ ...target, token }, "dev", "body", client), (err: Error) => {
        assert.match(err.message, new RegExp(`GET /repos/${REPO}/issues/${PR}/comments\\?per_page=100 answered 401`));
        assert.match(err.message, /Bad credentials/);
        assert.match(err.message, /GITHUB_TOKEN/);
        assert.ok(!err.message.includes(token), err.message);
        return true;
      });
      await assert.rejects(
        setCommitStatus({ ...target, apiUrl: `${gh.url}/api/v3` }, { state: "success", context: "c", description: "d" }, client),
        (err: Error) => {
          assert.match(err.message, /POST \/repos\/acme\/config\/statuses\/a1a1\S* answered 404 Not Found: Not Found/);
          assert.match(err.message, /--github-repo/);
          assert.match(err.message, /statuses: write/);
          assert.ok(!err.message.includes("test-token"), err.message);
          return true;
        },
      );
      assert.deepEqual(gh.comments(REPO, PR), []);
    });
  });

  it("asks for the flag that names a missing pull request or commit", async () => {
    const target: GitHubTarget = { apiUrl: "http://127.0.0.1:9", token: "t", repo: REPO };
    await assert.rejects(
      upsertPreviewComment(target, "dev", "body"),
      (err: Error) => err instanceof SettingsError && /--github-pr/.test(err.message),
    );
    await assert.rejects(
      setCommitStatus(target, { state: "pending", context: "c", description: "d" }),
      (err: Error) => err instanceof SettingsError && /--github-sha/.test(err.message),
    );
  });
});

describe("GitHub retries and rate limits", () => {
  const commentsPath = `/repos/${REPO}/issues/${PR}/comments`;
  const calls = (gh: FakeGitHub) => gh.requests.map((r) => `${r.method} ${r.path}`);

  it("waits out a used-up rate limit and a secondary one, then posts the comment once", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      gh.failNext({ kind: "rate-limit", resetInSeconds: 2 }, { method: "GET" });
      gh.failNext({ kind: "secondary-rate-limit", retryAfterSeconds: 7 }, { method: "POST" });
      const result = await upsertPreviewComment(target, "dev", "3 to change", client);
      assert.equal(result.action, "created");
      assert.deepEqual(gh.comments(REPO, PR), [
        { id: result.id, body: `${previewCommentMarker("dev")}\n3 to change`, user: "github-actions[bot]" },
      ]);
      assert.deepEqual(calls(gh), [
        `GET ${commentsPath}?per_page=100`,
        `GET ${commentsPath}?per_page=100`,
        `POST ${commentsPath}`,
        `POST ${commentsPath}`,
      ]);
      assert.equal(client.lines.length, 2, client.lines.join("\n"));
      assert.match(
        client.lines[0]!,
        /^GitHub API GET \/repos\/acme\/config\/issues\/7\/comments\?per_page=100: GitHub's rate limit for this token is used up; waiting [23] s \(wait 1 of 2\)$/,
      );
      assert.match(
        client.lines[1]!,
        /^GitHub API POST \/repos\/acme\/config\/issues\/7\/comments: GitHub's secondary rate limit .*; waiting 7 s \(wait 1 of 2\)$/,
      );
    });
  });

  it("waits as long as a 429 or a bare retry-after asks, which plugin-throttling does not handle", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      gh.failNext({ kind: "secondary-rate-limit", status: 429, retryAfterSeconds: 3 });
      gh.failNext({ kind: "secondary-rate-limit", retryAfterSeconds: 4, message: "Forbidden" });
      await setCommitStatus(target, { state: "success", context: "ferry/preview: dev", description: "no changes" }, client);
      assert.equal(gh.statuses(SHA).length, 1);
      assert.equal(gh.requests.length, 3);
      assert.deepEqual(
        client.lines.map((l) => /waiting (\d+) s \(wait (\d) of 2\)$/.exec(l)?.slice(1).join("/")),
        ["3/1", "4/2"],
      );
    });
  });

  it("reports a rate limit it gave up on as a rate limit, never as a missing permission", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      gh.failNext({ kind: "rate-limit", resetInSeconds: 1 }, { times: 3 });
      await assert.rejects(upsertPreviewComment(target, "dev", "body", client), (err: Error) => {
        assert.match(
          err.message,
          /GET \/repos\/acme\/config\/issues\/7\/comments\?per_page=100 answered 403 Forbidden: API rate limit exceeded for installation ID 1234 \(3 attempts\)\. Hint: /,
        );
        assert.match(err.message, /rate limit is used up \(a rate limit, not a missing permission\); it resets at \d{4}-/);
        assert.doesNotMatch(err.message, /pull-requests: write|missing the/);
        return true;
      });
      assert.equal(gh.requests.length, 3, "the first call and two waits");
      assert.match(client.lines.at(-1) ?? "", /still limited after 2 wait\(s\), giving up$/);

      // A reset further away than ferry waits fails at once, with the same message.
      gh.failNext({ kind: "rate-limit", resetInSeconds: 3600 });
      await assert.rejects(
        setCommitStatus(target, { state: "pending", context: "c", description: "d" }, { ...client, maxRateLimitWaitSeconds: 60 }),
        (err: Error) => /not a missing permission/.test(err.message) && !/statuses: write/.test(err.message),
      );
      assert.match(client.lines.at(-1) ?? "", /lifts in 360\d s, later than ferry waits \(60 s\), giving up$/);

      gh.failNext({ kind: "secondary-rate-limit", retryAfterSeconds: 30 }, { times: 3 });
      await assert.rejects(upsertPreviewComment(target, "dev", "body", client), (err: Error) => {
        assert.match(err.message, /answered 403 Forbidden: You have exceeded a secondary rate limit/);
        assert.match(err.message, /secondary rate limit refused the call .*not a missing permission.*wait 30 s/);
        assert.doesNotMatch(err.message, /pull-requests: write/);
        return true;
      });
    });
  });

  it("reports a refused permission (403 with requests to spare) as the token's missing permission, without retrying", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      gh.failNext({ kind: "forbidden" }, { method: "POST" });
      await assert.rejects(upsertPreviewComment(target, "dev", "body", client), (err: Error) => {
        assert.match(
          err.message,
          /POST \/repos\/acme\/config\/issues\/7\/comments answered 403 Forbidden: Resource not accessible by integration/,
        );
        assert.match(err.message, /missing the `pull-requests: write` permission/);
        assert.doesNotMatch(err.message, /rate limit/);
        assert.ok(!err.message.includes("test-token"));
        return true;
      });
      assert.deepEqual(calls(gh), [`GET ${commentsPath}?per_page=100`, `POST ${commentsPath}`]);
      assert.deepEqual(client.lines, []);
      assert.deepEqual(gh.comments(REPO, PR), []);
    });
  });

  it("retries a 502 and succeeds", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      gh.failNext({ kind: "server-error" }, { method: "GET" });
      gh.failNext({ kind: "server-error", status: 503 }, { method: "POST" });
      const result = await upsertPreviewComment(target, "dev", "body", client);
      assert.equal(result.action, "created");
      assert.equal(gh.comments(REPO, PR).length, 1);
      await setCommitStatus(target, { state: "success", context: "c", description: "d" }, client);
      assert.equal(gh.statuses(SHA).length, 1);
      assert.match(
        client.lines[0] ?? "",
        /GET \/repos\/acme\/config\/issues\/7\/comments\?per_page=100: answered 502 Bad Gateway; retrying in 1 s \(retry 1 of 3\)$/,
      );
      assert.match(
        client.lines[1] ?? "",
        /^GitHub API POST \/repos\/acme\/config\/issues\/7\/comments: answered 503 Service Unavailable; looking for the comment before posting again in 1 s \(retry 1 of 3\)$/,
      );
    });
  });

  it("does not post a second comment when GitHub fails after creating the first", async () => {
    await withFakeGitHub(async (gh, target, client) => {
      gh.failNext({ kind: "server-error", afterHandling: true }, { method: "POST" });
      const result = await upsertPreviewComment(target, "dev", "body", client);
      assert.equal(result.action, "created");
      const comments = gh.comments(REPO, PR);
      assert.equal(comments.length, 1);
      assert.equal(result.id, comments[0]?.id);
      assert.deepEqual(calls(gh), [`GET ${commentsPath}?per_page=100`, `POST ${commentsPath}`, `GET ${commentsPath}?per_page=100`]);
    });
  });

  it("gives up on an unreachable API after its retries, naming the call and not the token", async () => {
    const gh = await startFakeGitHub();
    const apiUrl = gh.url;
    await gh.close(); // nothing listens there any more
    const client = quick();
    const token = "ghp_doNotLeakThisValue123";
    await assert.rejects(
      setCommitStatus({ apiUrl, token, repo: REPO, sha: SHA }, { state: "pending", context: "c", description: "d" }, client),
      (err: Error) => {
        assert.match(
          err.message,
          new RegExp(`^GitHub API POST /repos/acme/config/statuses/${SHA} failed \\(4 attempts\\): .*ECONNREFUSED`),
        );
        assert.ok(!err.message.includes(token));
        return true;
      },
    );
    assert.equal(client.lines.length, 3);
    assert.ok(client.lines.every((l) => !l.includes(token)));
  });
});

describe("GitHub target", () => {
  const eventFile = (event: unknown): string => {
    const file = path.join(tempDir(), "event.json");
    fs.writeFileSync(file, JSON.stringify(event));
    return file;
  };
  const headSha = "b2".repeat(20);

  it("reads the pull request and its head commit from GitHub Actions' event file", () => {
    const env = {
      GITHUB_TOKEN: "secret-token",
      GITHUB_REPOSITORY: REPO,
      GITHUB_EVENT_PATH: eventFile({ action: "synchronize", pull_request: { number: 42, head: { sha: headSha, ref: "feature" } } }),
    };
    assert.deepEqual(githubTarget({}, env), { apiUrl: "https://api.github.com", token: "secret-token", repo: REPO, pr: 42, sha: headSha });
    assert.deepEqual(
      githubTarget({ repo: "other/repo", pr: 5, apiUrl: "https://ghe.example.com/api/v3/" }, { ...env, GITHUB_API_URL: "https://x" }),
      {
        apiUrl: "https://ghe.example.com/api/v3",
        token: "secret-token",
        repo: "other/repo",
        pr: 5,
        sha: headSha,
      },
    );
  });

  it("leaves the pull request unset for events that are not about one", () => {
    const target = githubTarget(
      {},
      { GITHUB_TOKEN: "t", GITHUB_REPOSITORY: REPO, GITHUB_EVENT_PATH: eventFile({ ref: "refs/heads/main" }) },
    );
    assert.equal(target.pr, undefined);
    assert.equal(target.sha, undefined);
  });

  it("refuses to start without a token, a valid repository or a full SHA", () => {
    assert.throws(
      () => githubTarget({ repo: REPO, pr: 1 }, {}),
      (err: Error) =>
        err instanceof SettingsError &&
        /GITHUB_TOKEN/.test(err.message) &&
        /pull-requests: write/.test(err.message) &&
        /statuses: write/.test(err.message),
    );
    assert.throws(
      () => githubTarget({ repo: "acme" }, { GITHUB_TOKEN: "t" }),
      (err: Error) => err instanceof SettingsError && /owner\/name/.test(err.message),
    );
    assert.throws(
      () => githubTarget({ repo: REPO, sha: "abc1234" }, { GITHUB_TOKEN: "t" }),
      (err: Error) => err instanceof SettingsError && /--github-sha/.test(err.message),
    );
  });
});
