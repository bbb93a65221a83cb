// The bench's figures as data, judged against issue 12's targets and rendered as markdown. Pure.

/** A measured value, or why there is none. */
export type Measured = number | "timeout" | "failed" | "n/a";

/** What a figure is judged against: a multiple of kubectl's figure, an absolute bound, or nothing. */
export type Target =
  | { readonly kind: "ratio"; readonly max: number }
  | { readonly kind: "absolute"; readonly max: number; readonly unit: string }
  | { readonly kind: "none" };

/** One row of the bench table: ferry's figure beside kubectl's from the same run. */
export interface Figure {
  readonly objects: number;
  /** What was measured, with its unit, e.g. "initial apply (s)". */
  readonly measure: string;
  readonly ferry: Measured;
  readonly kubectl: Measured;
  readonly target: Target;
  /** Anything the number alone does not say (e.g. the run's triggers or changes). */
  readonly note?: string;
}

/** ferry's figure over kubectl's, or undefined when either is missing. */
export function ratio(f: Pick<Figure, "ferry" | "kubectl">): number | undefined {
  return typeof f.ferry === "number" && typeof f.kubectl === "number" && f.kubectl > 0 ? f.ferry / f.kubectl : undefined;
}

/** Whether a figure meets its target: "yes", "no", or "-" (no target, or nothing to judge). */
export function targetMet(f: Figure): "yes" | "no" | "-" {
  if (f.target.kind === "none" || typeof f.ferry !== "number") return f.ferry === "timeout" && f.target.kind !== "none" ? "no" : "-";
  if (f.target.kind === "absolute") return f.ferry <= f.target.max ? "yes" : "no";
  const r = ratio(f);
  return r === undefined ? "-" : r <= f.target.max ? "yes" : "no";
}

/** The target as the issue writes it: "≤ 3× kubectl", "≤ 512 MiB", or "-". */
export function describeTarget(t: Target): string {
  if (t.kind === "ratio") return `≤ ${t.max}× kubectl`;
  if (t.kind === "absolute") return `≤ ${t.max} ${t.unit}`;
  return "-";
}

function show(v: Measured): string {
  if (typeof v !== "number") return v;
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1);
}

/** The markdown table: one row per figure, ferry beside kubectl, the ratio, the target, met or not. */
export function renderTable(figures: readonly Figure[]): string {
  const lines = ["| objects | figure | ferry | kubectl --server-side | ferry/kubectl | target | met |", "|---|---|---|---|---|---|---|"];
  for (const f of figures) {
    const r = ratio(f);
    const measure = f.note ? `${f.measure} (${f.note})` : f.measure;
    lines.push(
      `| ${f.objects} | ${measure} | ${show(f.ferry)} | ${show(f.kubectl)} | ${r === undefined ? "-" : `${r.toFixed(1)}×`} | ${describeTarget(f.target)} | ${targetMet(f)} |`,
    );
  }
  return lines.join("\n");
}

/** Peak RSS in MiB by role, as sampled over one phase (a run). */
export interface MemoryProfile {
  /** Highest sum over the tree in any one sample. */
  readonly peakMiB: number;
  /** Each role's share in the sample where the sum peaked. */
  readonly atPeak: Readonly<Record<string, number>>;
  /** Each role's own highest figure over the phase (they need not coincide). */
  readonly rolePeaks: Readonly<Record<string, number>>;
  readonly samples: number;
  /** The processes of the peak sample, largest first: where the memory went. */
  readonly processesAtPeak: readonly { readonly pid: number; readonly name: string; readonly role: string; readonly mib: number }[];
}

/** A markdown table of where the memory went, one column per phase. */
export function renderMemory(
  objects: number,
  phases: Readonly<Record<string, MemoryProfile | undefined>>,
  roles: readonly string[],
): string {
  const names = Object.keys(phases);
  const cell = (p: MemoryProfile | undefined, role: string) =>
    p ? `${Math.round(p.atPeak[role] ?? 0)} (peak ${Math.round(p.rolePeaks[role] ?? 0)})` : "-";
  const lines = [
    `| ${objects} objects: RSS MiB at the tree's peak (role's own peak) | ${names.join(" | ")} |`,
    `|---|${names.map(() => "---").join("|")}|`,
  ];
  for (const role of roles) lines.push(`| ${role} | ${names.map((n) => cell(phases[n], role)).join(" | ")} |`);
  lines.push(`| **total** | ${names.map((n) => (phases[n] ? `**${Math.round(phases[n].peakMiB)}**` : "-")).join(" | ")} |`);
  return lines.join("\n");
}

/** One line per phase naming the processes of the peak sample, largest first, e.g. "node ferry (runner) 150". */
export function renderPeakProcesses(phases: Readonly<Record<string, MemoryProfile | undefined>>): string {
  return Object.entries(phases)
    .map(([phase, p]) => `- ${phase}: ${p ? p.processesAtPeak.map((q) => `${q.name} (${q.role}) ${q.mib}`).join(", ") : "-"}`)
    .join("\n");
}
