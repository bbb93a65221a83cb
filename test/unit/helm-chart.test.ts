// Folder charts' dependencies: what is vendored, where the rest comes from, and file:// confinement.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ConfinementError } from "../../src/desired-state/confinement";
import { dependencySources, helmCapabilityArgs, scratchChart } from "../../src/render/helm-chart";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const chart = (deps: string) => `apiVersion: v2\nname: umbrella\nversion: 0.1.0\ndependencies:\n${deps}`;

describe("dependencySources", () => {
  it("tells vendored dependencies from those to fetch (repository, OCI, a folder of the checkout)", () => {
    const repo = tempDir();
    writeFiles(repo, {
      "charts/umbrella/Chart.yaml": chart(
        [
          "  - {name: vendored, version: 1.0.0, repository: https://charts.example.com}",
          "  - {name: packaged, version: 1.0.0, repository: https://charts.example.com}",
          "  - {name: web, version: 1.0.0, repository: https://charts.example.com}",
          "  - {name: db, version: 1.0.0, repository: oci://registry.example.com/charts}",
          "  - {name: local, version: 0.1.0, repository: file://../local}",
          "",
        ].join("\n"),
      ),
      "charts/umbrella/charts/vendored/Chart.yaml": "apiVersion: v2\nname: vendored\nversion: 1.0.0\n",
      "charts/umbrella/charts/packaged-1.0.0.tgz": "",
      "charts/local/Chart.yaml": "apiVersion: v2\nname: local\nversion: 0.1.0\n",
    });
    const sources = dependencySources(path.join(repo, "charts/umbrella"), repo, "charts/umbrella");
    assert.deepEqual(Object.fromEntries(sources), {
      vendored: { kind: "vendored" },
      packaged: { kind: "vendored" },
      web: { kind: "repository", url: "https://charts.example.com" },
      db: { kind: "oci", url: "oci://registry.example.com/charts" },
      local: { kind: "file", dir: fs.realpathSync(path.join(repo, "charts/local")) },
    });
  });

  it("refuses a file:// dependency outside the checkout, and a repository alias, by name", () => {
    const root = tempDir();
    writeFiles(root, { "outside/Chart.yaml": "apiVersion: v2\nname: outside\nversion: 0.1.0\n" });
    const repo = path.join(root, "repo");
    writeFiles(repo, { "charts/umbrella/Chart.yaml": chart("  - {name: outside, version: 0.1.0, repository: file://../../../outside}\n") });
    assert.throws(
      () => dependencySources(path.join(repo, "charts/umbrella"), repo, "charts/umbrella"),
      (e: unknown) =>
        e instanceof ConfinementError && /file:\/\/\.\.\/\.\.\/\.\.\/outside/.test(e.message) && /outside the checkout/.test(e.message),
    );
    writeFiles(repo, { "charts/umbrella/Chart.yaml": chart("  - {name: web, version: 1.0.0, repository: '@stable'}\n") });
    assert.throws(
      () => dependencySources(path.join(repo, "charts/umbrella"), repo, "charts/umbrella"),
      /"web" names repository "@stable".*URL/,
    );
  });

  it("builds in a scratch copy with file:// written out absolutely, the checkout untouched", () => {
    const repo = tempDir();
    writeFiles(repo, {
      "charts/umbrella/Chart.yaml": chart("  - {name: local, version: 0.1.0, repository: file://../local}\n"),
      "charts/umbrella/Chart.lock": "dependencies: []\n",
      "charts/local/Chart.yaml": "apiVersion: v2\nname: local\nversion: 0.1.0\n",
    });
    const dir = path.join(repo, "charts/umbrella");
    const scratch = scratchChart(dir, dependencySources(dir, repo, "charts/umbrella"));
    try {
      assert.ok(!scratch.dir.startsWith(repo));
      assert.match(
        fs.readFileSync(path.join(scratch.dir, "Chart.yaml"), "utf8"),
        new RegExp(`repository: file://${fs.realpathSync(repo)}/charts/local`),
      );
      assert.equal(fs.existsSync(path.join(scratch.dir, "Chart.lock")), false);
      assert.match(fs.readFileSync(path.join(dir, "Chart.yaml"), "utf8"), /file:\/\/\.\.\/local/);
    } finally {
      scratch.cleanup();
    }
    assert.equal(fs.existsSync(scratch.dir), false);
  });
});

describe("helmCapabilityArgs", () => {
  it("passes the server's version and every served API", () => {
    assert.deepEqual(helmCapabilityArgs({ kubeVersion: "v1.34.4", apiVersions: ["v1", "v1/Pod"] }), [
      "--kube-version",
      "v1.34.4",
      "--api-versions",
      "v1",
      "--api-versions",
      "v1/Pod",
    ]);
  });
});
