/** One YAML document of a multi-document text, as {@link splitYamlDocuments} cuts it. */
export interface YamlDocument {
  /**
   * The document exactly as written, its `---` start line and `...` end line included: joining the
   * `raw` of every document gives back the whole text, character for character.
   */
  readonly raw: string;
  /**
   * What to hand a YAML parser: `raw` with its `---` marker blanked (so what follows the marker on that
   * line keeps its column) and its `...` end line left out. Its lines are `raw`'s lines.
   */
  readonly content: string;
  /** 0-based line of the document's first line in the text. */
  readonly firstLine: number;
}

const START_MARKER = /^---(?=[ \t\r\n]|$)/;
const END_MARKER = /^\.\.\.(?=[ \t\r\n]|$)/;

/**
 * Splits a multi-document YAML text at its `---` (start) and `...` (end) markers. A marker at column 0
 * always ends a document in YAML, even inside a block scalar, so splitting by lines is exact. A text
 * without markers is one document; a text that starts with `---` has no empty document before it.
 */
export function splitYamlDocuments(text: string): YamlDocument[] {
  const documents: YamlDocument[] = [];
  let raw = "";
  let content = "";
  let firstLine = 0;
  let line = 0;
  const flush = (nextLine: number): void => {
    if (raw !== "") documents.push({ raw, content, firstLine });
    raw = "";
    content = "";
    firstLine = nextLine;
  };
  // Split after each newline, keeping it, so that nothing is lost.
  for (const part of text.split(/(?<=\n)/)) {
    if (START_MARKER.test(part)) {
      flush(line);
      raw = part;
      content = "   " + part.slice(3);
    } else if (END_MARKER.test(part)) {
      raw += part;
      flush(line + 1);
    } else {
      raw += part;
      content += part;
    }
    line++;
  }
  if (raw !== "" || documents.length === 0) documents.push({ raw, content, firstLine });
  return documents;
}
