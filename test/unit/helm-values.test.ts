import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeValues, parseValuesText, setValueAtPath } from "../../src/render/helm-values";

describe("mergeValues", () => {
  it("merges nested mappings, later layers winning, and replaces lists and scalars", () => {
    const chartDefaults = { image: { repository: "nginx", tag: "1.25" }, ports: [80, 443], replicas: 1, extra: { a: 1 } };
    const fromConfigMap = { image: { tag: "1.27" }, ports: [8080], extra: null };
    const inline = { replicas: 3, image: { pullPolicy: "Always" } };
    assert.deepEqual(mergeValues([chartDefaults, fromConfigMap, inline]), {
      image: { repository: "nginx", tag: "1.27", pullPolicy: "Always" },
      ports: [8080],
      replicas: 3,
      extra: null,
    });
    assert.deepEqual(mergeValues([]), {});
    assert.deepEqual(mergeValues([{ a: { b: 1 } }, { a: "scalar" }, { a: { c: 2 } }]), { a: { c: 2 } });
  });

  it("neither mutates nor shares its inputs", () => {
    const a = { nested: { x: 1 }, list: [{ y: 1 }] };
    const b = { nested: { z: 2 } };
    const merged = mergeValues([a, b]);
    (merged.nested as Record<string, unknown>).x = 99;
    ((merged.list as Record<string, unknown>[])[0] as Record<string, unknown>).y = 99;
    assert.deepEqual(a, { nested: { x: 1 }, list: [{ y: 1 }] });
    assert.deepEqual(b, { nested: { z: 2 } });
  });

  it("keeps a __proto__ key from YAML as data", () => {
    const layer = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    const merged = mergeValues([layer]);
    assert.deepEqual(Object.keys(merged), ["__proto__"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe("setValueAtPath", () => {
  it("sets a value at a dotted path, creating mappings and keeping siblings", () => {
    const values = { auth: { user: "admin" } };
    const out = setValueAtPath(values, "auth.password", "s3cret");
    assert.deepEqual(out, { auth: { user: "admin", password: "s3cret" } });
    assert.deepEqual(values, { auth: { user: "admin" } }, "the input is left alone");
    assert.deepEqual(setValueAtPath({ a: "scalar" }, "a.b.c", "x"), { a: { b: { c: "x" } } });
  });

  it("reads escaped dots and list indexes like helm --set", () => {
    assert.deepEqual(setValueAtPath({}, "podAnnotations.prometheus\\.io/scrape", "'true'"), {
      podAnnotations: { "prometheus.io/scrape": "true" },
    });
    assert.deepEqual(setValueAtPath({ hosts: ["a"] }, "hosts[2]", "c"), { hosts: ["a", null, "c"] });
    assert.deepEqual(setValueAtPath({ env: [{ name: "A", value: "1" }] }, "env[0].value", "'2'"), { env: [{ name: "A", value: "2" }] });
    assert.deepEqual(setValueAtPath({}, "matrix[0][1]", "x"), { matrix: [[null, "x"]] });
  });

  it("types an unquoted value as helm --set does, and keeps a quoted one a string", () => {
    assert.deepEqual(setValueAtPath({}, "v", "true"), { v: true });
    assert.deepEqual(setValueAtPath({}, "v", "FALSE"), { v: false });
    assert.deepEqual(setValueAtPath({}, "v", "null"), { v: null });
    assert.deepEqual(setValueAtPath({}, "v", "42"), { v: 42 });
    assert.deepEqual(setValueAtPath({}, "v", "-7"), { v: -7 });
    assert.deepEqual(setValueAtPath({}, "v", "0"), { v: 0 });
    assert.deepEqual(setValueAtPath({}, "v", "0042"), { v: "0042" });
    assert.deepEqual(setValueAtPath({}, "v", "1.5"), { v: "1.5" });
    assert.deepEqual(setValueAtPath({}, "v", "12345678901234567890"), { v: "12345678901234567890" });
    assert.deepEqual(setValueAtPath({}, "v", '"42"'), { v: "42" });
    assert.deepEqual(setValueAtPath({}, "v", "'true'"), { v: "true" });
    assert.deepEqual(setValueAtPath({}, "v", ""), { v: "" });
    assert.deepEqual(setValueAtPath({}, "v", "{a,2,true}"), { v: ["a", 2, true] });
    assert.deepEqual(setValueAtPath({}, "v", "a\\,b"), { v: "a,b" });
    assert.deepEqual(setValueAtPath({}, "v", "multi\nline\n"), { v: "multi\nline\n" });
  });

  it("refuses an unescaped comma and malformed paths, saying how to fix them", () => {
    assert.throws(() => setValueAtPath({}, "v", "a,b"), /contains an unescaped comma.*escape it as \\,/);
    assert.throws(() => setValueAtPath({}, "a..b", "x"), /targetPath "a\.\.b" is invalid: it has an empty key/);
    assert.throws(() => setValueAtPath({}, "a[x]", "x"), /a list index must be a number/);
    assert.throws(() => setValueAtPath({}, "", "x"), /it is empty/);
    assert.throws(() => setValueAtPath({}, "a[70000]", "x"), /larger than Helm's maximum 65536/);
  });
});

describe("parseValuesText", () => {
  it("reads a mapping, and an empty or comment-only text as no values", () => {
    assert.deepEqual(parseValuesText("replicas: 2\nimage:\n  tag: v1\n", "x"), { replicas: 2, image: { tag: "v1" } });
    assert.deepEqual(parseValuesText("", "x"), {});
    assert.deepEqual(parseValuesText("# nothing here\n", "x"), {});
  });

  it("reads values as Helm does: timestamps stay strings, merge keys merge", () => {
    assert.deepEqual(parseValuesText("since: 2024-01-31\nbase: &b {a: 1}\nfull:\n  <<: *b\n  c: 2\n", "x"), {
      since: "2024-01-31",
      base: { a: 1 },
      full: { a: 1, c: 2 },
    });
  });

  it("fails with a message that starts with where the text came from, never quoting it", () => {
    const where = "HelmRelease/apps/web: values from Secret/apps/creds key values.yaml";
    assert.throws(
      () => parseValuesText("hunter2", where),
      (err: unknown) =>
        err instanceof Error && err.message === `${where}: values must be a YAML mapping (key: value lines), not a plain string`,
    );
    assert.throws(
      () => parseValuesText("- a\n- b\n", where),
      (err: unknown) => err instanceof Error && err.message.startsWith(`${where}: values must be a YAML mapping`),
    );
    assert.throws(
      () => parseValuesText("a: [\n", where),
      (err: unknown) => err instanceof Error && err.message.startsWith(`${where}: invalid YAML:`) && err.cause !== undefined,
    );
  });
});
