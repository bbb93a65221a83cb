import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { touchesStack } from "../../src/reconcile/touched-stacks";

const STACKS = ["clusters/dev", "clusters/prod"];

/** The stacks a change concerns. */
const touched = (changed: readonly string[], stackFolders: readonly string[] = STACKS) =>
  stackFolders.filter((folder) => touchesStack(changed, folder, stackFolders));

describe("touchesStack", () => {
  it("concerns the stack whose cluster folder holds a changed file", () => {
    assert.deepEqual(touched(["clusters/dev/apps.yaml"]), ["clusters/dev"]);
    assert.deepEqual(touched(["clusters/prod/nested/deep/kustomization.yaml"]), ["clusters/prod"]);
  });

  it("does not concern a stack when only another stack's folder changed", () => {
    assert.equal(touchesStack(["clusters/prod/apps.yaml"], "clusters/dev", STACKS), false);
    assert.equal(touchesStack(["clusters/prod/apps.yaml"], "clusters/prod", STACKS), true);
  });

  it("concerns every stack when a shared folder changed", () => {
    assert.deepEqual(touched(["apps/base/deployment.yaml"]), STACKS);
    assert.deepEqual(touched(["charts/web/values.yaml"]), STACKS);
  });

  it("concerns both stacks when a change spans their folders", () => {
    assert.deepEqual(touched(["clusters/dev/a.yaml", "clusters/prod/a.yaml"]), STACKS);
  });

  it("concerns no stack when only documentation or CI files changed", () => {
    assert.deepEqual(touched(["README.md"]), []);
    assert.deepEqual(touched(["clusters/dev/README.md"]), []);
    assert.deepEqual(touched([".github/workflows/preview.yaml"]), []);
    assert.deepEqual(touched(["docs/rollback.md", "docs/guide/setup.MD", "NOTES.txt", "LICENSE", "apps/OWNERS", ".gitignore"]), []);
  });

  it("concerns no stack when nothing changed", () => {
    assert.deepEqual(touched([]), []);
  });

  it("accepts folders given with a ./ prefix or a trailing slash", () => {
    const folders = ["./clusters/dev/", "clusters/prod/"];
    assert.deepEqual(touched(["clusters/dev/apps.yaml"], folders), ["./clusters/dev/"]);
    assert.deepEqual(touched(["clusters/prod/apps.yaml"], folders), ["clusters/prod/"]);
    assert.deepEqual(touched(["apps/base/deployment.yaml"], folders), folders);
    assert.equal(touchesStack(["clusters/dev/apps.yaml"], "./clusters/dev", STACKS), true);
    assert.equal(touchesStack(["clusters/dev/apps.yaml"], "clusters/dev/", STACKS), true);
  });

  it("does not take a folder whose name starts with the stack's folder for the stack's folder", () => {
    const folders = ["clusters/dev", "clusters/dev2"];
    assert.deepEqual(touched(["clusters/dev2/x.yaml"], folders), ["clusters/dev2"]);
    assert.deepEqual(touched(["clusters/dev/x.yaml"], folders), ["clusters/dev"]);
  });

  it("takes a file next to a stack's folder, not below it, for a shared file", () => {
    // clusters/dev2 is no stack here: a file there is shared, like any folder no stack owns.
    assert.deepEqual(touched(["clusters/dev2/x.yaml"]), STACKS);
  });

  it("counts every file for a stack at the repo's root", () => {
    assert.equal(touchesStack(["apps/web.yaml"], "", [""]), true);
    assert.equal(touchesStack(["apps/web.yaml"], ".", ["."]), true);
  });
});
