import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  isFluxKustomization,
  isSubstitutionDisabled,
  parseFluxKustomization,
  substituteVariables,
} from "../../src/desired-state/flux-kustomization";
import { SourceLocation } from "../../src/desired-state/manifest-error";
import { KubeObject } from "../../src/desired-state/object-id";
import { throwsManifestError as throwsAt } from "../helpers/assertions";

const at: SourceLocation = { file: "clusters/dev/flux.yaml", line: 7, document: 1 };

/** A Kustomization "apps"; `namespace: null` leaves metadata.namespace out. */
function kustomization(
  spec: Record<string, unknown>,
  apiVersion = "kustomize.toolkit.fluxcd.io/v1",
  namespace: string | null = "flux-system",
): KubeObject {
  return { apiVersion, kind: "Kustomization", metadata: namespace === null ? { name: "apps" } : { name: "apps", namespace }, spec };
}

function throwsManifestError(fn: () => unknown, message: RegExp): void {
  throwsAt(fn, at, message);
}

describe("isFluxKustomization", () => {
  it("recognises Flux Kustomizations, not kustomize's own kustomization.yaml", () => {
    for (const v of ["v1", "v1beta1", "v1beta2"])
      assert.equal(isFluxKustomization(kustomization({}, `kustomize.toolkit.fluxcd.io/${v}`)), true, v);
    assert.equal(
      isFluxKustomization({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", metadata: { name: "k" } }),
      false,
    );
  });
});

describe("parseFluxKustomization", () => {
  it("reads path, prune, targetNamespace, postBuild, sourceRef, suspend and dependsOn", () => {
    const spec = parseFluxKustomization(
      kustomization({
        path: "./apps/production/",
        prune: true,
        targetNamespace: "apps",
        sourceRef: { kind: "GitRepository", name: "flux-system" },
        postBuild: {
          substitute: { cluster_name: "prod", region: "eu-west-1\n" },
          substituteFrom: [
            { kind: "ConfigMap", name: "cluster-vars" },
            { kind: "Secret", name: "cluster-secrets", optional: true },
          ],
        },
        suspend: true,
        dependsOn: [{ name: "infra" }, { name: "crds", namespace: "platform" }],
      }),
      at,
    );
    assert.deepEqual(spec, {
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      name: "apps",
      namespace: "flux-system",
      path: "apps/production",
      prune: true,
      targetNamespace: "apps",
      substitute: { cluster_name: "prod", region: "eu-west-1" },
      substituteFrom: [
        { kind: "ConfigMap", name: "cluster-vars", namespace: "flux-system", optional: false },
        { kind: "Secret", name: "cluster-secrets", namespace: "flux-system", optional: true },
      ],
      sourceRef: { kind: "GitRepository", name: "flux-system", namespace: "flux-system" },
      suspend: true,
      dependsOn: [
        { name: "infra", namespace: "flux-system" },
        { name: "crds", namespace: "platform" },
      ],
      location: at,
    });
  });

  it("defaults prune and suspend to false, the path to the repository root, the namespace to default", () => {
    const spec = parseFluxKustomization(kustomization({}, "kustomize.toolkit.fluxcd.io/v1beta2", null), at);
    assert.deepEqual(
      [spec.namespace, spec.path, spec.prune, spec.suspend, spec.targetNamespace, spec.substitute, spec.dependsOn],
      ["default", ".", false, false, undefined, {}, []],
    );
    assert.equal(parseFluxKustomization(kustomization({ path: "./" }), at).path, ".");
    assert.equal(parseFluxKustomization(kustomization({ path: "clusters//dev/../prod" }), at).path, "clusters/prod");
  });

  it("refuses a path that leaves the checkout", () => {
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ path: "../other-repo" }), at),
      /^clusters\/dev\/flux\.yaml:7 \(document 2\): Kustomization\/flux-system\/apps: `spec\.path` "\.\.\/other-repo" leaves the checkout\n {2}fix: give the folder relative to the repository root/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ path: "apps/../../x" }), at),
      /`spec\.path` "apps\/\.\.\/\.\.\/x" leaves the checkout/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ path: "/apps" }), at),
      /`spec\.path` "\/apps" leaves the checkout: it is absolute/,
    );
  });

  it("explains invalid fields and refuses what ferry does not implement", () => {
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ prune: "yes" }), at),
      /`spec\.prune` must be true or false, not string "yes"/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ postBuild: { substitute: { replicas: 3 } } }), at),
      /`spec\.postBuild\.substitute\.replicas` must be a string, not number\n {2}fix: quote it, e\.g\. replicas: "3"/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ postBuild: { substitute: { "my-var": "x" } } }), at),
      /variable name "my-var"/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ patches: [{ patch: "x" }] }), at),
      /`spec\.patches` is not supported by ferry/,
    );
    // An empty list is as good as none.
    assert.equal(parseFluxKustomization(kustomization({ patches: [] }), at).path, ".");
  });
});

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
