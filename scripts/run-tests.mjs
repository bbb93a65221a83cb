// Runs the compiled tests of the tiers named on the command line (unit, program, e2e) with
// node's test runner. Program tests run one file per process (Pulumi mocks are global);
// end-to-end files run one at a time, each with its own control plane.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const tiers = process.argv.slice(2);
const files = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith(".test.js") ? [p] : [];
  });
const list = tiers.flatMap((t) => files(join("dist", "test", t)).map((f) => ({ t, f })));
if (list.length === 0) {
  console.error(`no test files for ${tiers.join(", ")}`);
  process.exit(1);
}
const args = ["--test", "--test-concurrency=1", "--test-reporter=spec", ...list.map((x) => x.f)];
const r = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(r.status ?? 1);
