/** An object a unit waits for (Flux `healthChecks` entry); `apiVersion` may be left out, as in Flux. */
export interface HealthCheckRef {
  readonly apiVersion?: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

/** How a unit waits for its objects after they are applied (Flux Kustomization `wait`, `healthChecks`, `timeout`). */
export interface HealthPolicy {
  /** Wait until every object of the unit is ready (`wait: true`). */
  readonly wait: boolean;
  /** Further objects to wait for; a HelmRelease or Kustomization named here stands for its own unit's objects. */
  readonly checks: readonly HealthCheckRef[];
  /** How long to wait after the apply before the unit fails its health check. */
  readonly timeoutMs: number;
}

/** The wait when a Kustomization names no `timeout` (Flux then uses its `interval`, commonly 5 to 10 minutes). */
export const DEFAULT_HEALTH_TIMEOUT_MS = 5 * 60_000;

const GO_DURATION_UNITS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration (`30s`, `1m30s`, `2h0m0s`, `1.5h`), in milliseconds; undefined when Go would refuse it. Pure. */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  if (!/^([0-9]*\.?[0-9]+|[0-9]+\.)(ns|us|µs|ms|s|m|h)(([0-9]*\.?[0-9]+|[0-9]+\.)(ns|us|µs|ms|s|m|h))*$/.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/([0-9.]+)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * GO_DURATION_UNITS[m[2]!]!;
  return ms;
}
