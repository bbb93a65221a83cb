import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { KUBERNETES_SCHEMA, nonFiniteNumberPath, resolveKubernetesScalar } from "../../src/desired-state/kubernetes-yaml";
import { parseManifests } from "../../src/desired-state/parse-manifests";
import { parseValuesText } from "../../src/render/helm-values";

describe("YAML as Kubernetes reads it (go-yaml v2)", () => {
  // Each row: a plain scalar and what go-yaml v2's resolve() makes of it (JSON as sigs.k8s.io/yaml sends it).
  const table: [string, unknown][] = [
    ["0400", 256],
    ["0755", 493],
    ["0o755", 493],
    ["0O17", 15],
    ["-0755", -493],
    ["0x1F", 31],
    ["0X1f", 31],
    ["0b101", 5],
    ["1_000", 1000],
    ["+12", 12],
    ["-7", -7],
    ["0", 0],
    ["09", 9], // not octal, not decimal int: go-yaml's float form
    ["08.5", 8.5],
    ["1.5", 1.5],
    ["1e3", 1000],
    [".5", 0.5],
    ["1e400", "1e400"], // out of float64's range: the text stays
    ["yes", true],
    ["Yes", true],
    ["YES", true],
    ["y", true],
    ["Y", true],
    ["on", true],
    ["ON", true],
    ["true", true],
    ["no", false],
    ["n", false],
    ["off", false],
    ["Off", false],
    ["FALSE", false],
    ["yEs", "yEs"],
    ["~", null],
    ["null", null],
    ["NULL", null],
    ["", null],
    ["1:20", "1:20"], // no base-60 numbers in go-yaml
    ["2024-01-01", "2024-01-01"], // timestamps stay strings in JSON
    ["2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"],
    ["0x", "0x"],
    ["_1", "_1"],
    ["1.2.3", "1.2.3"],
    ["v1", "v1"],
    ["..", ".."],
  ];
  for (const [text, expected] of table) {
    it(`reads ${JSON.stringify(text)} as ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(resolveKubernetesScalar(text), expected);
      if (text !== "") assert.deepEqual(yaml.load(`v: ${text}`, { schema: KUBERNETES_SCHEMA }), { v: expected });
    });
  }

  it("reads .inf and .nan as go-yaml does, and names them where JSON cannot hold them", () => {
    assert.equal(resolveKubernetesScalar(".inf"), Infinity);
    assert.equal(resolveKubernetesScalar("-.Inf"), -Infinity);
    assert.ok(Number.isNaN(resolveKubernetesScalar(".NaN")));
    assert.equal(nonFiniteNumberPath({ spec: { xs: [1, Infinity] } }), "spec.xs[1]");
    assert.equal(nonFiniteNumberPath({ spec: { xs: [1] } }), undefined);
  });

  it("keeps quoted scalars strings", () => {
    assert.deepEqual(yaml.load(`a: "0755"\nb: 'on'\nc: "1_000"`, { schema: KUBERNETES_SCHEMA }), { a: "0755", b: "on", c: "1_000" });
  });

  it("merges `<<` keys", () => {
    assert.deepEqual(yaml.load(`base: &b {x: 1}\nv:\n  <<: *b\n  z: 2`, { schema: KUBERNETES_SCHEMA }), {
      base: { x: 1 },
      v: { x: 1, z: 2 },
    });
  });

  it("turns keys that read as booleans or numbers into their JSON text, as sigs.k8s.io/yaml does", () => {
    assert.deepEqual(yaml.load(`y: 1\nno: 2\n0755: 3`, { schema: KUBERNETES_SCHEMA }), { true: 1, false: 2, "493": 3 });
  });

  it("writes strings that YAML 1.1 would read as other types quoted, so helm reads them back as strings", () => {
    const values = { a: "on", b: "0755", c: "1_000", d: "y", e: "", f: 493, g: true, h: 1.5, i: null, j: "plain" };
    const text = yaml.dump(values, { schema: KUBERNETES_SCHEMA });
    assert.deepEqual(yaml.load(text, { schema: KUBERNETES_SCHEMA }), values);
    assert.match(text, /^j: plain$/m);
  });

  it("applies a volume's `defaultMode: 0400` as 256, as kubectl does", () => {
    const { objects, errors } = parseManifests(
      [
        "apiVersion: v1",
        "kind: Pod",
        "metadata: {name: p}",
        "spec:",
        "  volumes:",
        "    - name: c",
        "      configMap: {name: c, defaultMode: 0400}",
        "",
      ].join("\n"),
      "c/pod.yaml",
    );
    assert.deepEqual(errors, []);
    const spec = objects[0]!.object.spec as { volumes: { configMap: { defaultMode: number } }[] };
    assert.equal(spec.volumes[0]!.configMap.defaultMode, 256);
  });

  it("refuses .inf in a manifest at the document's line, naming the field", () => {
    const { errors } = parseManifests(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: X\nmetadata: {name: b}\nspec: {w: .inf}\n",
      "c/f.yaml",
    );
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.location.line, 5);
    assert.match(errors[0]!.message, /spec\.w/);
  });

  it("reads Helm values files with the same rules", () => {
    assert.deepEqual(parseValuesText("mode: 0644\nenabled: yes\n", "values"), { mode: 420, enabled: true });
  });
});
