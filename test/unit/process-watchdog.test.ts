import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as path from "node:path";
import { describe, it } from "node:test";
import { isProcessAlive } from "../../src/lib/process-alive";
import { descendantsOf, ProcessEntry, processTable, subtreeTable } from "../../src/lib/process-tree";
import { carriesMark, ownedProcesses, survivors } from "../../src/lib/process-watchdog";

const p = (pid: number, ppid: number, sid = 10, startTime = `t${pid}`, state = "S"): ProcessEntry => ({ pid, ppid, sid, startTime, state });

describe("process watchdog", () => {
  it("owns the owner's descendants in its session, not itself, detached daemons or zombies", () => {
    const table = [
      p(1, 0, 1),
      p(100, 1), // ferry
      p(101, 100), // pulumi
      p(102, 101), // language host, in a process group of its own but the same session
      p(103, 101, 10, "t103", "Z"),
      p(104, 100, 104), // a detached supervisor (setsid)
      p(105, 104, 104),
      p(106, 100, 106), // the watchdog itself
      p(200, 1), // unrelated
    ];
    assert.deepEqual(
      ownedProcesses(table, 100, 106).map((e) => e.pid),
      [101, 102],
    );
    assert.deepEqual(ownedProcesses(table, 999, 106), []);
  });

  it("after the owner died, kills the processes it saw that still run as themselves, with what they started since", () => {
    const snapshot = [p(101, 100), p(102, 101), p(107, 100)];
    const now = [
      p(1, 0, 1),
      p(101, 1), // reparented to init
      p(102, 101),
      p(108, 102), // started after the last snapshot
      p(107, 1, 10, "reused"), // the pid now names another process
    ];
    assert.deepEqual(
      survivors(snapshot, now)
        .map((e) => e.pid)
        .sort(),
      [101, 102, 108],
    );
  });

  it("recognises the owner's mark in an environment, and only its own", () => {
    const environ = ["PATH=/bin", "FERRY_PROCESS_OWNER=100:t100", ""].join("\0");
    assert.equal(carriesMark(environ, "100:t100"), true);
    assert.equal(carriesMark(environ, "100:t1"), false);
    assert.equal(carriesMark(environ, "10:t100"), false);
  });

  it("kills what a process started once that process is killed with SIGKILL", { skip: process.platform !== "linux" }, async () => {
    const watchdog = path.resolve(__dirname, "../../src/lib/process-watchdog.js");
    const script = [
      `const w = require(${JSON.stringify(watchdog)}).watchOwnProcesses();`,
      `const cp = require("node:child_process");`,
      `const c = cp.spawn("sleep", ["60"], { stdio: "ignore" });`,
      // An orphan from the start (its parent sh exits at once): no snapshot of the tree finds it, its mark does.
      `const orphan = Number(cp.execFileSync("sh", ["-c", "sleep 60 >/dev/null 2>&1 & echo $!"]).toString());`,
      `c.on("spawn", () => console.log(JSON.stringify({ watchdog: w, sleep: c.pid, orphan })));`,
      `setInterval(() => undefined, 1000);`,
    ].join("\n");
    const owner = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const [line] = (await once(owner.stdout!, "data")) as [Buffer];
    const { watchdog: dog, sleep, orphan } = JSON.parse(line.toString()) as { watchdog: number; sleep: number; orphan: number };
    try {
      assert.ok(isProcessAlive(dog) && isProcessAlive(sleep) && isProcessAlive(orphan));
      // Let the watchdog take a snapshot of the tree first.
      await new Promise((r) => setTimeout(r, 1200));
      owner.kill("SIGKILL");
      const deadline = Date.now() + 5000;
      while (isProcessAlive(sleep) || isProcessAlive(orphan) || isProcessAlive(dog)) {
        if (Date.now() > deadline)
          assert.fail(
            `still running 5 s after the owner was killed: sleep ${isProcessAlive(sleep)}, orphan ${isProcessAlive(orphan)}, watchdog ${isProcessAlive(dog)}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      for (const pid of [sleep, orphan, dog]) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  });

  it(
    "finds a process's subtree through its tasks' children files, as a full scan of /proc does",
    { skip: process.platform !== "linux" },
    async () => {
      const child = spawn("sleep", ["30"], { stdio: "ignore" });
      try {
        const pid = child.pid!;
        const subtree = subtreeTable(process.pid);
        if (subtree === undefined) return; // a kernel without children files: the watchdog scans /proc instead
        assert.ok(subtree.some((p) => p.pid === pid && p.ppid === process.pid));
        const scanned = descendantsOf(processTable(), process.pid)
          .map((p) => p.pid)
          .sort();
        assert.deepEqual(
          subtree
            .filter((p) => p.pid !== process.pid)
            .map((p) => p.pid)
            .sort(),
          scanned,
        );
      } finally {
        child.kill("SIGKILL");
      }
    },
  );
});
