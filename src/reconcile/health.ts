import { DesiredState, DesiredUnit, unitKey } from "../desired-state/desired-state";
import { HealthCheckRef } from "../desired-state/health-policy";
import { Cluster, ObjectRef } from "./ports";
import { ObjectReadiness, ObjectStatus, objectReadiness, settled, UnitHealth, unitHealth } from "./readiness";

/** One object of a unit that is not ready, as a result reports it. */
export interface ObjectHealth {
  /** `Kind/namespace/name` (cluster-scoped: `Kind/name`). */
  readonly object: string;
  readonly status: ObjectStatus;
  readonly reason: string;
  readonly message: string;
  /** Waits on something outside the desired state (a provisioner, an ingress controller): never waited for. */
  readonly external?: boolean;
}

/** A unit's readiness after the apply, as a result reports it. */
export interface UnitReadiness {
  /** `Kustomization/flux-system/apps`, `ManifestFile/clusters/dev/app.yaml` */
  readonly unit: string;
  readonly health: UnitHealth;
  /** The unit asked to be waited for (`wait`, `healthChecks`); `failed` when it was not ready within its timeout. */
  readonly waited?: "ready" | "failed";
  /** Its objects that are not ready (the waited ones first). */
  readonly objects: readonly ObjectHealth[];
}

/** What {@link checkHealth} needs beyond the state and the cluster. */
export interface HealthOptions {
  /** Wait for the units that ask; false: read once and report. */
  readonly wait: boolean;
  readonly signal?: AbortSignal;
  readonly pollMs?: number;
  /** Told once per poll while units are waited for. */
  readonly onWait?: (line: string) => void;
}

/** Kinds whose readiness needs no read: always ready by kstatus's rules (and a Secret's data is never fetched). */
const ALWAYS_READY = new Set(["/Secret", "/ConfigMap", "batch/CronJob"]);
/** Flux objects ferry renders itself: a health check naming one stands for that unit's objects. */
const FLUX_UNIT_KINDS: Readonly<Record<string, "HelmRelease" | "Kustomization">> = {
  "helm.toolkit.fluxcd.io/HelmRelease": "HelmRelease",
  "kustomize.toolkit.fluxcd.io/Kustomization": "Kustomization",
};

function refName(ref: ObjectRef): string {
  return ref.namespace ? `${ref.kind}/${ref.namespace}/${ref.name}` : `${ref.kind}/${ref.name}`;
}

function groupOf(apiVersion: string | undefined): string {
  return apiVersion?.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
}

function unitRefs(unit: DesiredUnit): ObjectRef[] {
  return unit.objects.map((o) => ({
    apiVersion: o.object.apiVersion,
    kind: o.id.kind,
    name: o.id.name,
    ...(o.id.namespace !== undefined ? { namespace: o.id.namespace } : {}),
  }));
}

/** The objects a unit waits for: its own (`wait`), and those its health checks name. */
function waitedRefs(unit: DesiredUnit, units: ReadonlyMap<string, DesiredUnit>): ObjectRef[] {
  const policy = unit.health;
  if (!policy) return [];
  const refs = policy.wait ? unitRefs(unit) : [];
  for (const check of policy.checks) refs.push(...checkRefs(check, unit, units));
  return refs;
}

function checkRefs(check: HealthCheckRef, unit: DesiredUnit, units: ReadonlyMap<string, DesiredUnit>): ObjectRef[] {
  const fluxKind = check.apiVersion
    ? FLUX_UNIT_KINDS[`${groupOf(check.apiVersion)}/${check.kind}`]
    : Object.values(FLUX_UNIT_KINDS).find((k) => k === check.kind);
  const namespace = check.namespace;
  if (fluxKind) {
    const target = units.get(unitKey({ kind: fluxKind, name: `${namespace ?? unit.name.split("/")[0]}/${check.name}` }));
    if (target) return unitRefs(target);
  }
  // Without apiVersion (Flux allows it), the unit's own object of that kind and name is meant.
  const own = [...units.values()]
    .flatMap((u) => u.objects)
    .find((o) => o.id.kind === check.kind && o.id.name === check.name && (namespace === undefined || o.id.namespace === namespace));
  const apiVersion = check.apiVersion ?? own?.object.apiVersion;
  if (!apiVersion) return [{ apiVersion: "", kind: check.kind, name: check.name, ...(namespace ? { namespace } : {}) }];
  return [{ apiVersion, kind: check.kind, name: check.name, ...(namespace ? { namespace } : {}) }];
}

