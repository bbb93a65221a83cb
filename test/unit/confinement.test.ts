import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ConfinementError } from "../../src/desired-state/confinement";
import { kustomizationRefs, remoteKind } from "../../src/desired-state/kustomization-refs";
import {
  assertChartConfined,
  assertKustomizationConfined,
  loadConfigFolder,
  readCheckoutFile,
} from "../../src/desired-state/load-desired-state";
import { DesiredStateError } from "../../src/desired-state/manifest-error";
import { sourcePolicy } from "../../src/desired-state/source-policy";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: demo}\n`;

/** A checkout and a folder beside it that the repo must not reach. */
function checkoutAndOutside(): { repo: string; outside: string } {
  const parent = fs.realpathSync(tempDir());
  const repo = path.join(parent, "checkouts", "attacker");
  const outside = path.join(parent, "checkouts", "victim");
  writeFiles(outside, { "app/kustomization.yaml": "resources: [secret.yaml]\n", "app/secret.yaml": cm("victim"), "token.txt": "s3cr3t" });
  fs.mkdirSync(repo, { recursive: true });
  return { repo, outside };
}

/** Render tools that record every Kustomize build asked for. */
class RecordingTools extends FakeRenderTools {
  readonly kustomizeBuilds: string[] = [];
  override kustomizeBuild(absDir: string): Promise<string> {
    this.kustomizeBuilds.push(absDir);
    return super.kustomizeBuild(absDir);
  }
}

const refusal = (re: RegExp) => (err: unknown) => err instanceof ConfinementError && re.test(err.message);

describe("kustomizationRefs", () => {
  it("lists every path a kustomization names, with field and line, and skips inline entries", () => {
    const text = [
      "apiVersion: kustomize.config.k8s.io/v1beta1",
      "kind: Kustomization",
      "resources:",
      "  - ../base",
      "  - cm.yaml",
      "components: [../comp]",
      "patches:",
      "  - path: patch.yaml",
      "  - patch: |-",
      "      - op: add",
      "patchesStrategicMerge: [psm.yaml]",
      "patchesJson6902: [{path: j.yaml, target: {kind: X}}]",
      "configMapGenerator:",
      "  - name: a",
      "    files: [key=data/a.txt, b.txt]",
      "    envs: [a.env]",
      "secretGenerator: [{name: s, env: s.env}]",
      "replacements: [{path: r.yaml}]",
      "crds: [crd.json]",
      "openapi: {path: schema.json}",
      "transformers: [t.yaml]",
      "",
    ].join("\n");
    assert.deepEqual(
      kustomizationRefs(text).map((r) => `${r.field} ${r.value} ${r.kind} ${r.line}`),
      [
        "resources ../base base 4",
        "resources cm.yaml base 5",
        "components ../comp base 6",
        "transformers t.yaml base 21",
        "crds crd.json file 19",
        "patchesStrategicMerge psm.yaml file 11",
        "patches[].path patch.yaml file 8",
        "patchesJson6902[].path j.yaml file 12",
        "replacements[].path r.yaml file 18",
        "configMapGenerator[].files data/a.txt file 15",
        "configMapGenerator[].files b.txt file 15",
        "configMapGenerator[].envs a.env file 16",
        "secretGenerator[].env s.env file 17",
        "openapi.path schema.json file 20",
      ],
    );
  });

  it("tells remote bases from local paths as Kustomize does", () => {
    for (const url of [
      "https://example.com/x.yaml",
      "http://127.0.0.1:8080/base",
      "ssh://git@example.com/org/repo",
      "git@github.com:org/repo.git",
      "github.com/org/repo//deploy?ref=v1",
      "git::https://example.com/org/repo",
      "file:///etc",
    ])
      assert.ok(remoteKind(url, false), url);
    // Always a URL, even if a folder of that name exists.
    assert.ok(remoteKind("github.com/org/repo", true));
    // Host-like paths and ?ref= are URLs only when no such path exists.
    assert.ok(remoteKind("example.com/org/repo", false));
    assert.equal(remoteKind("example.com/org/repo", true), undefined);
    assert.ok(remoteKind("gitea.local/org/repo.git//app?ref=main", false));
    assert.equal(remoteKind("dir.with.dots/cm.yaml", true), undefined);
    for (const local of ["../base", "cm.yaml", "./overlays/prod"]) assert.equal(remoteKind(local, false), undefined, local);
  });
});

describe("assertKustomizationConfined", () => {
  it("accepts bases, components and files inside the checkout, through symlinks that stay inside", () => {
    const { repo } = checkoutAndOutside();
    writeFiles(repo, {
      "base/kustomization.yaml": "resources: [cm.yaml]\n",
      "base/cm.yaml": cm("base"),
      "comp/kustomization.yaml": "kind: Component\npatches: [{path: p.yaml}]\n",
      "comp/p.yaml": cm("base"),
      "app/kustomization.yaml":
        "resources: [../linked-base, ../app]\ncomponents: [../comp]\nconfigMapGenerator: [{name: g, files: [k=data.txt]}]\n",
      "app/data.txt": "x",
    });
    fs.symlinkSync("base", path.join(repo, "linked-base"));
    assertKustomizationConfined(repo, path.join(repo, "app"), false);
  });

  it("refuses a relative base that leaves the checkout, naming file, line, path and where it resolves", () => {
    const { repo, outside } = checkoutAndOutside();
    writeFiles(repo, { "k/kustomization.yaml": "namePrefix: stolen-\nresources:\n  - ../../victim/app\n" });
    assert.throws(
      () => assertKustomizationConfined(repo, path.join(repo, "k"), false),
      refusal(
        new RegExp(
          `^k/kustomization.yaml:3 names "../../victim/app" \\(resources\\), which resolves to ${path.join(outside, "app")}, outside the checkout`,
        ),
      ),
    );
  });

  it("refuses what a base names, recursively, and files named by patches and generators", () => {
    const { repo, outside } = checkoutAndOutside();
    writeFiles(repo, {
      "overlay/kustomization.yaml": "resources: [../base]\n",
      "base/kustomization.yaml":
        "resources: [cm.yaml]\nsecretGenerator: [{name: s, files: [token=../../victim/token.txt]}]\npatches: [{path: /etc/hostname}]\n",
      "base/cm.yaml": cm("b"),
    });
    assert.throws(
      () => assertKustomizationConfined(repo, path.join(repo, "overlay"), false),
      (err: unknown) =>
        err instanceof ConfinementError &&
        err.refusals.length === 2 &&
        err.message.includes(
          `base/kustomization.yaml:2 names "../../victim/token.txt" (secretGenerator[].files), which resolves to ${path.join(outside, "token.txt")}`,
        ) &&
        err.message.includes(`base/kustomization.yaml:3 names "/etc/hostname" (patches[].path), which resolves to /etc/hostname`),
    );
  });

  it("refuses symlinks to outside: a linked base, a linked resource file, a linked kustomization file", () => {
    const { repo, outside } = checkoutAndOutside();
    writeFiles(repo, { "a/kustomization.yaml": "resources: [../link-dir, link.yaml]\n" });
    fs.symlinkSync(path.join(outside, "app"), path.join(repo, "link-dir"));
    fs.symlinkSync(path.join(outside, "app", "secret.yaml"), path.join(repo, "a", "link.yaml"));
    fs.mkdirSync(path.join(repo, "b"));
    fs.symlinkSync(path.join(outside, "app", "kustomization.yaml"), path.join(repo, "b", "kustomization.yaml"));
    assert.throws(
      () => assertKustomizationConfined(repo, path.join(repo, "a"), false),
      (err: unknown) =>
        err instanceof ConfinementError &&
        err.refusals.map((r) => `${r.value} -> ${r.resolvesTo}`).join(",") ===
          `../link-dir -> ${path.join(outside, "app")},link.yaml -> ${path.join(outside, "app", "secret.yaml")}`,
    );
    assert.throws(
      () => assertKustomizationConfined(repo, path.join(repo, "b"), false),
      refusal(/b\/kustomization.yaml names "kustomization.yaml"/),
    );
  });

  it("refuses remote bases unless the policy allows them, and file:// URLs always", () => {
    const { repo } = checkoutAndOutside();
    writeFiles(repo, {
      "r/kustomization.yaml": "resources:\n  - https://127.0.0.1:1/x.yaml\n  - github.com/org/repo//app?ref=v1\n",
      "f/kustomization.yaml": "resources: [file:///etc]\n",
    });
    assert.throws(
      () => assertKustomizationConfined(repo, path.join(repo, "r"), false),
      (err: unknown) =>
        err instanceof ConfinementError &&
        err.refusals.length === 2 &&
        /r\/kustomization.yaml:2 names "https:\/\/127.0.0.1:1\/x.yaml" \(resources: https URL\), a remote base, and remote bases are off/.test(
          err.message,
        ) &&
        /ferry:allowRemoteBases/.test(err.message),
    );
    assertKustomizationConfined(repo, path.join(repo, "r"), true);
    assert.throws(() => assertKustomizationConfined(repo, path.join(repo, "f"), true), refusal(/file:\/\/\/etc.*machine's own files/));
  });

  it("survives cycles of bases", () => {
    const { repo } = checkoutAndOutside();
    writeFiles(repo, { "a/kustomization.yaml": "resources: [../b]\n", "b/kustomization.yaml": "resources: [../a]\n" });
    assertKustomizationConfined(repo, path.join(repo, "a"), false);
  });
});

describe("assertChartConfined", () => {
  const chart = (root: string, dir: string): void =>
    writeFiles(path.join(root, dir), {
      "Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
      "templates/cm.yaml": '{{ .Files.Get "files/data.txt" }}\n',
      "files/ok.txt": "ok",
    });

  it("accepts a chart whose links stay inside the checkout", () => {
    const { repo } = checkoutAndOutside();
    chart(repo, "charts/app");
    writeFiles(repo, { "shared/data.txt": "shared", "charts/lib/Chart.yaml": "apiVersion: v2\nname: lib\nversion: 1.0.0\n" });
    fs.symlinkSync(path.join(repo, "shared", "data.txt"), path.join(repo, "charts/app/files/data.txt"));
    fs.mkdirSync(path.join(repo, "charts/app/charts"));
    fs.symlinkSync("../../lib", path.join(repo, "charts/app/charts/lib"));
    fs.symlinkSync("..", path.join(repo, "charts/app/files/loop"));
    assertChartConfined(repo, path.join(repo, "charts/app"));
  });

  it("refuses a file read through .Files.Get that links outside, and a subchart that links outside", () => {
    const { repo, outside } = checkoutAndOutside();
    chart(repo, "charts/app");
    fs.symlinkSync(path.join(outside, "token.txt"), path.join(repo, "charts/app/files/data.txt"));
    fs.mkdirSync(path.join(repo, "charts/app/charts"));
    fs.symlinkSync(outside, path.join(repo, "charts/app/charts/sub"));
    assert.throws(
      () => assertChartConfined(repo, path.join(repo, "charts/app")),
      (err: unknown) =>
        err instanceof ConfinementError &&
        err.message.includes(`charts/app/files/data.txt is a symbolic link to ${path.join(outside, "token.txt")}, outside the checkout`) &&
        err.message.includes(`charts/app/charts/sub is a symbolic link to ${outside}, outside the checkout`),
    );
  });

  it("refuses a link inside a folder the chart links to", () => {
    const { repo, outside } = checkoutAndOutside();
    chart(repo, "charts/app");
    writeFiles(repo, { "elsewhere/x.txt": "x" });
    fs.symlinkSync(path.join(outside, "token.txt"), path.join(repo, "elsewhere", "token.txt"));
    fs.symlinkSync("../../../elsewhere", path.join(repo, "charts/app/files/more"));
    assert.throws(() => assertChartConfined(repo, path.join(repo, "charts/app")), refusal(/elsewhere\/token.txt is a symbolic link/));
  });
});

describe("confinement in the build", () => {
  it("refuses a Kustomize folder and a Flux Kustomization reaching outside, before Kustomize runs, at the unit's file and line", async () => {
    const { repo } = checkoutAndOutside();
    writeFiles(repo, {
      "c/k/kustomization.yaml": "resources: [../../../victim/app]\n",
      "c/flux.yaml":
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\nspec: {path: ./apps, prune: true}\n",
      "apps/kustomization.yaml": "resources:\n  - https://127.0.0.1:1/remote.yaml\n",
    });
    const tools = new RecordingTools({});
    await assert.rejects(
      buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools, { policy: sourcePolicy() }),
      (err: unknown) => {
        assert.ok(err instanceof DesiredStateError, String(err));
        const text = err.errors.map((e) => e.message).join("\n");
        assert.match(
          text,
          /c\/k\/kustomization.yaml:1: Kustomize folder c\/k: c\/k\/kustomization.yaml:1 names "..\/..\/..\/victim\/app" \(resources\), which resolves to .*victim\/app, outside the checkout/,
        );
        assert.match(
          text,
          /c\/flux.yaml:1 \(document 1\): Kustomization\/flux-system\/apps: apps\/kustomization.yaml:2 names "https:\/\/127.0.0.1:1\/remote.yaml"/,
        );
        return true;
      },
    );
    assert.equal(tools.kustomizeBuilds.length, 0);
  });

  it("refuses a chartFileRef values file that links outside the chart", () => {
    const { repo, outside } = checkoutAndOutside();
    writeFiles(repo, { "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n" });
    fs.symlinkSync(path.join(outside, "token.txt"), path.join(repo, "charts/app/values-prod.yaml"));
    assert.throws(
      () => readCheckoutFile(path.join(repo, "charts/app"), "values-prod.yaml"),
      new RegExp(`"values-prod.yaml" resolves to ${path.join(outside, "token.txt")}, outside the checkout`),
    );
  });
});
