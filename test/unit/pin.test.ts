import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decideRef, parsePin, Pin } from "../../src/reconcile/pin";

const PINNED = "a".repeat(40);
const OLD_HEAD = "b".repeat(40);
const NEW_HEAD = "c".repeat(40);

const pin = (policy: Pin["policy"], head: string | undefined = OLD_HEAD): Pin => ({
  revision: PINNED,
  from: OLD_HEAD,
  by: "alice",
  at: "2025-01-02T03:04:05.000Z",
  policy,
  ...(head ? { head } : {}),
});

describe("parsePin", () => {
  it("reads a pin given as an object", () => {
    assert.deepEqual(parsePin(pin("resume")), pin("resume"));
  });

  it("reads a pin given as JSON text, as a stack output may hold it", () => {
    assert.deepEqual(parsePin(JSON.stringify(pin("new-commit"))), pin("new-commit"));
  });

  it("reads a pin without the optional from and head", () => {
    const minimal = { revision: PINNED, by: "alice", at: "2025-01-02T03:04:05.000Z", policy: "resume" };
    assert.deepEqual(parsePin(minimal), minimal);
  });

  it("returns undefined for an empty string, invalid JSON and nothing", () => {
    assert.equal(parsePin(""), undefined);
    assert.equal(parsePin("{not json"), undefined);
    assert.equal(parsePin(undefined), undefined);
    assert.equal(parsePin(null), undefined);
  });

  it("returns undefined for values that are not a pin", () => {
    assert.equal(parsePin({ ...pin("resume"), revision: "abc1234" }), undefined, "a short SHA is not a pin's revision");
    assert.equal(parsePin({ ...pin("resume"), policy: "forever" }), undefined);
    assert.equal(parsePin({ ...pin("resume"), by: undefined }), undefined, "a pin names who rolled back");
    assert.equal(parsePin(JSON.stringify({ revision: PINNED })), undefined);
    assert.equal(parsePin(42), undefined);
  });
});

describe("decideRef", () => {
  it("follows the branch when there is no pin", () => {
    assert.deepEqual(decideRef({ followed: "main" }), { ref: "main" });
    assert.deepEqual(decideRef({ followed: undefined, head: NEW_HEAD, unpin: true }), { ref: undefined });
  });

  it("applies the pinned commit and keeps the pin", () => {
    const p = pin("resume");
    const decision = decideRef({ followed: "main", pin: p, head: OLD_HEAD });
    assert.equal(decision.ref, PINNED);
    assert.deepEqual(decision.pin, p);
    assert.equal(decision.unpinned, undefined);
  });

  it("follows the branch again and drops the pin when asked to unpin", () => {
    assert.deepEqual(decideRef({ followed: "main", pin: pin("resume"), head: OLD_HEAD, unpin: true }), {
      ref: "main",
      unpinned: "resume",
    });
    // Unpinning wins over a new-commit policy whose head moved.
    assert.deepEqual(decideRef({ followed: "main", pin: pin("new-commit"), head: NEW_HEAD, unpin: true }), {
      ref: "main",
      unpinned: "resume",
    });
  });

  it("lifts a new-commit pin once the branch moved past the pinned head", () => {
    assert.deepEqual(decideRef({ followed: "main", pin: pin("new-commit"), head: NEW_HEAD }), { ref: "main", unpinned: "new-commit" });
  });

  it("keeps a new-commit pin while the branch head is the one it was pinned at", () => {
    const decision = decideRef({ followed: "main", pin: pin("new-commit"), head: OLD_HEAD });
    assert.equal(decision.ref, PINNED);
    assert.deepEqual(decision.pin, pin("new-commit"));
    assert.equal(decision.unpinned, undefined);
  });

  it("keeps a new-commit pin when the head is not known", () => {
    assert.equal(decideRef({ followed: "main", pin: pin("new-commit") }).ref, PINNED);
  });

  it("keeps a resume pin even when the branch moved", () => {
    const decision = decideRef({ followed: "main", pin: pin("resume"), head: NEW_HEAD });
    assert.equal(decision.ref, PINNED);
    assert.deepEqual(decision.pin, pin("resume"));
    assert.equal(decision.unpinned, undefined);
  });
});
