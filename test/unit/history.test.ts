import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HistoryEntry, historyEntries, resolveRollbackTarget, RollbackTargetError, UpdateRecord } from "../../src/reconcile/history";

const fakeSha = (head: string, tail: string) => head + tail.repeat(40 - head.length);
const A = fakeSha("aaaaaaa", "1");
const B = fakeSha("bbbbbbb", "2");
const C = fakeSha("ccccccc", "3");
// D and E share their first 7 digits: a 7-digit prefix is ambiguous between them.
const D = fakeSha("ddddddd", "4");
const E = fakeSha("ddddddd", "5");
// All digits: its 7-digit prefix must not be taken for an update number.
const F = fakeSha("1234567", "6");

function update(version: number, fields: Partial<UpdateRecord> = {}): UpdateRecord {
  return {
    version,
    kind: "update",
    startTime: `2025-01-0${version}T10:00:00.000Z`,
    endTime: `2025-01-0${version}T10:01:00.000Z`,
    message: `sync ${A.slice(0, 7)}: change ${version}`,
    result: "succeeded",
    environment: { "git.head": A },
    ...fields,
  };
}

function entry(version: number, commit: string | undefined, result: HistoryEntry["result"] = "succeeded"): HistoryEntry {
  return {
    version,
    startedAt: `2025-01-0${version}T10:00:00.000Z`,
    result,
    run: "sync",
    sha: commit,
    changes: { create: 0, update: 0, replace: 0, delete: 0, same: 0 },
  };
}

/** Asserts that resolving `target` throws a RollbackTargetError whose message matches. */
function refuses(entries: readonly HistoryEntry[], target: string, message: RegExp): void {
  assert.throws(
    () => resolveRollbackTarget(entries, target),
    (err: unknown) => {
      assert.ok(err instanceof RollbackTargetError, `expected a RollbackTargetError, got ${String(err)}`);
      assert.equal(err.name, "RollbackTargetError");
      assert.match(err.message, message);
      return true;
    },
  );
}

