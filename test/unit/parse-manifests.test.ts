import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseManifests } from "../../src/desired-state/parse-manifests";

describe("parseManifests", () => {
  it("reads every document of a multi-document file with its line", () => {
    const text = [
      "# leading comment",
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: {name: a, namespace: x}",
      "---",
      "---",
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: {name: b}",
      "",
    ].join("\n");
    const { objects, errors } = parseManifests(text, "c/f.yaml");
    assert.deepEqual(errors, []);
    assert.deepEqual(
      objects.map((o) => [o.object.metadata.name, o.location.line, o.location.document]),
      [
        ["a", 2, 0],
        ["b", 7, 1],
      ],
    );
  });

  it("expands kind: List into its items", () => {
    const text =
      "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n";
    const { objects, errors } = parseManifests(text, "l.yaml");
    assert.deepEqual(errors, []);
    assert.deepEqual(
      objects.map((o) => `${o.object.kind}/${o.object.metadata.name}`),
      ["ConfigMap/a", "Secret/b"],
    );
  });

  it("reports a YAML syntax error with file, line and document", () => {
    const text =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  labels: [unclosed\n";
    const { objects, errors } = parseManifests(text, "clusters/dev/bad.yaml");
    assert.equal(objects.length, 1);
    assert.equal(errors.length, 1);
    const e = errors[0]!;
    assert.equal(e.location.file, "clusters/dev/bad.yaml");
    assert.equal(e.location.document, 1);
    assert.ok(e.location.line >= 9, `line ${e.location.line}`);
    assert.match(e.message, /^clusters\/dev\/bad\.yaml:\d+:\d+ \(document 2\): invalid YAML/);
  });

  it("reports objects without apiVersion, kind or name", () => {
    const { errors } = parseManifests("kind: ConfigMap\nmetadata: {generateName: x-}\n", "x.yaml");
    assert.equal(errors.length, 1);
    assert.match(
      errors[0]!.message,
      /x\.yaml:1 \(document 1\): ConfigMap: `apiVersion` is missing, `metadata.generateName` is not supported/,
    );
  });

  it("rejects duplicate keys, which YAML forbids", () => {
    const { errors } = parseManifests("apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: a}\n", "d.yaml");
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /d\.yaml:3:\d+.*duplicated mapping key/);
  });

  it("skips empty and comment-only documents", () => {
    assert.deepEqual(parseManifests("---\n# nothing\n---\n\n", "e.yaml"), { objects: [], errors: [] });
  });

  it("reads content after a --- marker at its line and column", () => {
    const { objects, errors } = parseManifests(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n--- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
      "m.yaml",
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(
      objects.map((o) => [o.object.metadata.name, o.location.line, o.location.document]),
      [
        ["a", 1, 0],
        ["b", 4, 1],
      ],
    );
    const bad = parseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n--- {b: [}\n", "m.yaml").errors[0]!;
    assert.deepEqual([bad.location.line, bad.location.document], [4, 1]);
    assert.ok(bad.location.column !== undefined && bad.location.column > 4, `column ${bad.location.column}`);
  });

  it("ends a document at a ... marker and reads CRLF files", () => {
    const text =
      "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: a}\r\n...\r\napiVersion: v1\r\nkind: Secret\r\nmetadata: {name: b}\r\n";
    const { objects, errors } = parseManifests(text, "crlf.yaml");
    assert.deepEqual(errors, []);
    assert.deepEqual(
      objects.map((o) => [`${o.object.kind}/${o.object.metadata.name}`, o.location.line]),
      [
        ["ConfigMap/a", 1],
        ["Secret/b", 5],
      ],
    );
  });
});
