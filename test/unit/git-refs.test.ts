import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { GitRef } from "../../src/desired-state/git-ref";
import { checkoutGitRef, checkoutSource, highestMatchingTag, SourceError } from "../../src/source/git-source";
import { tempDir } from "../helpers/temp-dir";

/** Runs git in `dir` with a fixed identity; returns its trimmed output. */
function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=Ferry Test", "-c", "user.email=test@ferry.invalid", "-c", "commit.gpgsign=false", ...args], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" },
  }).trim();
}

/** Commits a file on the current branch; returns the commit's SHA. */
function commit(dir: string, content: string): string {
  fs.writeFileSync(path.join(dir, "version.txt"), content);
  git(dir, "add", "version.txt");
  git(dir, "commit", "-q", "-m", content);
  return git(dir, "rev-parse", "HEAD");
}

/** What the checkout at `dir` contains. */
function checkedOut(dir: string): string {
  return fs.readFileSync(path.join(dir, "version.txt"), "utf8");
}

describe("checkoutGitRef", () => {
  const root = tempDir("ferry-git-refs-");
  const origin = path.join(root, "origin");
  const sha: Record<string, string> = {};
  let checkouts = 0;
  /** A fresh checkout folder per call, so one test's clone never answers for another. */
  const checkout = (ref: GitRef | undefined) => checkoutGitRef({ url: origin }, ref, path.join(root, `checkout-${++checkouts}`));

  before(() => {
    fs.mkdirSync(origin);
    git(origin, "init", "-q", "--initial-branch=main");
    sha.v100 = commit(origin, "1.0.0");
    git(origin, "tag", "v1.0.0"); // lightweight
    sha.v120 = commit(origin, "1.2.0");
    git(origin, "tag", "-a", "v1.2.0", "-m", "release 1.2.0"); // annotated
    sha.rc = commit(origin, "1.3.0-rc.1");
    git(origin, "tag", "1.3.0-rc.1");
    git(origin, "tag", "latest");
    sha.main = commit(origin, "main tip");
    git(origin, "checkout", "-q", "-b", "feature/x");
    sha.feature = commit(origin, "feature tip");
    git(origin, "tag", "-a", "v2.0.0", "-m", "release 2.0.0"); // on the feature branch only
    // A commit that no branch or tag points to, only a pull-request ref.
    git(origin, "checkout", "-q", "--detach", sha.main);
    sha.pull = commit(origin, "pull request");
    git(origin, "update-ref", "refs/pull/1/head", sha.pull);
    git(origin, "checkout", "-q", "main");
  });

  it("checks out the tip of a branch, slashes included", async () => {
    const revision = await checkout({ kind: "branch", branch: "feature/x" });
    assert.deepEqual([revision.sha, revision.ref], [sha.feature, "feature/x"]);
    assert.equal(checkedOut(path.join(root, `checkout-${checkouts}`)), "feature tip");
  });

  it("checks out the commit of a lightweight tag and of an annotated tag", async () => {
    assert.equal((await checkout({ kind: "tag", tag: "v1.0.0" })).sha, sha.v100);
    const annotated = await checkout({ kind: "tag", tag: "v1.2.0" });
    assert.deepEqual([annotated.sha, annotated.ref], [sha.v120, "v1.2.0"]);
    assert.equal(checkedOut(path.join(root, `checkout-${checkouts}`)), "1.2.0");
  });

  it("picks the highest tag satisfying a semver range, reading v1.2.3 as 1.2.3 and leaving pre-releases out", async () => {
    const inRange = await checkout({ kind: "semver", range: ">=1.0.0 <2.0.0" });
    assert.deepEqual([inRange.sha, inRange.ref], [sha.v120, "v1.2.0"]);
    assert.equal((await checkout({ kind: "semver", range: "*" })).ref, "v2.0.0");
    assert.equal((await checkout({ kind: "semver", range: "~1.0" })).sha, sha.v100);
    // A range that names a pre-release may pick one.
    assert.equal((await checkout({ kind: "semver", range: ">=1.3.0-rc.0 <2.0.0" })).sha, sha.rc);
  });

  it("fails naming the range when no tag satisfies it", async () => {
    await assert.rejects(
      checkout({ kind: "semver", range: ">=3.0.0" }),
      (err: unknown) => err instanceof SourceError && /has no tag matching semver range ">=3\.0\.0"/.test(err.message),
    );
  });

  it("checks out a commit that no branch or tag points to, by SHA or by its ref name", async () => {
    const bySha = await checkout({ kind: "commit", sha: sha.pull! });
    assert.equal(bySha.sha, sha.pull);
    assert.equal(checkedOut(path.join(root, `checkout-${checkouts}`)), "pull request");
    const byName = await checkout({ kind: "name", name: "refs/pull/1/head" });
    assert.deepEqual([byName.sha, byName.ref], [sha.pull, "refs/pull/1/head"]);
  });

  it("resolves an unqualified name as a branch, then a tag, then a commit, and no ref as the default branch", async () => {
    assert.equal((await checkout({ kind: "auto", ref: "feature/x" })).sha, sha.feature);
    assert.equal((await checkout({ kind: "auto", ref: "latest" })).sha, sha.rc);
    assert.equal((await checkout({ kind: "auto", ref: sha.v100!.slice(0, 12) })).sha, sha.v100);
    const head = await checkout(undefined);
    assert.deepEqual([head.sha, head.ref], [sha.main, "main"]);
  });

  it("keeps the config repo's string ref working: a branch, a tag or a commit", async () => {
    const dir = path.join(root, "config-checkout");
    assert.equal((await checkoutSource({ url: origin, ref: "main" }, dir)).sha, sha.main);
    assert.equal((await checkoutSource({ url: origin, ref: "v1.2.0" }, dir)).sha, sha.v120);
    assert.equal((await checkoutSource({ url: origin, ref: sha.pull }, dir)).sha, sha.pull);
  });

  it("names what is missing: a branch, a tag, a ref name", async () => {
    await assert.rejects(checkout({ kind: "branch", branch: "nope" }), /has no branch "nope"/);
    await assert.rejects(checkout({ kind: "tag", tag: "v9.9.9" }), /has no tag "v9\.9\.9"/);
    await assert.rejects(checkout({ kind: "commit", sha: "0".repeat(40) }), /has no commit 0{40}/);
    await assert.rejects(checkout({ kind: "name", name: "refs/pull/404/head" }), /has no ref "refs\/pull\/404\/head"/);
    await assert.rejects(checkout({ kind: "name", name: "--upload-pack=touch" }), /is not a full ref name/);
  });

  it("sees a tag pushed after the first checkout when the same folder is fetched again", async () => {
    const dir = path.join(root, "refetched");
    const ref: GitRef = { kind: "semver", range: "^2.0.0" };
    assert.equal((await checkoutGitRef({ url: origin }, ref, dir)).ref, "v2.0.0");
    git(origin, "checkout", "-q", "feature/x");
    const v210 = commit(origin, "2.1.0");
    git(origin, "tag", "v2.1.0");
    git(origin, "checkout", "-q", "main");
    const again = await checkoutGitRef({ url: origin }, ref, dir);
    assert.deepEqual([again.sha, again.ref], [v210, "v2.1.0"]);
  });
});

describe("highestMatchingTag", () => {
  const tags = ["v1.0.0", "1.1.0", "v1.10.0", "v1.9.0", "v2.0.0-beta.1", "latest", "release-3", "v3"];

  it("orders by version, not by name, and skips tags that are not versions", () => {
    assert.equal(highestMatchingTag(tags, "1.x"), "v1.10.0");
    assert.equal(highestMatchingTag(tags, "<1.5.0"), "1.1.0");
    assert.equal(highestMatchingTag(tags, "*"), "v1.10.0");
  });

  it("reads Flux's comma-separated comparators as 'and'", () => {
    assert.equal(highestMatchingTag(tags, ">=1.0.0, <1.5.0"), "1.1.0");
  });

  it("refuses an invalid range and names it", () => {
    assert.throws(() => highestMatchingTag(tags, "not a range"), /semver range "not a range" of the repository is not a valid range/);
  });
});
