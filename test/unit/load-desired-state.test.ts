import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { loadConfigFolder, readCheckoutFile } from "../../src/desired-state/load-desired-state";
import { DesiredStateError, GuardError } from "../../src/desired-state/manifest-error";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const cm = (name: string, ns = "demo") => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n`;

describe("loadConfigFolder", () => {
  it("reads *.yaml and *.yml recursively, sorted, ignoring other files and dot-folders", () => {
    const repo = tempDir();
    writeFiles(repo, {
      "clusters/dev/b.yml": cm("b"),
      "clusters/dev/a/a.yaml": cm("a"),
      "clusters/dev/notes.md": "# not yaml",
      "clusters/dev/.hidden/x.yaml": cm("hidden"),
      "clusters/prod/p.yaml": cm("p"),
    });
    const loaded = loadConfigFolder({ checkout: repo, path: "clusters/dev" });
    assert.deepEqual(
      loaded.files.map((f) => f.path),
      ["clusters/dev/a/a.yaml", "clusters/dev/b.yml"],
    );
    assert.deepEqual(
      loaded.files.flatMap((f) => f.objects.map((o) => o.object.metadata.name)),
      ["a", "b"],
    );
  });

  it("hands folders with a kustomization.yaml to Kustomize instead of reading their files", () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/plain.yaml": cm("plain"),
      "c/overlay/kustomization.yaml": "resources: [cm.yaml]\n",
      "c/overlay/cm.yaml": cm("from-kustomize"),
    });
    const loaded = loadConfigFolder({ checkout: repo, path: "c" });
    assert.deepEqual(loaded.kustomizeDirs, ["c/overlay"]);
    assert.deepEqual(
      loaded.files.map((f) => f.path),
      ["c/plain.yaml"],
    );
  });

  it("collects every error of every file before giving up", () => {
    const repo = tempDir();
    writeFiles(repo, { "c/one.yaml": "a: [\n", "c/two.yaml": "apiVersion: v1\nkind: ConfigMap\n", "c/ok.yaml": cm("ok") });
    assert.throws(
      () => loadConfigFolder({ checkout: repo, path: "c" }),
      (err: unknown) => {
        assert.ok(err instanceof DesiredStateError);
        assert.equal(err.errors.length, 2);
        assert.match(err.message, /c\/one\.yaml:2:1 \(document 1\): invalid YAML/);
        assert.match(err.message, /c\/two\.yaml:1 \(document 1\): ConfigMap: `metadata` is missing/);
        return true;
      },
    );
  });

  it("refuses a missing folder", () => {
    const repo = tempDir();
    assert.throws(
      () => loadConfigFolder({ checkout: repo, path: "nope" }),
      (e: unknown) => e instanceof GuardError && /does not exist/.test(e.message),
    );
  });

  it("refuses paths and symlinks that leave the checkout", () => {
    const outside = tempDir();
    writeFiles(outside, { "secret.yaml": cm("outside") });
    const repo = tempDir();
    writeFiles(repo, { "c/ok.yaml": cm("ok") });
    fs.symlinkSync(path.join(outside, "secret.yaml"), path.join(repo, "c", "link.yaml"));
    fs.symlinkSync(outside, path.join(repo, "out"));
    assert.throws(() => loadConfigFolder({ checkout: repo, path: "../x" }), /leaves the checkout/);
    assert.throws(() => loadConfigFolder({ checkout: repo, path: "/etc" }), /leaves the checkout/);
    assert.throws(() => loadConfigFolder({ checkout: repo, path: "c" }), /c\/link\.yaml:1: symbolic link to .* outside the checkout/);
    assert.throws(() => readCheckoutFile(repo, "out/secret.yaml"), /outside the checkout/);
    assert.throws(() => readCheckoutFile(repo, "c/../../etc/passwd"), /leaves the checkout/);
  });

  it("resolves symlink chains as the kernel does: `..` in a link target applies after the link before it", () => {
    // work/repo/b -> .  and  work/repo/a -> b/..  : the kernel resolves a to work/, outside the
    // checkout (a lexical resolution would say work/repo).
    const work = tempDir();
    const repo = path.join(work, "repo");
    writeFiles(work, { "secret.yaml": cm("outside"), "repo/c/ok.yaml": cm("ok") });
    fs.symlinkSync(".", path.join(repo, "b"));
    fs.symlinkSync("b/..", path.join(repo, "a"));
    fs.symlinkSync("../a/secret.yaml", path.join(repo, "c", "stolen.yaml"));
    assert.throws(() => loadConfigFolder({ checkout: repo, path: "c" }), /c\/stolen\.yaml:1: symbolic link to .* outside the checkout/);
    assert.throws(() => readCheckoutFile(repo, "a/secret.yaml"), /outside the checkout/);
  });
});
