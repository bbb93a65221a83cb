import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { FileLockBusyError, withFileLock } from "../../src/lib/file-lock";
import { processState } from "../../src/lib/process-alive";
import { tempDir } from "../helpers/temp-dir";

/** Polls until fn returns true, or fails after the deadline. */
async function waitUntil(what: string, fn: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("file lock", () => {
  it("makes a second holder in the same process wait until the first releases, naming who it waits for", async () => {
    const lock = path.join(tempDir(), "pulumi-3.184.0.build-lock");
    const events: string[] = [];
    const lines: string[] = [];
    let releaseFirst!: () => void;
    const firstMayEnd = new Promise<void>((resolve) => (releaseFirst = resolve));

    const first = withFileLock(lock, { what: "building pulumi" }, async () => {
      events.push("first start");
      await firstMayEnd;
      events.push("first end");
    });
    await waitUntil("the first holder to start", () => events.includes("first start"));
    const second = withFileLock(lock, { what: "building pulumi", pollMs: 10, progress: (l) => lines.push(l) }, async () => {
      events.push("second");
    });

    await waitUntil("the second to report that it waits", () => lines.length > 0);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, new RegExp(`^waiting for pid ${process.pid} on .* to finish building pulumi \\(lock ${lock}\\)$`));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(events, ["first start"], "the second ran while the first held the lock");

    releaseFirst();
    await Promise.all([first, second]);
    assert.deepEqual(events, ["first start", "first end", "second"]);
    assert.equal(fs.existsSync(lock), false, "the lock is removed after the last release");
    assert.equal(fs.existsSync(`${lock}.holder`), false);
  });

  it("takes over a stale lock (not refreshed, no holder) without waiting", async () => {
    const lock = path.join(tempDir(), "etcd-3.6.0.build-lock");
    fs.mkdirSync(lock);
    const anHourAgo = new Date(Date.now() - 3_600_000);
    fs.utimesSync(lock, anHourAgo, anHourAgo);
    const lines: string[] = [];
    const started = Date.now();
    const result = await withFileLock(lock, { what: "building etcd", progress: (l) => lines.push(l) }, async () => {
      assert.ok(fs.statSync(lock).mtimeMs > anHourAgo.getTime() + 60_000, "the lock is ours and fresh");
      return "built";
    });
    assert.equal(result, "built");
    assert.deepEqual(lines, []);
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
    assert.equal(fs.existsSync(lock), false);
  });

  it("gives up after the bounded wait on a fresh lock, saying what to remove", async () => {
    const lock = path.join(tempDir(), "kwok-0.7.0.build-lock");
    fs.mkdirSync(lock); // fresh mtime: someone seems to hold it
    let ran = false;
    await assert.rejects(
      withFileLock(lock, { what: "building kwok", waitMs: 100, pollMs: 20 }, async () => {
        ran = true;
      }),
      (err: Error) =>
        /gave up after 0 s waiting for another process to finish building kwok/.test(err.message) && err.message.includes(lock),
    );
    assert.equal(ran, false);
    assert.equal(fs.existsSync(lock), true, "a lock that is not ours is left alone");
  });

  it("releases the lock when the work fails", async () => {
    const lock = path.join(tempDir(), "x.build-lock");
    await assert.rejects(
      withFileLock(lock, { what: "failing" }, async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(fs.existsSync(lock), false);
    assert.equal(await withFileLock(lock, { what: "again" }, async () => 42), 42);
  });

  it("takes over at once a fresh lock whose holder on this host is dead or a zombie, and keeps a live holder's", async () => {
    const dir = tempDir();
    const holder = (lock: string, pid: number): void => {
      fs.mkdirSync(lock); // fresh mtime: only the holder's pid tells it is stale
      fs.writeFileSync(`${lock}.holder`, JSON.stringify({ pid, hostname: os.hostname(), since: new Date().toISOString() }));
    };
    const exited = spawn("true", [], { stdio: "ignore" });
    await once(exited, "exit");
    holder(path.join(dir, "dead.lock"), exited.pid!);
    assert.equal(await withFileLock(path.join(dir, "dead.lock"), { what: "syncing", waitMs: 0 }, async () => "ran"), "ran");

    if (process.platform === "linux") {
      // A zombie: `sleep 0` exits and `sleep 5` (sh exec'd into it) never reaps it.
      const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 5"], { stdio: ["ignore", "pipe", "ignore"] });
      try {
        const [line] = (await once(parent.stdout!, "data")) as [Buffer];
        const zombie = Number(line.toString().trim());
        await waitUntil("the zombie", () => processState(zombie) === "Z");
        holder(path.join(dir, "zombie.lock"), zombie);
        assert.equal(await withFileLock(path.join(dir, "zombie.lock"), { what: "syncing", waitMs: 0 }, async () => "ran"), "ran");
      } finally {
        parent.kill("SIGKILL");
      }
    }

    const live = spawn("sleep", ["5"], { stdio: "ignore" });
    try {
      await once(live, "spawn");
      holder(path.join(dir, "live.lock"), live.pid!);
      await assert.rejects(
        withFileLock(path.join(dir, "live.lock"), { what: "syncing", waitMs: 0 }, async () => "ran"),
        (err: Error) => err instanceof FileLockBusyError && err.message.includes(`pid ${live.pid}`),
      );
      assert.equal(fs.existsSync(path.join(dir, "live.lock")), true);
    } finally {
      live.kill("SIGKILL");
    }
  });

  it("lets only one of several waiters break a dead holder's lock", async () => {
    const lock = path.join(tempDir(), "race.lock");
    const exited = spawn("true", [], { stdio: "ignore" });
    await once(exited, "exit");
    fs.mkdirSync(lock);
    fs.writeFileSync(`${lock}.holder`, JSON.stringify({ pid: exited.pid, hostname: os.hostname(), since: new Date().toISOString() }));
    let inside = 0;
    let most = 0;
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map(() =>
        withFileLock(lock, { what: "racing", waitMs: 5_000, pollMs: 10 }, async () => {
          most = Math.max(most, ++inside);
          await new Promise((r) => setTimeout(r, 30));
          inside--;
        }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "fulfilled", "fulfilled", "fulfilled"],
    );
    assert.equal(most, 1, "two holders at once");
  });
});
