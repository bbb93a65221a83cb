import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DesiredState } from "../../src/desired-state/desired-state";
import { deserializeProgramInput, newProgramInputKey, ProgramInput, serializeProgramInput } from "../../src/desired-state/program-input";

const SECRET = "hunter2-very-secret";

const input: ProgramInput = {
  state: {
    objects: [
      {
        id: { group: "", kind: "Secret", namespace: "default", name: "db" },
        object: { apiVersion: "v1", kind: "Secret", metadata: { name: "db", namespace: "default" }, stringData: { password: SECRET } },
      },
    ],
  } as unknown as DesiredState,
  adopt: {},
  outputs: {},
};

describe("program input", () => {
  it("is written encrypted: neither a Secret's value nor its base64 is in the file", () => {
    const key = newProgramInputKey();
    const text = serializeProgramInput(input, key);
    assert.ok(!text.includes(SECRET));
    assert.ok(!text.includes(Buffer.from(SECRET).toString("base64")));
    assert.ok(!text.includes(key), "the key is never written with the input");
    assert.deepEqual(deserializeProgramInput(text, key), input);
  });

  it("takes a fresh key and nonce each time", () => {
    const key = newProgramInputKey();
    assert.notEqual(newProgramInputKey(), key);
    assert.notEqual(serializeProgramInput(input, key), serializeProgramInput(input, key));
  });

  it("refuses to read without the run's key, with another key, or once altered", () => {
    const key = newProgramInputKey();
    const text = serializeProgramInput(input, key);
    assert.throws(() => deserializeProgramInput(text, undefined), /FERRY_PROGRAM_INPUT_KEY is not set/);
    assert.throws(() => deserializeProgramInput(text, newProgramInputKey()), /does not decrypt with this run's key/);
    const sealed = JSON.parse(text) as { data: string };
    const data = Buffer.from(sealed.data, "base64");
    data[0] = data[0]! ^ 1;
    assert.throws(() => deserializeProgramInput(JSON.stringify({ ...sealed, data: data.toString("base64") }), key), /altered/);
    assert.throws(() => deserializeProgramInput(JSON.stringify(input), key), /not an encrypted ferry program input/);
  });
});