describe("history entries", () => {
  it("numbers the updates of a backend that records no versions (the file backend) from the oldest, refreshes included", () => {
    const updates = [update(3), update(2, { kind: "refresh" }), update(1)].map((u) => ({ ...u, version: 0 }));
    assert.deepEqual(
      historyEntries(updates).map((e) => [e.version, e.subject]),
      [
        [3, "change 3"],
        [1, "change 1"],
      ],
    );
  });

  it("numbers updates that started in the same second by Pulumi's order, newest first, so the numbers are stable", () => {
    const sameSecond = (n: number) => ({
      ...update(1, { message: `sync ${A.slice(0, 7)}: change ${n}` }),
      version: 0,
      startTime: "2025-01-01T10:00:00.000Z",
    });
    const entries = historyEntries([sameSecond(3), sameSecond(2), sameSecond(1)]);
    assert.deepEqual(
      entries.map((e) => [e.version, e.subject]),
      [
        [3, "change 3"],
        [2, "change 2"],
        [1, "change 1"],
      ],
    );
  });

  it("keeps only updates, not refreshes or previews, newest first", () => {
    const entries = historyEntries([update(1), { ...update(2), kind: "refresh" }, update(4), { ...update(3), kind: "preview" }, update(5)]);
    assert.deepEqual(
      entries.map((e) => e.version),
      [5, 4, 1],
    );
  });

  it("parses the run kind and subject of every message ferry writes", () => {
    const kinds = ["sync", "heal", "drift", "manual", "rollback", "resume"] as const;
    const entries = historyEntries(kinds.map((k, i) => update(i + 1, { message: `${k} 1a2b3c4: Subject of ${k}` })));
    assert.deepEqual(
      entries.map((e) => [e.version, e.run, e.subject]),
      [
        [6, "resume", "Subject of resume"],
        [5, "rollback", "Subject of rollback"],
        [4, "manual", "Subject of manual"],
        [3, "drift", "Subject of drift"],
        [2, "heal", "Subject of heal"],
        [1, "sync", "Subject of sync"],
      ],
    );
    assert.equal(entries[0]?.from, undefined);
    assert.equal(entries[0]?.by, undefined);
  });

  it("reads a rollback's previous commit and who rolled back", () => {
    const [e] = historyEntries([update(7, { message: "rollback 1a2b3c4 from 9f8e7d6 by alice@example.com: Add the web app" })]);
    assert.equal(e?.run, "rollback");
    assert.equal(e?.from, "9f8e7d6");
    assert.equal(e?.by, "alice@example.com");
    assert.equal(e?.subject, "Add the web app");
  });

  it("reads the commit, branch and author from the update's environment", () => {
    const [e] = historyEntries([
      update(1, {
        environment: {
          "git.head": B,
          "git.headName": "refs/heads/main",
          "git.author": "Alice",
          "git.author.email": "alice@example.com",
          "git.committer": "Bob",
        },
      }),
    ]);
    assert.equal(e?.sha, B);
    assert.equal(e?.ref, "refs/heads/main");
    assert.equal(e?.author, "Alice");
    assert.equal(e?.authorEmail, "alice@example.com");
  });

  it("leaves the commit fields empty when the update recorded no git environment", () => {
    const [e] = historyEntries([update(1, { environment: undefined })]);
    assert.equal(e?.sha, undefined);
    assert.equal(e?.ref, undefined);
    assert.equal(e?.author, undefined);
    assert.equal(e?.authorEmail, undefined);
  });

  it("converts times to ISO 8601, from strings and Dates, and leaves a running update without an end", () => {
    const [running, done] = historyEntries([
      update(1, { startTime: new Date(Date.UTC(2025, 0, 1, 10)), endTime: "2025-01-01T11:00:00+01:00" }),
      update(2, { endTime: undefined, result: "in-progress" }),
    ]);
    assert.equal(done?.startedAt, "2025-01-01T10:00:00.000Z");
    assert.equal(done?.endedAt, "2025-01-01T10:00:00.000Z");
    assert.equal(running?.endedAt, undefined);
    assert.equal(running?.result, "in-progress");
  });

  it("maps Pulumi's results to succeeded, failed or in-progress", () => {
    const entries = historyEntries([
      update(1, { result: "succeeded" }),
      update(2, { result: "failed" }),
      update(3, { result: "in-progress" }),
      update(4, { result: "not-started" }),
    ]);
    assert.deepEqual(
      entries.map((e) => e.result),
      ["in-progress", "in-progress", "failed", "succeeded"],
    );
  });

  it("counts imported resources as created and missing counts as zero", () => {
    const [e] = historyEntries([update(1, { resourceChanges: { create: 2, import: 3, update: 1, replace: 4, same: 7 } })]);
    assert.deepEqual(e?.changes, { create: 5, update: 1, replace: 4, delete: 0, same: 7 });
    const [none] = historyEntries([update(2, { resourceChanges: undefined })]);
    assert.deepEqual(none?.changes, { create: 0, update: 0, replace: 0, delete: 0, same: 0 });
  });

  it("marks updates ferry did not make as unknown, keeping their message as the subject", () => {
    const [empty, other] = historyEntries([update(2, { message: "" }), update(1, { message: "pulumi up by hand" })]);
    assert.equal(other?.run, "unknown");
    assert.equal(other?.subject, "pulumi up by hand");
    assert.equal(other?.from, undefined);
    assert.equal(empty?.run, "unknown");
    assert.equal(empty?.subject, undefined);
  });
});

