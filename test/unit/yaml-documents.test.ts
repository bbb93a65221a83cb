import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { splitYamlDocuments } from "../../src/desired-state/yaml-documents";

describe("splitYamlDocuments", () => {
  it("gives back the whole text, character for character, when the documents are joined", () => {
    const texts = [
      "",
      "a: 1\n",
      "a: 1",
      "---\na: 1\n---\nb: 2\n",
      "a: 1\r\n---\r\nb: 2\r\n",
      "a: 1\n--- {b: 2}\n...\n# after the end\n---\nc: 3\n...\n",
      "---\n---\n\n",
      "a: |\n  ---not a marker\n  ----\nb: '--- quoted'\n",
    ];
    for (const text of texts)
      assert.equal(
        splitYamlDocuments(text)
          .map((d) => d.raw)
          .join(""),
        text,
        JSON.stringify(text),
      );
  });

  it("cuts at --- and ... markers at column 0, with each document's first line", () => {
    const docs = splitYamlDocuments("a: 1\n---\nb: 2\n...\nc: 3\n--- # comment\nd: 4\n");
    assert.deepEqual(
      docs.map((d) => [d.firstLine, d.raw]),
      [
        [0, "a: 1\n"],
        [1, "---\nb: 2\n...\n"],
        [4, "c: 3\n"],
        [5, "--- # comment\nd: 4\n"],
      ],
    );
    // No empty document before a leading marker; `----` and ` ---` are not markers.
    assert.deepEqual(
      splitYamlDocuments("---\na: 1\n----\n ---\n").map((d) => d.firstLine),
      [0],
    );
  });

  it("blanks the --- marker and drops the ... line in the content, so lines and columns stay those of the file", () => {
    const docs = splitYamlDocuments("a: 1\n--- {b: 2}\n...\n");
    assert.equal(docs[1]!.content, "    {b: 2}\n");
    assert.equal(docs[1]!.firstLine, 1);
    assert.equal(splitYamlDocuments("---\r\nx: 1\r\n")[0]!.content, "   \r\nx: 1\r\n");
  });
});
