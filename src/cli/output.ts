/** Terminal styling: colour only when stdout/stderr is a TTY and NO_COLOR is unset. */
export function styler(stream: NodeJS.WriteStream): {
  green: (s: string) => string;
  red: (s: string) => string;
  yellow: (s: string) => string;
  dim: (s: string) => string;
  bold: (s: string) => string;
} {
  const on = !!stream.isTTY && process.env.NO_COLOR === undefined;
  const wrap = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: wrap("32"), red: wrap("31"), yellow: wrap("33"), dim: wrap("2"), bold: wrap("1") };
}

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
