// While a unit fails, what the state holds and no unit declares is kept as recorded.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { identify } from "../../src/desired-state/object-id";
import { keptObjects } from "../../src/reconcile/kept-objects";
import { objectUrn, revealed } from "../../src/reconcile/pulumi-stack";

const SIG = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270" };

describe("kept objects", () => {
  it("reveals the secrets of an exported state and says there were some", () => {
    assert.deepEqual(revealed({ a: 1, data: { ...SIG, plaintext: '{"k":"dmFsdWU="}' }, list: [{ ...SIG, plaintext: '"x"' }] }), {
      value: { a: 1, data: { k: "dmFsdWU=" }, list: ["x"] },
      secret: true,
    });
    assert.deepEqual(revealed({ a: [1, { b: "c" }] }), { value: { a: [1, { b: "c" }] }, secret: false });
    assert.throws(() => revealed({ ...SIG, ciphertext: "AAAA" }), /cannot read/);
  });

  it("keeps every state entry the program does not register, as recorded, without ferry's provider annotations", () => {
    const cm = (name: string) => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace: "default", annotations: { "pulumi.com/skipAwait": "true", team: "a" } },
      data: { k: name },
    });
    const id = (name: string) => identify(cm(name), "Namespaced");
    const urn = (i: ReturnType<typeof id>) => objectUrn("dev", i);
    const snapshot = {
      objects: [
        { urn: urn(id("declared")), id: id("declared"), inputs: cm("declared") },
        { urn: urn(id("held")), id: id("held"), inputs: cm("held"), secret: true },
        { urn: "urn:pulumi:dev::ferry::old$kubernetes:core/v1:ConfigMap::older", id: id("older"), inputs: cm("older") },
        { urn: urn(id("blank")), id: id("blank") },
      ],
      pendingCreates: 0,
    };
    const state = {
      path: "c",
      units: [
        {
          kind: "ManifestFile" as const,
          name: "c/a.yaml",
          location: { file: "c/a.yaml", line: 1 },
          dependsOn: [],
          objects: [{ object: cm("declared"), id: id("declared"), location: { file: "c/a.yaml", line: 1 }, prune: true }],
        },
      ],
    };
    const { keep, unreadable } = keptObjects(snapshot, { state, adopt: {}, outputs: {} }, urn);
    assert.deepEqual(
      keep.map((k) => [k.id.name, k.sensitive, k.urn, k.object.metadata.annotations]),
      [
        ["held", true, undefined, { team: "a" }],
        ["older", false, "urn:pulumi:dev::ferry::old$kubernetes:core/v1:ConfigMap::older", { team: "a" }],
      ],
    );
    assert.deepEqual(unreadable, [urn(id("blank"))]);
  });
});
