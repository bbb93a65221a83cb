import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { isProcessAlive, processState } from "../../src/lib/process-alive";

/** Polls until fn returns a value, or fails after the deadline. */
async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("process alive check", () => {
  it("sees this process and a running child as alive", async () => {
    assert.equal(isProcessAlive(process.pid), true);
    const child = spawn("sleep", ["5"], { stdio: "ignore" });
    try {
      await once(child, "spawn");
      assert.equal(isProcessAlive(child.pid!), true);
      assert.match(String(processState(child.pid!)), /^[RSD]$/);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("sees an exited and reaped child as dead", async () => {
    const child = spawn("true", [], { stdio: "ignore" });
    const pid = child.pid!;
    await once(child, "exit");
    assert.equal(isProcessAlive(pid), false);
    assert.equal(processState(pid), undefined);
  });

  it("counts a process it may not signal (EPERM) as alive", () => {
    // pid 1 belongs to root: a non-root test process gets EPERM from kill(1, 0), root gets no error.
    assert.equal(isProcessAlive(1), true);
  });

  it("never takes a pid of 0 or below (process groups) for a process", () => {
    for (const pid of [0, -1, -process.pid, 1.5, Number.NaN]) assert.equal(isProcessAlive(pid), false, String(pid));
  });

  it("counts a zombie (exited, not yet reaped by its parent) as dead", { skip: process.platform !== "linux" }, async () => {
    // sh starts `sleep 0` in the background, prints its pid and becomes `sleep 5`, which never reaps it:
    // the grandchild stays a zombie until `sleep 5` is gone (node would reap a direct child itself).
    const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 5"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const [line] = (await once(parent.stdout!, "data")) as [Buffer];
      const zombie = Number(line.toString().trim());
      assert.ok(Number.isInteger(zombie) && zombie > 0, `no pid in ${JSON.stringify(line.toString())}`);
      await waitFor("the background sleep to become a zombie", () => (processState(zombie) === "Z" ? true : undefined));
      // kill(0) still succeeds on a zombie: that is what the old checks trusted.
      assert.doesNotThrow(() => process.kill(zombie, 0));
      assert.equal(isProcessAlive(zombie), false);
      assert.equal(isProcessAlive(parent.pid!), true);
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
