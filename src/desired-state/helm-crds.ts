/** `helm template --include-crds` output, split: the documents of the charts' crds/ folders, and the rest. */
export interface ChartCrdSplit {
  readonly crds: string;
  readonly rest: string;
}

/**
 * Splits helm's output by where each document comes from: helm heads each file with
 * `# Source: <chart>/crds/<file>` (subcharts: `<chart>/charts/<sub>/crds/<file>`); further documents of
 * the same file follow without a header.
 */
export function splitChartCrds(text: string): ChartCrdSplit {
  const crds: string[] = [];
  const rest: string[] = [];
  let fromCrds = false;
  for (const doc of text.split(/^---[ \t]*$/m)) {
    const source = /^\s*# Source: (\S+)/.exec(doc)?.[1];
    if (source !== undefined) fromCrds = /(^|\/)crds\//.test(source.replace(/^[^/]+\//, ""));
    (fromCrds ? crds : rest).push(doc);
  }
  return { crds: crds.join("\n---\n"), rest: rest.join("\n---\n") };
}
