import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LockedError } from "../../src/reconcile/ports";
import { fileStackLock } from "../../src/reconcile/stack-lock";
import { tempDir } from "../helpers/temp-dir";

describe("stack lock", () => {
  it("gives one run a stack at a time: a second run gives up at once, or waits until the first is done", async () => {
    const dir = tempDir();
    const release = await fileStackLock(dir, "dev").acquire({ waitMs: 0 });
    await assert.rejects(fileStackLock(dir, "dev").acquire({ waitMs: 0 }), (err: unknown) => {
      assert.ok(err instanceof LockedError);
      assert.match(err.message, new RegExp(`stack dev is being reconciled by another run: pid ${process.pid} `));
      return true;
    });
    // Another stack is not held up.
    await (
      await fileStackLock(dir, "prod").acquire({ waitMs: 0 })
    )();
    const waited: string[] = [];
    const second = fileStackLock(dir, "dev").acquire({ waitMs: 10_000, onWait: (l) => waited.push(l) });
    setTimeout(() => void release(), 300);
    await (
      await second
    )();
    assert.equal(waited.length, 1);
    assert.match(waited[0]!, /waiting for pid \d+ .* to finish reconciling stack dev/);
  });
});
