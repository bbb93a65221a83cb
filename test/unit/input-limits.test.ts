import assert from "node:assert/strict";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { INPUT_LIMITS, InputLimits } from "../../src/desired-state/input-limits";
import { parseManifests } from "../../src/desired-state/parse-manifests";
import { OutputLimitError, run } from "../../src/lib/exec";
import { sourcePolicy } from "../../src/desired-state/source-policy";
import { parseValuesText } from "../../src/render/helm-values";
import { localRenderTools } from "../../src/render/render-tools";
import { aliasBomb } from "../helpers/alias-bomb";
import { tempDir } from "../helpers/temp-dir";

const limits = (l: Partial<InputLimits>): InputLimits => ({ ...INPUT_LIMITS, ...l });

describe("input limits: YAML aliases", () => {
  it("refuses the alias bomb at the alias that crosses the limit, with file, line and the limit, before expanding it", () => {
    const { objects, errors } = parseManifests(`# a comment\n---\n${aliasBomb()}`, "clusters/dev/bomb.yaml");
    assert.deepEqual(objects, []);
    assert.equal(errors.length, 1);
    const e = errors[0]!;
    // Level f (6 levels, ~6 MB expanded) is the first past 1 MiB: its first alias, line 12 column 10.
    assert.deepEqual(e.location, { file: "clusters/dev/bomb.yaml", line: 12, column: 10, document: 0 });
    assert.match(e.message, /^clusters\/dev\/bomb\.yaml:12:10 \(document 1\): YAML aliases expand this document by more than 1 MiB/);
    assert.match(e.message, /fix: write the repeated content out/);
  });

  it("accepts ordinary anchors and aliases, and shares nothing surprising", () => {
    const text = [
      "apiVersion: apps/v1",
      "kind: Deployment",
      "metadata: {name: web}",
      "spec:",
      "  template:",
      "    spec:",
      "      containers:",
      "        - {name: a, env: &env [{name: A, value: '1'}, {name: B, value: '2'}]}",
      "        - name: b",
      "          env: *env",
      "",
    ].join("\n");
    const { objects, errors } = parseManifests(text, "f.yaml");
    assert.deepEqual(errors, []);
    const containers = (objects[0]!.object.spec as { template: { spec: { containers: { env: unknown }[] } } }).template.spec.containers;
    assert.deepEqual(containers[1]!.env, [
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ]);
  });

  it("counts each alias once, scalars included, to the byte of the limit", () => {
    // Two aliases of a 3-item list (`[1,2,3]`, 8 bytes as JSON), one written on its own line.
    const text = "apiVersion: v1\nkind: List\nitems: []\nx: &l [1, 2, 3]\ny:\n  - *l\n  -\n    *l\n";
    assert.deepEqual(parseManifests(text, "f.yaml", limits({ maxAliasExpansionBytes: 16 })).errors, []);
    const [e] = parseManifests(text, "f.yaml", limits({ maxAliasExpansionBytes: 15 })).errors;
    assert.deepEqual(e?.location, { file: "f.yaml", line: 8, column: 5, document: 0 });
    // A long string aliased many times costs its length each time.
    const long = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\nx: &s "${"x".repeat(1000)}"\ndata: [${Array(2000).fill("*s").join(", ")}]\n`;
    const [big] = parseManifests(long, "s.yaml").errors;
    assert.match(big?.message ?? "", /^s\.yaml:5:\d+ \(document 1\): YAML aliases expand this document by more than 1 MiB/);
  });

  it("refuses a recursive alias (a node that contains its own alias)", () => {
    const [e] = parseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: &m\n  name: x\n  self: *m\n", "r.yaml").errors;
    assert.deepEqual(e?.location, { file: "r.yaml", line: 5, column: 9, document: 0 });
    assert.match(e?.message ?? "", /recursive alias/);
  });

  it("refuses a document over the size limit at its line, and names the limit", () => {
    const doc = (name: string, pad: number) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {p: "${"x".repeat(pad)}"}\n`;
    const text = `${doc("small", 10)}---\n${doc("big", 2000)}`;
    const { objects, errors } = parseManifests(text, "big.yaml", limits({ maxDocumentBytes: 1024 }));
    assert.deepEqual(
      objects.map((o) => o.object.metadata.name),
      ["small"],
    );
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.location.line, 5);
    assert.match(errors[0]!.message, /YAML document of 2\.0 KiB is over the limit of 1 KiB per document/);
  });

  it("applies the same limits to values texts (valuesFrom, chart files), naming where and the line", () => {
    assert.throws(
      () =>
        parseValuesText(
          aliasBomb().replace(/^(apiVersion|kind|metadata).*\n/gm, ""),
          "HelmRelease/demo/web: values from ConfigMap/demo/v key values.yaml",
        ),
      /^Error: HelmRelease\/demo\/web: values from ConfigMap\/demo\/v key values\.yaml: line 7: YAML aliases expand this document by more than 1 MiB/,
    );
    assert.throws(
      () => parseValuesText(`a: "${"x".repeat(2048)}"\n`, "v", limits({ maxValuesBytes: 1024 })),
      /^Error: v: line 1: YAML document of 2\.0 KiB is over the limit of 1 KiB/,
    );
    // Merge keys stay allowed within the limit.
    assert.deepEqual(parseValuesText("base: &b {x: 1}\nweb:\n  <<: *b\n  z: 2\n", "v"), { base: { x: 1 }, web: { x: 1, z: 2 } });
  });
});

describe("input limits: render output and downloads", () => {
  it("stops a program that prints more than the limit, keeping memory bounded", async () => {
    // Prints forever: only the limit ends it.
    const endless = "const b = Buffer.alloc(65536, 121); const w = () => process.stdout.write(b, w); w();";
    await assert.rejects(run(process.execPath, ["-e", endless], { maxOutputBytes: 1024 * 1024 }), (err: unknown) => {
      assert.ok(err instanceof OutputLimitError);
      assert.equal(err.limit, 1024 * 1024);
      return true;
    });
    const ok = await run(process.execPath, ["-e", "process.stdout.write('x'.repeat(1000))"], { maxOutputBytes: 1000 });
    assert.equal(ok.stdout.length, 1000);
  });

  it("stops downloading a values URL past the values limit", async () => {
    let sent = 0;
    const server = http.createServer((_req, res) => {
      // An endless body: only the client hanging up ends it.
      const chunk = Buffer.alloc(64 * 1024, 120);
      const more = (): void => {
        while (sent < 64 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        if (sent < 64 * 1024 * 1024) res.once("drain", more);
        else res.end();
      };
      res.on("close", () => res.removeAllListeners("drain"));
      more();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const tools = localRenderTools({
        helm: "helm",
        kubectl: "kubectl",
        cacheDir: tempDir(),
        policy: sourcePolicy({ localAddresses: "allow" }),
      });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/values.yaml`;
      await assert.rejects(tools.fetchText(url, "HelmRelease/default/endless"), /larger than 4 MiB, ferry's limit for a values text/);
      assert.ok(sent < 16 * 1024 * 1024, `the server sent ${sent} bytes`);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
