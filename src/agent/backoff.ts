/** Delay before retry number `attempt` (1-based): exponential from `baseMs`, capped, with +/-20% jitter. Pure given `random`. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp * (0.8 + 0.4 * random()));
}
