import { DesiredState, unitKey } from "./desired-state";
import { formatLocation } from "./manifest-error";

/**
 * Why a unit was held back or failed in a run, in Flux's vocabulary:
 * - BuildFailed: it did not load or render (file and line named);
 * - DryRunFailed: the API server refuses one of its objects; none of them was applied;
 * - HookFailed: a Helm hook failed (a pre-hook: nothing of the release was applied);
 * - ApplyFailed: the engine failed on one of its objects (the others of the run applied);
 * - HealthCheckFailed: it asked to be waited for and was not ready in time (it stays applied);
 * - DependencyFailed: it waits (dependsOn) for a unit that failed, so it was not applied.
 */
export type UnitFailureReason = "BuildFailed" | "DryRunFailed" | "HookFailed" | "ApplyFailed" | "HealthCheckFailed" | "DependencyFailed";

/** One unit that failed in a run, and why. */
export interface UnitFailure {
  /** {@link unitKey}: `HelmRelease/infra/ingress`, `Kustomization/flux-system/apps`, `ManifestFile/clusters/dev/app.yaml` */
  readonly unit: string;
  readonly reason: UnitFailureReason;
  readonly message: string;
}

/** The build failures a desired state carries, as unit failures. */
export function buildFailures(state: DesiredState): UnitFailure[] {
  return (state.failed ?? []).map((f) => ({
    unit: unitKey(f),
    reason: "BuildFailed",
    message: f.errors.map((e) => e.message).join("\n"),
  }));
}

/**
 * Units isolated as Flux's controllers isolate them: the desired state without the units that
 * failed and without every unit that waits for one of them, transitively (`DependencyFailed`).
 * What a held-back unit declared before stays in the cluster as it is: the run neither applies nor
 * deletes it. Pure.
 */
export function holdBack(state: DesiredState, failures: readonly UnitFailure[]): { state: DesiredState; held: UnitFailure[] } {
  const out = new Set(failures.map((f) => f.unit));
  const held: UnitFailure[] = [...failures];
  for (let changed = true; changed;) {
    changed = false;
    for (const u of state.units) {
      const key = unitKey(u);
      if (out.has(key)) continue;
      const blocker = u.dependsOn.find((d) => out.has(d));
      if (blocker === undefined) continue;
      out.add(key);
      changed = true;
      held.push({
        unit: key,
        reason: "DependencyFailed",
        message: `${key} (${formatLocation(u.location)}) waits for ${blocker}, which failed: not applied; its objects stay as they are`,
      });
    }
  }
  return { state: { ...state, units: state.units.filter((u) => !out.has(unitKey(u))) }, held };
}