/**
 * Reads every object of the desired state once and reports each unit's readiness (kstatus's rules);
 * with `wait`, polls the units that ask (Flux `wait`, `healthChecks`) until their objects are ready,
 * one fails, or their timeout passes. Nothing waits on a claim's binding or an Ingress's address.
 */
export async function checkHealth(state: DesiredState, cluster: Cluster, options: HealthOptions): Promise<UnitReadiness[]> {
  const units = new Map(state.units.map((u) => [unitKey(u), u]));
  const readiness = new Map<string, ObjectReadiness>();
  const read = async (refs: readonly ObjectRef[]): Promise<void> => {
    const todo = [...new Map(refs.map((r) => [`${r.apiVersion}|${refName(r)}`, r])).values()];
    for (let i = 0; i < todo.length; i += 8) {
      await Promise.all(
        todo.slice(i, i + 8).map(async (ref) => {
          const key = `${ref.apiVersion}|${refName(ref)}`;
          if (ALWAYS_READY.has(`${groupOf(ref.apiVersion)}/${ref.kind}`)) {
            readiness.set(key, { status: "Current", reason: "Current", message: "Resource is always ready" });
          } else if (ref.apiVersion === "") {
            readiness.set(key, { status: "NotFound", reason: "NoApiVersion", message: "the health check names no apiVersion" });
          } else readiness.set(key, objectReadiness(await cluster.read(ref)));
        }),
      );
    }
  };
  const of = (ref: ObjectRef): ObjectReadiness => readiness.get(`${ref.apiVersion}|${refName(ref)}`)!;

  await read(state.units.flatMap((u) => [...unitRefs(u), ...waitedRefs(u, units)]));

  const verdict = new Map<string, "ready" | "failed">();
  if (options.wait) {
    const started = Date.now();
    const pending = (): DesiredUnit[] => state.units.filter((u) => u.health && !verdict.has(unitKey(u)));
    for (;;) {
      for (const u of pending()) {
        const waited = waitedRefs(u, units).map(of);
        if (waited.every(settled)) verdict.set(unitKey(u), "ready");
        else if (waited.some((r) => r.status === "Failed") || Date.now() - started >= u.health!.timeoutMs)
          verdict.set(unitKey(u), "failed");
      }
      const left = pending();
      if (left.length === 0 || options.signal?.aborted) break;
      options.onWait?.(`waiting for ${left.map(unitKey).join(", ")}`);
      await new Promise((r) => setTimeout(r, options.pollMs ?? 2000));
      await read(left.flatMap((u) => waitedRefs(u, units)));
    }
  }

  return state.units.map((u) => {
    const key = unitKey(u);
    const waited = waitedRefs(u, units);
    const refs = [...waited, ...unitRefs(u)];
    const seen = new Set<string>();
    const objects: ObjectHealth[] = [];
    for (const ref of refs) {
      const name = refName(ref);
      const r = of(ref);
      if (seen.has(name) || r.status === "Current") continue;
      seen.add(name);
      objects.push({ object: name, status: r.status, reason: r.reason, message: r.message, ...(r.external ? { external: true } : {}) });
    }
    const health = unitHealth([...unitRefs(u), ...waited].map(of));
    const v = verdict.get(key);
    return { unit: key, health, ...(v ? { waited: v } : {}), objects };
  });
}

/** The message of a run whose waited units failed their health checks: each unit, then what is not ready. */
export function healthFailure(units: readonly UnitReadiness[], state: DesiredState): string {
  const timeouts = new Map(state.units.map((u) => [unitKey(u), u.health?.timeoutMs ?? 0]));
  return units
    .filter((u) => u.waited === "failed")
    .map((u) => {
      const objects = u.objects.filter((o) => !o.external).map((o) => `  ${o.object}: ${o.status} (${o.reason}) ${o.message}`.trimEnd());
      const failedNow = u.health === "Failed" ? "failed" : `was not ready within ${Math.round((timeouts.get(u.unit) ?? 0) / 1000)}s`;
      return `${u.unit}: health check ${failedNow} (its objects stay applied; fix them, or raise spec.timeout):\n${objects.join("\n")}`;
    })
    .join("\n");
}
