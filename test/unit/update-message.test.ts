import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatUpdateMessage, parseUpdateMessage, RUN_KINDS } from "../../src/reconcile/update-message";

const SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
const FROM = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";

describe("update messages", () => {
  it("formats and parses back every kind of run", () => {
    for (const kind of RUN_KINDS) {
      const text = formatUpdateMessage({ kind, sha: SHA, subject: "Add the web app" });
      assert.equal(text, `${kind} 1a2b3c4: Add the web app`);
      assert.deepEqual(parseUpdateMessage(text), { kind, sha: "1a2b3c4", subject: "Add the web app", from: undefined, by: undefined });
    }
  });

  it("records a rollback's previous commit and who rolled back", () => {
    const text = formatUpdateMessage({ kind: "rollback", sha: SHA, subject: "Add the web app", from: FROM, by: "alice@example.com" });
    assert.equal(text, "rollback 1a2b3c4 from 9f8e7d6 by alice@example.com: Add the web app");
    assert.deepEqual(parseUpdateMessage(text), {
      kind: "rollback",
      sha: "1a2b3c4",
      subject: "Add the web app",
      from: "9f8e7d6",
      by: "alice@example.com",
    });
  });

  it("round-trips a rollback that knows only one of from and by", () => {
    const byOnly = formatUpdateMessage({ kind: "rollback", sha: SHA, subject: "s", by: "Alice Smith" });
    assert.equal(byOnly, "rollback 1a2b3c4 from - by Alice Smith: s");
    assert.deepEqual(parseUpdateMessage(byOnly), { kind: "rollback", sha: "1a2b3c4", subject: "s", from: undefined, by: "Alice Smith" });
    const fromOnly = formatUpdateMessage({ kind: "rollback", sha: SHA, subject: "s", from: FROM });
    assert.equal(fromOnly, "rollback 1a2b3c4 from 9f8e7d6 by -: s");
    assert.deepEqual(parseUpdateMessage(fromOnly), { kind: "rollback", sha: "1a2b3c4", subject: "s", from: "9f8e7d6", by: undefined });
  });

  it("keeps a subject that itself contains colons", () => {
    const text = formatUpdateMessage({ kind: "sync", sha: SHA, subject: "fix(web): bump image: v2" });
    assert.equal(parseUpdateMessage(text)?.subject, "fix(web): bump image: v2");
    const rollback = formatUpdateMessage({ kind: "rollback", sha: SHA, subject: "fix: revert: x", from: FROM, by: "bob" });
    const parsed = parseUpdateMessage(rollback);
    assert.equal(parsed?.by, "bob");
    assert.equal(parsed?.subject, "fix: revert: x");
  });

  it("keeps a subject that looks like a rollback's from and by", () => {
    const text = formatUpdateMessage({ kind: "sync", sha: SHA, subject: "from abc by me: hi" });
    assert.deepEqual(parseUpdateMessage(text), {
      kind: "sync",
      sha: "1a2b3c4",
      subject: "from abc by me: hi",
      from: undefined,
      by: undefined,
    });
  });

  it("writes only the first line of a multi-line subject", () => {
    const text = formatUpdateMessage({ kind: "heal", sha: SHA, subject: "Add the web app\n\nLonger body: with details\nmore" });
    assert.equal(text, "heal 1a2b3c4: Add the web app");
    assert.equal(parseUpdateMessage(text)?.subject, "Add the web app");
  });

  it("round-trips an empty subject", () => {
    const text = formatUpdateMessage({ kind: "manual", sha: SHA, subject: "" });
    assert.equal(text, "manual 1a2b3c4: ");
    assert.equal(parseUpdateMessage(text)?.subject, "");
  });

  it("parses a full-length SHA written by an older ferry", () => {
    assert.equal(parseUpdateMessage(`sync ${SHA}: s`)?.sha, SHA);
  });

  it("returns undefined for messages ferry did not write", () => {
    for (const message of [
      "",
      "Update via the Pulumi CLI",
      "sync: Add the web app",
      "deploy 1a2b3c4: Add the web app",
      "sync nothex1: Add the web app",
      "sync 1a2: too short a SHA",
      "sync 1a2b3c4 Add the web app",
      " sync 1a2b3c4: leading space",
    ]) {
      assert.equal(parseUpdateMessage(message), undefined, message);
    }
  });
});
