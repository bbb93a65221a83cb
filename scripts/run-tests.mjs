// Runs the compiled tests of the tiers named on the command line (unit, program, e2e) with
// node's test runner, one tier after the other. Every test file runs in a process of its own
// (Pulumi mocks are global to a process). End-to-end files each start their own control plane;
// two run at a time (the machines have 2 cores; most of a file's time is spent waiting on the
// engine and the cluster), or $FERRY_E2E_CONCURRENCY.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const tiers = process.argv.slice(2);
const files = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith(".test.js") ? [p] : [];
  });
const concurrency = { unit: 1, program: 1, e2e: Number(process.env.FERRY_E2E_CONCURRENCY ?? 2) };
let failed = false;
for (const tier of tiers) {
  const list = files(join("dist", "test", tier));
  if (list.length === 0) {
    console.error(`no test files for ${tier}`);
    process.exit(1);
  }
  const args = ["--test", `--test-concurrency=${concurrency[tier] ?? 1}`, "--test-reporter=spec", ...list];
  const r = spawnSync(process.execPath, args, { stdio: "inherit" });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
