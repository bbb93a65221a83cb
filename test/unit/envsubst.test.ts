import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isSubstitutionDisabled, substituteVariables } from "../../src/render/envsubst";

describe("substituteVariables", () => {
  const vars = { var01: "abcdEFGH28ij", cluster: "prod" };

  it("replaces ${var}, uses defaults for unset or empty variables, and leaves $var alone", () => {
    assert.equal(substituteVariables("name: ${cluster}-web", vars), "name: prod-web");
    assert.equal(substituteVariables("r: ${replicas:=2} z: ${zone=a} t: ${tier:-web}", vars), "r: 2 z: a t: web");
    assert.equal(substituteVariables("e: ${empty:=fallback}", { empty: "" }), "e: fallback");
    assert.equal(substituteVariables("c: ${cluster:=fallback}", vars), "c: prod");
    assert.equal(substituteVariables("d: ${missing:=${cluster}-x}", vars), "d: prod-x");
    assert.equal(substituteVariables("script: echo $HOME $cluster", vars), "script: echo $HOME $cluster");
  });

  it("turns $${var} into a literal ${var}", () => {
    // fluxcd/pkg envsubst's own escape cases.
    assert.equal(substituteVariables("$${var01}", vars), "${var01}");
    assert.equal(
      substituteVariables("some text ${var01}$${var$${var01}$var01${var01}", vars),
      "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
    );
    assert.equal(substituteVariables("price: $$5", vars), "price: $5");
  });

  it("replaces an unknown ${var} with nothing, or fails in strict mode", () => {
    assert.equal(substituteVariables("a: '${unknown}'", vars), "a: ''");
    assert.throws(
      () => substituteVariables("a: 1\nb: ${unknown}\n", vars, { strict: true }),
      /at line 2: unknown is not set \(strict mode\) in "\$\{unknown\}"/,
    );
    assert.equal(substituteVariables("a: ${unknown:=x}", vars, { strict: true }), "a: x");
  });

  it("leaves the text untouched when there are no variables, as Flux skips substitution", () => {
    assert.equal(substituteVariables("a: ${unknown} and ${broken", {}), "a: ${unknown} and ${broken");
  });

  it("fails on a malformed expression, naming its line", () => {
    assert.throws(
      () => substituteVariables("a: 1\n---\nb: ${oops\n", vars),
      /variable substitution failed at line 3: missing closing brace in "\$\{oops"; write \$\$\{ for a literal/,
    );
    assert.throws(() => substituteVariables("b: ${}", vars), /at line 1: no variable name/);
    assert.throws(() => substituteVariables("b: ${a b}", vars), /missing closing brace/);
  });

  it("skips documents labeled or annotated kustomize.toolkit.fluxcd.io/substitute: disabled", () => {
    const text = [
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: {name: a}",
      "data: {c: '${cluster}'}",
      "---",
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata:",
      "  name: script",
      "  annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}",
      "data: {run: 'echo ${HOME} ${cluster'}",
      "",
    ].join("\n");
    const out = substituteVariables(text, vars);
    assert.equal(out, text.replace("'${cluster}'", "'prod'"));
    assert.equal(
      isSubstitutionDisabled({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "x", labels: { "kustomize.toolkit.fluxcd.io/substitute": "disabled" } },
      }),
      true,
    );
    assert.equal(isSubstitutionDisabled({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } }), false);
  });

  it("supports the bash string functions of fluxcd/pkg envsubst", () => {
    // Cases from fluxcd/pkg envsubst eval_test.go.
    const cases: [Record<string, string>, string, string][] = [
      [{ var01: "abcdEFGH28ij" }, "${#var01}", "12"],
      [{ var01: "abcdEFGH28ij" }, "${var01^}", "AbcdEFGH28ij"],
      [{ var01: "abcdEFGH28ij" }, "${var01^^}", "ABCDEFGH28IJ"],
      [{ var01: "ABCDEFGH28IJ" }, "${var01,}", "aBCDEFGH28IJ"],
      [{ var01: "ABCDEFGH28IJ" }, "${var01,,}", "abcdefgh28ij"],
      [{ path_name: "/home/bozo/ideas/thoughts.for.today" }, "${path_name:11}", "ideas/thoughts.for.today"],
      [{ path_name: "/home/bozo/ideas/thoughts.for.today" }, "${path_name:11:5}", "ideas"],
      [{ default_var: "foo1" }, "foo: ${var=prefix${default_var}-suffix}", "foo: prefixfoo1-suffix"],
      [{ stringZ: "abcABC123ABCabc" }, "${stringZ/%abc/XYZ}", "abcABC123ABCXYZ"],
      [{ stringZ: "abcABC123ABCabc" }, "${stringZ/#abc/XYZ}", "XYZABC123ABCabc"],
      [{ stringZ: "somevalue" }, "${stringZ/#/prefix-}", "prefix-somevalue"],
      [{ stringZ: "somevalue" }, "${stringZ/%/-suffix}", "somevalue-suffix"],
      [{ stringZ: "abcABC123ABCabc" }, "${stringZ//abc/xyz}", "xyzABC123ABCxyz"],
      [{ stringZ: "abcABC123ABCabc" }, "${stringZ/abc/xyz}", "xyzABC123ABCabc"],
      [{ filename: "bash.string.txt" }, "${filename#*.}", "string.txt"],
      [{ filename: "/path/to/file" }, "${filename##*/}", "file"],
      [{ filename: "bash.string.txt" }, "${filename%.*}", "bash.string"],
      [{ filename: "bash.string.txt" }, "${filename%%.*}", "bash"],
      [{ var01: "abcdEFGH28ij" }, "${var=${var01^^}}", "ABCDEFGH28IJ"],
      [{ default_var: "foo" }, "something $${var=${default_var}}", "something ${var=foo}"],
      [{ stringZ: "foo/bar" }, "${stringZ/\\//-}", "foo-bar"],
      [{ stringZ: "foo/bar/baz" }, "${stringZ//\\//-}", "foo-bar-baz"],
      [{ default_var: "foo" }, "\\\\something ${var=${default_var}}", "\\\\something foo"],
      [{ stringZ: "foo.bar" }, "${stringZ/./}", "foobar"],
      [{ stringZ: "a$b" }, "${stringZ/$/$&}", "a$&b"],
    ];
    for (const [params, input, output] of cases) assert.equal(substituteVariables(input, params), output, input);
  });
});
