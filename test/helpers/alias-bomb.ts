/** The alias bomb of issue 10: 9 levels of 10 aliases, 10^9 "lol"s once expanded (a few GB). */
export function aliasBomb(levels = 9): string {
  const names = "abcdefghijklmnop".split("");
  const lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb, namespace: default}", "data:"];
  lines.push(`  a: &a [${Array(10).fill('"lol"').join(", ")}]`);
  for (let i = 1; i < levels; i++)
    lines.push(
      `  ${names[i]!}: &${names[i]!} [${Array(10)
        .fill(`*${names[i - 1]!}`)
        .join(", ")}]`,
    );
  return lines.join("\n") + "\n";
}
