import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { scaffoldFiles } from "../../src/cli/commands/init-command";

describe("ferry init", () => {
  it("scaffolds one folder per cluster pulling in the shared folders, infrastructure before apps", () => {
    const files = scaffoldFiles(["prod", "staging"]);
    assert.ok(files["README.md"]?.includes("clusters/<name>/"));
    for (const c of ["prod", "staging"]) {
      const apps = yaml.load(files[`clusters/${c}/apps.yaml`]!) as { spec: { path: string; dependsOn: { name: string }[] } };
      assert.equal(apps.spec.path, "./apps");
      assert.deepEqual(apps.spec.dependsOn, [{ name: "infrastructure" }]);
      assert.ok(files[`clusters/${c}/infrastructure.yaml`]);
    }
  });
});
