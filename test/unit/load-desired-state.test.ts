import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { allObjects } from "../../src/desired-state/desired-state";
import { loadDesiredState } from "../../src/desired-state/load-desired-state";
import { DesiredStateError, GuardError } from "../../src/desired-state/manifest-error";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const cm = (name: string, ns = "demo") => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n`;

describe("loadDesiredState", () => {
  it("reads *.yaml and *.yml recursively, sorted, ignoring other files and dot-folders", () => {
    const repo = tempDir();
    writeFiles(repo, {
      "clusters/dev/b.yml": cm("b"),
      "clusters/dev/a/a.yaml": cm("a"),
      "clusters/dev/notes.md": "# not yaml",
      "clusters/dev/.hidden/x.yaml": cm("hidden"),
      "clusters/prod/p.yaml": cm("p"),
    });
    const state = loadDesiredState({ checkout: repo, path: "clusters/dev" });
    assert.deepEqual(
      state.files.map((f) => f.path),
      ["clusters/dev/a/a.yaml", "clusters/dev/b.yml"],
    );
    assert.deepEqual(
      allObjects(state).map((o) => o.id.name),
      ["a", "b"],
    );
  });

  it("collects every error of every file before giving up", () => {
    const repo = tempDir();
    writeFiles(repo, { "c/one.yaml": "a: [\n", "c/two.yaml": "apiVersion: v1\nkind: ConfigMap\n", "c/ok.yaml": cm("ok") });
    assert.throws(
      () => loadDesiredState({ checkout: repo, path: "c" }),
      (err: unknown) => {
        assert.ok(err instanceof DesiredStateError);
        assert.equal(err.errors.length, 2);
        assert.match(err.message, /c\/one\.yaml:2:1 \(document 1\): invalid YAML/);
        assert.match(err.message, /c\/two\.yaml:1 \(document 1\): ConfigMap: `metadata` is missing/);
        return true;
      },
    );
  });

  it("refuses an object defined twice, naming both places", () => {
    const repo = tempDir();
    writeFiles(repo, { "c/one.yaml": cm("dup"), "c/two.yaml": `# x\n${cm("dup")}` });
    assert.throws(
      () => loadDesiredState({ checkout: repo, path: "c" }),
      /c\/two\.yaml:2 \(document 1\): ConfigMap\/demo\/dup is defined twice: here and at c\/one\.yaml:1/,
    );
  });

  it("refuses a missing folder and an empty one, unless empty is allowed", () => {
    const repo = tempDir();
    fs.mkdirSync(path.join(repo, "empty"));
    writeFiles(repo, { "empty/readme.txt": "nothing" });
    assert.throws(
      () => loadDesiredState({ checkout: repo, path: "nope" }),
      (e: unknown) => e instanceof GuardError && /does not exist/.test(e.message),
    );
    assert.throws(
      () => loadDesiredState({ checkout: repo, path: "empty" }),
      (e: unknown) => e instanceof GuardError && /contains no Kubernetes objects/.test(e.message),
    );
    assert.equal(loadDesiredState({ checkout: repo, path: "empty", allowEmpty: true }).files.length, 0);
  });

  it("refuses paths and symlinks that leave the checkout", () => {
    const outside = tempDir();
    writeFiles(outside, { "secret.yaml": cm("outside") });
    const repo = tempDir();
    writeFiles(repo, { "c/ok.yaml": cm("ok") });
    fs.symlinkSync(path.join(outside, "secret.yaml"), path.join(repo, "c", "link.yaml"));
    assert.throws(() => loadDesiredState({ checkout: repo, path: "../x" }), /leaves the checkout/);
    assert.throws(() => loadDesiredState({ checkout: repo, path: "c" }), /c\/link\.yaml:1: symbolic link to .* outside the checkout/);
  });
});
