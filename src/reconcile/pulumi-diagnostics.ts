/** Noise the CLI prints that says nothing about why an update failed. */
const NOISE = [/warning: using pulumi-resource-\S+ from \$PATH/, /^\s*error: update failed\s*$/];

/**
 * Extracts the per-resource diagnostics from the output of a failed `pulumi up`, dropping the
 * progress lines and runtime boilerplate, so the error a user sees leads with the object and why. Pure.
 */
export function summarizeDiagnostics(output: string): string {
  const start = output.indexOf("Diagnostics:");
  if (start < 0) return output.trim().split("\n").slice(-20).join("\n");
  const lines = output.slice(start + "Diagnostics:".length).split("\n");
  const blocks: { header: string; body: string[] }[] = [];
  for (const line of lines) {
    if (/^(Outputs|Resources|Duration):/.test(line) || line.startsWith(" err?:")) break;
    const header = /^ {2}(\S.*\(.*\)):\s*$/.exec(line);
    if (header) blocks.push({ header: header[1]!, body: [] });
    else if (blocks.length && line.trim() && !NOISE.some((n) => n.test(line))) blocks[blocks.length - 1]!.body.push(line.trim());
  }
  const withErrors = blocks.filter((b) => b.body.some((l) => l.startsWith("error:")));
  // A resource-level error explains the failure; the stack-level block then only repeats runtime noise.
  const useful = withErrors.some((b) => !b.header.startsWith("pulumi:pulumi:Stack"))
    ? withErrors.filter((b) => !b.header.startsWith("pulumi:pulumi:Stack"))
    : withErrors;
  if (useful.length === 0) return output.slice(start).trim().split("\n").slice(0, 30).join("\n");
  return useful
    .map((b) => `${b.header}:\n  ${b.body.filter((l) => l.startsWith("error:") || !l.startsWith("warning:")).join("\n  ")}`)
    .join("\n");
}