describe("rollback target", () => {
  // Newest first as ferry history shows it: C is deployed now (twice: a sync and a heal), B failed once.
  const entries = [entry(6, C), entry(5, C), entry(4, B, "failed"), entry(3, B), entry(2, A), entry(1, undefined)];

  it("goes back to the newest successful commit other than the deployed one for previous", () => {
    const { sha, entry: e } = resolveRollbackTarget(entries, "previous");
    assert.equal(sha, B);
    assert.equal(e.version, 3);
  });

  it("skips failed updates of other commits for previous", () => {
    const { sha, entry: e } = resolveRollbackTarget([entry(3, C), entry(2, B, "failed"), entry(1, A)], "previous");
    assert.equal(sha, A);
    assert.equal(e.version, 1);
  });

  it("takes the deployed commit from the newest successful update, whatever the order given", () => {
    const { sha } = resolveRollbackTarget([entry(2, A), entry(5, C), entry(3, B)], "previous");
    assert.equal(sha, B);
  });

  it("refuses previous when every successful update applied the deployed commit", () => {
    refuses(
      [entry(2, C), entry(1, C), entry(3, A, "failed")],
      "previous",
      /no successful update of a commit other than the deployed ccccccc/,
    );
  });

  it("refuses previous on an empty history", () => {
    refuses([], "previous", /no successful update to roll back to/);
  });

  it("resolves an update number of ferry history", () => {
    const { sha, entry: e } = resolveRollbackTarget(entries, "2");
    assert.equal(sha, A);
    assert.equal(e.version, 2);
  });

  it("refuses the number of a failed update", () => {
    refuses(entries, "4", /update 4 did not succeed \(failed\)/);
  });

  it("refuses the number of an update that recorded no commit", () => {
    refuses(entries, "1", /update 1/);
  });

  it("says that a successful update without a commit recorded no commit, not that it failed", () => {
    refuses(entries, "1", /update 1 recorded no commit/);
  });

  it("refuses an update number the history does not have", () => {
    refuses(entries, "42", /no update 42/);
    refuses([], "1", /no update 1/);
  });

  it("resolves a full SHA and a 7-digit prefix, in either case", () => {
    assert.equal(resolveRollbackTarget(entries, A).entry.version, 2);
    assert.equal(resolveRollbackTarget(entries, B.slice(0, 7)).sha, B);
    assert.equal(resolveRollbackTarget(entries, B.slice(0, 7).toUpperCase()).sha, B);
  });

  it("takes a 7-digit all-numeric target for a SHA prefix, not an update number", () => {
    assert.equal(resolveRollbackTarget([entry(2, C), entry(1, F)], "1234567").sha, F);
  });

  it("resolves a commit applied several times to its newest successful update", () => {
    const { sha, entry: e } = resolveRollbackTarget(entries, C.slice(0, 7));
    assert.equal(sha, C);
    assert.equal(e.version, 6);
  });

  it("refuses a prefix that matches more than one commit", () => {
    refuses([entry(2, D), entry(1, E)], "ddddddd", /"ddddddd" matches 2 commits .*give more digits/);
    // More digits make it unambiguous.
    assert.equal(resolveRollbackTarget([entry(2, D), entry(1, E)], E.slice(0, 8)).sha, E);
  });

  it("refuses a commit that is not in the stack's history", () => {
    refuses(entries, "0123456789abcdef0123456789abcdef01234567", /is not in the stack's history/);
    refuses(entries, "eeeeeee", /commit eeeeeee is not in the stack's history/);
  });

  it("refuses a commit the stack only failed to apply", () => {
    refuses([entry(2, C), entry(1, D, "failed")], D.slice(0, 7), /is not in the stack's history of successful updates/);
  });

  it("refuses any SHA on an empty history", () => {
    refuses([], A, /is not in the stack's history/);
  });

  it("refuses a target that is neither previous, a number nor a SHA", () => {
    refuses(entries, "main", /"main" is not a commit SHA, an update number or "previous"/);
    refuses(entries, "HEAD~1", /is not a commit SHA/);
    // Too short for a prefix.
    refuses(entries, "abc", /is not a commit SHA/);
  });
});
