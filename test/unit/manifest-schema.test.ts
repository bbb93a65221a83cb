import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { ManifestError, SourceLocation } from "../../src/desired-state/manifest-error";
import {
  addProblem,
  fieldError,
  formatPath,
  ObjectContext,
  optionalBoolean,
  optionalList,
  optionalString,
  parseObject,
  requiredMapping,
  requiredString,
} from "../../src/desired-state/manifest-schema";

const location: SourceLocation = { file: "clusters/dev/app.yaml", line: 12, document: 2 };
const context: ObjectContext = {
  what: "Thing/apps/web",
  location,
  hints: { "spec.items[].name": "name every item", "spec.nested.*": "see the nested docs" },
};

const schema = z.object({
  spec: requiredMapping({
    name: requiredString,
    label: optionalString,
    enabled: optionalBoolean,
    items: optionalList(z.object({ name: requiredString })),
    nested: requiredMapping({ deep: requiredMapping({ value: requiredString }) }),
    even: z.number().transform((n, ctx) => (n % 2 === 0 ? n : addProblem(ctx, "must be even", "use 2, 4, ..."))),
  }),
});
const valid = { spec: { name: "web", nested: { deep: { value: "x" } }, even: 2 } };

function problemOf(value: unknown): ManifestError {
  try {
    parseObject(schema, value, context);
  } catch (err) {
    assert.ok(err instanceof ManifestError);
    return err;
  }
  assert.fail("expected a ManifestError");
}

describe("parseObject and manifestErrorFromZod", () => {
  it("returns the schema's output, with null and empty strings as unset", () => {
    const out = parseObject(schema, { spec: { ...valid.spec, label: "", enabled: null, items: null } }, context);
    assert.deepEqual(out.spec, { name: "web", label: undefined, enabled: undefined, items: [], nested: { deep: { value: "x" } }, even: 2 });
  });

  it("leads with the object, names the field path and keeps the object's location", () => {
    const err = problemOf({ spec: { ...valid.spec, name: "" } });
    assert.deepEqual(err.location, location);
    assert.equal(err.problem, "Thing/apps/web: `spec.name` is missing");
    assert.equal(err.message, "clusters/dev/app.yaml:12 (document 3): Thing/apps/web: `spec.name` is missing\n  fix: set `spec.name`");
  });

  it("shows the wrong value and how to quote a number or a boolean", () => {
    const err = problemOf({ spec: { ...valid.spec, label: 1.1 } });
    assert.equal(err.problem, "Thing/apps/web: `spec.label` must be a string, not number 1.1");
    assert.equal(err.hint, 'quote it, e.g. label: "1.1" (YAML reads 1.10 as the number 1.1)');
    assert.equal(problemOf({ spec: { ...valid.spec, label: true } }).hint, 'quote it, e.g. label: "true"');
    assert.match(
      problemOf({ spec: { ...valid.spec, enabled: "yes" } }).problem,
      /`spec\.enabled` must be true or false, not string "yes"$/,
    );
    const mapping = problemOf({ spec: "x" });
    assert.deepEqual(
      [mapping.problem, mapping.hint],
      ['Thing/apps/web: `spec` must be a mapping, not string "x"', "make `spec` a mapping"],
    );
  });

  it("takes hints by path, list indexes as [] and .* for everything below", () => {
    const item = problemOf({ spec: { ...valid.spec, items: [{ name: "a" }, {}] } });
    assert.equal(item.problem, "Thing/apps/web: `spec.items[1].name` is missing");
    assert.equal(item.hint, "name every item");
    const deep = problemOf({ spec: { ...valid.spec, nested: { deep: {} } } });
    assert.deepEqual([deep.problem, deep.hint], ["Thing/apps/web: `spec.nested.deep.value` is missing", "see the nested docs"]);
  });

  it("uses the problem and hint a schema reports itself", () => {
    const err = problemOf({ spec: { ...valid.spec, even: 3 } });
    assert.deepEqual([err.problem, err.hint], ["Thing/apps/web: `spec.even` must be even", "use 2, 4, ..."]);
  });
});

describe("fieldError and formatPath", () => {
  it("words a problem of the whole object without a path", () => {
    assert.equal(
      fieldError(context, [], "is broken", "fix it").message,
      "clusters/dev/app.yaml:12 (document 3): Thing/apps/web: is broken\n  fix: fix it",
    );
  });

  it("quotes keys that are not plain words", () => {
    assert.equal(formatPath(["metadata", "labels", "app.kubernetes.io/name"]), 'metadata.labels["app.kubernetes.io/name"]');
    assert.equal(formatPath(["spec", "valuesFrom", 0, "kind"]), "spec.valuesFrom[0].kind");
  });
});
