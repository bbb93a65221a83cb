import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { COMPONENTS, probeAccepts, probedVersion, VersionProbe } from "../../src/toolchain/components";
import { defaultToolchainOptions, ensureToolchain, installedProviderPlugin } from "../../src/toolchain/install";
import { tempDir } from "../helpers/temp-dir";

const pulumiProbe = COMPONENTS.find((c) => c.name === "pulumi")!.binaries.find((b) => b.name === "pulumi")!.probe!;

/** An executable shell script at `file` that prints `output`. */
function fakeBinary(file: string, output: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\necho '${output}'\n`, { mode: 0o755 });
}

describe("accepted toolchain versions", () => {
  it("takes a Pulumi CLI from 3.184.0 on, within major 3", () => {
    for (const v of ["v3.184.0", "v3.184.1", "v3.190.1", "v3.200.0", "v3.190.0-alpha.1724345678+gabcdef1", "v3.191.0-dev.0"]) {
      assert.equal(probeAccepts(`${v}\n`, pulumiProbe), true, v);
    }
    for (const v of ["v3.183.0", "v3.183.9", "v3.184.0-rc.1", "v3.184.0-alpha.1", "v2.999.0", "v4.0.0", "3.190.1", "", "pulumi"]) {
      assert.equal(probeAccepts(`${v}\n`, pulumiProbe), false, v);
    }
    // Whatever else the CLI prints around its version (an upgrade notice on stderr) does not matter.
    assert.equal(probeAccepts("v3.190.1\n\nwarning: A new version of Pulumi is available (v3.201.0)\n", pulumiProbe), true);
  });

  it("wants the exact pinned version where no minimum is set", () => {
    const helm: VersionProbe = { args: ["version", "--short"], expect: "v3.19.0" };
    assert.equal(probeAccepts("v3.19.0+g3d8990f\n", helm), true);
    assert.equal(probeAccepts("v3.19.1+gabc\n", helm), false);
  });

  it("reads the first vX.Y.Z of a probe's output", () => {
    assert.equal(probedVersion("v3.190.0-alpha.1724345678+gabcdef1\n"), "3.190.0-alpha.1724345678+gabcdef1");
    assert.equal(probedVersion("Client Version: v1.34.4\n"), "1.34.4");
    assert.equal(probedVersion("dev.v3.1.2"), undefined);
    assert.equal(probedVersion("nothing"), undefined);
  });

  it("finds the pinned provider plugin in $PULUMI_HOME, else ~/.pulumi, and not a half-installed one", () => {
    const dir = tempDir();
    const plugin = (home: string) => path.join(home, "plugins", "resource-kubernetes-v4.25.0", "pulumi-resource-kubernetes");
    const home = path.join(dir, "home");
    const pulumiHome = path.join(dir, "pulumi-home");
    assert.equal(installedProviderPlugin({ HOME: home }), undefined);
    fakeBinary(plugin(path.join(home, ".pulumi")), "");
    assert.equal(installedProviderPlugin({ HOME: home }), plugin(path.join(home, ".pulumi")));
    assert.equal(installedProviderPlugin({ HOME: home, PULUMI_HOME: "" }), plugin(path.join(home, ".pulumi")));
    assert.equal(installedProviderPlugin({ HOME: home, PULUMI_HOME: pulumiHome }), undefined);
    fakeBinary(plugin(pulumiHome), "");
    assert.equal(installedProviderPlugin({ HOME: home, PULUMI_HOME: pulumiHome }), plugin(pulumiHome));
    // Another release of the provider is not the one the program's SDK was generated for.
    fakeBinary(path.join(dir, "other", "plugins", "resource-kubernetes-v4.26.0", "pulumi-resource-kubernetes"), "");
    assert.equal(installedProviderPlugin({ PULUMI_HOME: path.join(dir, "other") }), undefined);
    fs.writeFileSync(path.join(pulumiHome, "plugins", "resource-kubernetes-v4.25.0.partial"), "");
    assert.equal(installedProviderPlugin({ HOME: home, PULUMI_HOME: pulumiHome }), undefined);
  });

  it("uses a newer Pulumi CLI on PATH and the language host beside it, builds nothing, and says why", async () => {
    const dir = tempDir();
    const bin = path.join(dir, "pulumi", "bin");
    fakeBinary(path.join(bin, "pulumi"), "v3.190.1");
    fakeBinary(path.join(bin, "pulumi-language-nodejs"), "");
    const lines: string[] = [];
    // PATH holds no Go: building anything would fail.
    const options = defaultToolchainOptions({
      dir: path.join(dir, "cache"),
      env: { PATH: bin, HOME: dir },
      only: ["pulumi"],
      progress: (l) => lines.push(l),
    });
    const toolchain = await ensureToolchain(options);
    assert.equal(toolchain.sources.pulumi, "path");
    assert.equal(toolchain.bin("pulumi"), path.join(bin, "pulumi"));
    assert.equal(toolchain.bin("pulumi-language-nodejs"), path.join(bin, "pulumi-language-nodejs"));
    assert.match(lines.join("\n"), /pulumi 3\.184\.0: using .*\/pulumi \(on PATH: v3\.190\.1 is at least 3\.184\.0, /);
  });

  it("takes the language host from beside the binary a PATH symlink points to", async () => {
    const dir = tempDir();
    const home = path.join(dir, ".pulumi", "bin");
    fakeBinary(path.join(home, "pulumi"), "v3.184.0");
    fakeBinary(path.join(home, "pulumi-language-nodejs"), "");
    const linked = path.join(dir, "usr-local-bin");
    fs.mkdirSync(linked);
    fs.symlinkSync(path.join(home, "pulumi"), path.join(linked, "pulumi"));
    const toolchain = await ensureToolchain(
      defaultToolchainOptions({ dir: path.join(dir, "cache"), env: { PATH: linked, HOME: dir }, only: ["pulumi"], progress: () => {} }),
    );
    assert.equal(toolchain.bin("pulumi"), path.join(linked, "pulumi"));
    assert.equal(toolchain.bin("pulumi-language-nodejs"), path.join(home, "pulumi-language-nodejs"));
  });

  it("refuses a Pulumi CLI older than 3.184.0, or one without its language host, saying which it passed over", async () => {
    for (const [version, host] of [
      ["v3.183.2", true],
      ["v3.190.1", false],
    ] as const) {
      const dir = tempDir();
      const bin = path.join(dir, "bin");
      fakeBinary(path.join(bin, "pulumi"), version);
      if (host) fakeBinary(path.join(bin, "pulumi-language-nodejs"), "");
      const lines: string[] = [];
      await assert.rejects(
        ensureToolchain(
          defaultToolchainOptions({
            dir: path.join(dir, "cache"),
            env: { PATH: bin, HOME: dir },
            only: ["pulumi"],
            progress: (l) => lines.push(l),
          }),
        ),
        /pulumi 3\.184\.0 is not installed and Go is not on PATH/,
      );
      if (host) assert.match(lines.join("\n"), /not using .*\/pulumi \(v3\.183\.2; accepted: 3\.184\.0 or newer within its major\)/);
    }
  });

  it("uses the provider plugin installed in the Pulumi home and builds nothing", async () => {
    const dir = tempDir();
    const plugin = path.join(dir, ".pulumi", "plugins", "resource-kubernetes-v4.25.0", "pulumi-resource-kubernetes");
    fakeBinary(plugin, "");
    const lines: string[] = [];
    const toolchain = await ensureToolchain(
      defaultToolchainOptions({
        dir: path.join(dir, "cache"),
        env: { PATH: "", HOME: dir },
        only: ["pulumi-resource-kubernetes"],
        progress: (l) => lines.push(l),
      }),
    );
    assert.equal(toolchain.sources["pulumi-resource-kubernetes"], "path");
    assert.equal(toolchain.bin("pulumi-resource-kubernetes"), plugin);
    assert.match(lines.join("\n"), /using .* \(the Pulumi plugin of the pinned release 4\.25\.0\)/);
  });
});
