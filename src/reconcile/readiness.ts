/*
 * Readiness as Flux computes it: kstatus's rules (sigs.k8s.io/cli-utils/pkg/kstatus/status), from an
 * object's live state alone. Pure: the pipeline's health phase reads the objects and asks here.
 */

/** kstatus's statuses; NotFound when the object is not in the cluster. */
export type ObjectStatus = "Current" | "InProgress" | "Failed" | "Terminating" | "NotFound";

/** What one object's live state says about its readiness. */
export interface ObjectReadiness {
  readonly status: ObjectStatus;
  /** kstatus's reason, CamelCase (`LessAvailable`, `ProgressDeadlineExceeded`, `NotBound`). */
  readonly reason: string;
  readonly message: string;
  /**
   * The object waits on something the desired state does not hold — a provisioner binding a claim,
   * a controller publishing an Ingress's or a load balancer's address — so no run ever waits for it.
   */
  readonly external?: boolean;
}

type Obj = Readonly<Record<string, unknown>>;
interface Condition {
  readonly type?: unknown;
  readonly status?: unknown;
  readonly reason?: unknown;
  readonly message?: unknown;
}

/** How long a Pod may stay unschedulable before kstatus calls it Failed. */
const SCHEDULE_WINDOW_MS = 15_000;

const current = (message: string): ObjectReadiness => ({ status: "Current", reason: "Current", message });
const inProgress = (reason: string, message: string, external?: boolean): ObjectReadiness => ({
  status: "InProgress",
  reason,
  message,
  ...(external ? { external } : {}),
});
const failed = (reason: string, message: string): ObjectReadiness => ({ status: "Failed", reason, message });

function field(obj: Obj, path: string): unknown {
  let v: unknown = obj;
  for (const key of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Obj)[key];
  }
  return v;
}
const int = (obj: Obj, path: string, fallback: number): number => {
  const v = field(obj, path);
  return typeof v === "number" ? v : fallback;
};
const str = (obj: Obj, path: string, fallback: string): string => {
  const v = field(obj, path);
  return typeof v === "string" ? v : fallback;
};
function conditions(obj: Obj): Condition[] {
  const c = field(obj, "status.conditions");
  return Array.isArray(c) ? (c.filter((x) => x !== null && typeof x === "object") as Condition[]) : [];
}
const text = (v: unknown): string => (typeof v === "string" ? v : "");

/**
 * The readiness of one live object (undefined: not found), by kstatus's rules: deletion, then
 * `metadata.generation` against `status.observedGeneration`, then the `Reconciling`/`Stalled`
 * conditions, then the rules of its kind; a kind with none of these is Current. Ferry's additions: a
 * PersistentVolumeClaim not Bound, an Ingress without an address and a LoadBalancer Service without
 * an ingress are InProgress but `external` (never waited for). Pure; `now` for the Pod schedule window.
 */
export function objectReadiness(live: Obj | undefined, now: number = Date.now()): ObjectReadiness {
  if (!live) return { status: "NotFound", reason: "NotFound", message: "not found in the cluster" };
  if (str(live, "metadata.deletionTimestamp", "") !== "") {
    return { status: "Terminating", reason: "Terminating", message: "scheduled for deletion" };
  }
  const generation = field(live, "metadata.generation");
  const observed = field(live, "status.observedGeneration");
  if (typeof generation === "number" && typeof observed === "number" && generation !== observed) {
    return inProgress("LatestGenerationNotObserved", `generation is ${generation}, but latest observed generation is ${observed}`);
  }
  for (const c of conditions(live)) {
    if (c.type === "Reconciling" && c.status === "True") return inProgress(text(c.reason) || "Reconciling", text(c.message));
    if (c.type === "Stalled" && c.status === "True") return failed(text(c.reason) || "Stalled", text(c.message));
  }
  const apiVersion = str(live, "apiVersion", "");
  const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
  const kind = str(live, "kind", "");
  const rule = RULES[group === "" ? kind : `${group}/${kind}`];
  if (rule) return rule(live, now);
  // Not a kind with rules of its own: a `Ready` condition, when the object has one, decides.
  const ready = conditions(live).find((c) => c.type === "Ready");
  if (ready?.status === "False") return inProgress(text(ready.reason) || "NotReady", text(ready.message));
  return current("Resource is current");
}

const alwaysReady = (): ObjectReadiness => current("Resource is always ready");

const RULES: Readonly<Record<string, (o: Obj, now: number) => ObjectReadiness>> = {
  Service: service,
  Pod: pod,
  Secret: alwaysReady,
  ConfigMap: alwaysReady,
  PersistentVolumeClaim: pvc,
  "apps/StatefulSet": statefulSet,
  "apps/DaemonSet": daemonSet,
  "extensions/DaemonSet": daemonSet,
  "apps/Deployment": deployment,
  "extensions/Deployment": deployment,
  "apps/ReplicaSet": replicaSet,
  "extensions/ReplicaSet": replicaSet,
  "policy/PodDisruptionBudget": () => current("AllowedDisruptions has been computed."),
  "batch/CronJob": alwaysReady,
  "batch/Job": job,
  "apiextensions.k8s.io/CustomResourceDefinition": crd,
  "networking.k8s.io/Ingress": ingress,
};

function deployment(o: Obj): ObjectReadiness {
  // Without progressDeadlineSeconds the controller sets no Progressing condition.
  let progressing = field(o, "spec.progressDeadlineSeconds") === undefined;
  let available = false;
  for (const c of conditions(o)) {
    if (c.type === "Progressing") {
      if (c.reason === "ProgressDeadlineExceeded")
        return failed("ProgressDeadlineExceeded", text(c.message) || "Progress deadline exceeded");
      if (c.status === "True" && c.reason === "NewReplicaSetAvailable") progressing = true;
    } else if (c.type === "Available" && c.status === "True") available = true;
  }
  const spec = int(o, "spec.replicas", 1);
  const replicas = int(o, "status.replicas", 0);
  const updated = int(o, "status.updatedReplicas", 0);
  const ready = int(o, "status.readyReplicas", 0);
  const availableReplicas = int(o, "status.availableReplicas", 0);
  if (spec > replicas) return inProgress("LessReplicas", `Replicas: ${replicas}/${spec}`);
  if (spec > updated) return inProgress("LessUpdated", `Updated: ${updated}/${spec}`);
  if (replicas > spec) return inProgress("ExtraPods", `Pending termination: ${replicas - spec}`);
  if (updated > availableReplicas) return inProgress("LessAvailable", `Available: ${availableReplicas}/${updated}`);
  if (spec > ready) return inProgress("LessReady", `Ready: ${ready}/${spec}`);
  if (!progressing) return inProgress("ReplicaSetNotAvailable", "ReplicaSet not Available");
  if (!available) return inProgress("DeploymentNotAvailable", "Deployment not Available");
  return current(`Deployment is available. Replicas: ${replicas}`);
}

function statefulSet(o: Obj): ObjectReadiness {
  if (str(o, "spec.updateStrategy.type", "") === "OnDelete") return current("StatefulSet is using the ondelete update strategy");
  const spec = int(o, "spec.replicas", 1);
  const ready = int(o, "status.readyReplicas", 0);
  const currentReplicas = int(o, "status.currentReplicas", 0);
  const updated = int(o, "status.updatedReplicas", 0);
  const replicas = int(o, "status.replicas", 0);
  const partition = int(o, "spec.updateStrategy.rollingUpdate.partition", -1);
  if (spec > replicas) return inProgress("LessReplicas", `Replicas: ${replicas}/${spec}`);
  if (spec > ready) return inProgress("LessReady", `Ready: ${ready}/${spec}`);
  if (replicas > spec) return inProgress("ExtraPods", `Pending termination: ${replicas - spec}`);
  if (partition !== -1) {
    if (updated < spec - partition) return inProgress("PartitionRollout", `updated: ${updated}/${spec - partition}`);
    return current(`Partition rollout complete. updated: ${updated}`);
  }
  if (spec > currentReplicas) return inProgress("LessCurrent", `current: ${currentReplicas}/${spec}`);
  if (str(o, "status.currentRevision", "") !== str(o, "status.updateRevision", "")) {
    return inProgress("RevisionMismatch", "Waiting for updated revision to match current");
  }
  return current(`All replicas scheduled as expected. Replicas: ${replicas}`);
}

function daemonSet(o: Obj): ObjectReadiness {
  if (typeof field(o, "metadata.generation") !== "number") return inProgress("NoGeneration", "metadata.generation not found");
  if (typeof field(o, "status.observedGeneration") !== "number") {
    return inProgress("NoObservedGeneration", "status.observedGeneration not found");
  }
  const desired = int(o, "status.desiredNumberScheduled", -1);
  const currentNumber = int(o, "status.currentNumberScheduled", 0);
  const updated = int(o, "status.updatedNumberScheduled", 0);
  const available = int(o, "status.numberAvailable", 0);
  const ready = int(o, "status.numberReady", 0);
  if (desired === -1) return inProgress("NoDesiredNumber", "Missing .status.desiredNumberScheduled");
  if (desired > currentNumber) return inProgress("LessCurrent", `Current: ${currentNumber}/${desired}`);
  if (desired > updated) return inProgress("LessUpdated", `Updated: ${updated}/${desired}`);
  if (desired > available) return inProgress("LessAvailable", `Available: ${available}/${desired}`);
  if (desired > ready) return inProgress("LessReady", `Ready: ${ready}/${desired}`);
  return current(`All replicas scheduled as expected. Replicas: ${desired}`);
}

function replicaSet(o: Obj): ObjectReadiness {
  if (conditions(o).some((c) => c.type === "ReplicaFailure" && c.status === "True")) {
    return inProgress("ReplicaFailure", "Replica Failure condition. Check Pods");
  }
  const spec = int(o, "spec.replicas", 1);
  const replicas = int(o, "status.replicas", 0);
  const ready = int(o, "status.readyReplicas", 0);
  const available = int(o, "status.availableReplicas", 0);
  const labelled = int(o, "status.fullyLabeledReplicas", 0);
  if (spec > labelled) return inProgress("LessLabelled", `Labelled: ${labelled}/${spec}`);
  if (spec > available) return inProgress("LessAvailable", `Available: ${available}/${spec}`);
  if (spec > ready) return inProgress("LessReady", `Ready: ${ready}/${spec}`);
  if (replicas > spec) return inProgress("ExtraPods", `Pending termination: ${replicas - spec}`);
  return current(`ReplicaSet is available. Replicas: ${replicas}`);
}

function pod(o: Obj, now: number): ObjectReadiness {
  const phase = str(o, "status.phase", "");
  switch (phase) {
    case "Succeeded":
      return current("Pod has completed successfully");
    case "Failed":
      return current("Pod has completed, but not successfully");
    case "Running": {
      if (conditions(o).some((c) => c.type === "Ready" && c.status === "True")) return current("Pod is Ready");
      const statuses = field(o, "status.containerStatuses");
      const looping = (Array.isArray(statuses) ? (statuses as Obj[]) : [])
        .filter((s) => field(s, "state.waiting.reason") === "CrashLoopBackOff")
        .map((s) => text(s.name));
      if (looping.length > 0) return failed("ContainerCrashLooping", `Containers in CrashLoop state: ${looping.join(",")}`);
      return inProgress("PodRunningNotReady", "Pod is running but is not Ready");
    }
    case "Pending": {
      const unschedulable = conditions(o).find((c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable");
      if (unschedulable) {
        const created = Date.parse(str(o, "metadata.creationTimestamp", ""));
        if (Number.isFinite(created) && now - SCHEDULE_WINDOW_MS < created)
          return inProgress("PodNotScheduled", "Pod has not been scheduled");
        return failed("PodUnschedulable", "Pod could not be scheduled");
      }
      return inProgress("PodPending", "Pod is in the Pending phase");
    }
    case "":
      return inProgress("PodNotObserved", "Pod phase not available");
    default:
      return inProgress("UnknownPhase", `unknown phase ${phase}`);
  }
}

function job(o: Obj): ObjectReadiness {
  const parallelism = int(o, "spec.parallelism", 1);
  const completions = int(o, "spec.completions", parallelism);
  const succeeded = int(o, "status.succeeded", 0);
  const failedPods = int(o, "status.failed", 0);
  for (const c of conditions(o)) {
    if (c.status !== "True") continue;
    if (c.type === "Complete") return current(`Job Completed. succeeded: ${succeeded}/${completions}`);
    if (c.type === "Failed") return failed("JobFailed", `Job Failed. failed: ${failedPods}/${completions}`);
    if (c.type === "Suspended") return current("Job is suspended");
  }
  if (str(o, "status.startTime", "") === "") return inProgress("JobNotStarted", "Job not started");
  return current(`Job in progress. success:${succeeded}, active: ${int(o, "status.active", 0)}, failed: ${failedPods}`);
}

function pvc(o: Obj): ObjectReadiness {
  const phase = str(o, "status.phase", "unknown");
  // Bound by a provisioner, or only when a first consumer is scheduled (WaitForFirstConsumer).
  if (phase !== "Bound") return inProgress("NotBound", `PVC is not Bound. phase: ${phase}`, true);
  return current("PVC is Bound");
}

function service(o: Obj): ObjectReadiness {
  if (str(o, "spec.type", "ClusterIP") === "LoadBalancer") {
    if (str(o, "spec.clusterIP", "") === "") return inProgress("NoIPAssigned", "ClusterIP not set. Service type: LoadBalancer");
    const ingress = field(o, "status.loadBalancer.ingress");
    if (!Array.isArray(ingress) || ingress.length === 0) {
      return inProgress("NoLoadBalancerAddress", "no load balancer has published an address", true);
    }
  }
  return current("Service is ready");
}

function ingress(o: Obj): ObjectReadiness {
  const published = field(o, "status.loadBalancer.ingress");
  if (!Array.isArray(published) || published.length === 0) {
    return inProgress("NoAddress", "no ingress controller has published an address", true);
  }
  return current("Ingress has an address");
}

function crd(o: Obj): ObjectReadiness {
  for (const c of conditions(o)) {
    if (c.type === "NamesAccepted" && c.status === "False") return failed(text(c.reason), text(c.message));
    if (c.type === "Established") {
      if (c.status === "False" && c.reason !== "Installing") return failed(text(c.reason), text(c.message));
      if (c.status === "True") return current("CRD is established");
    }
  }
  return inProgress("Installing", "Install in progress");
}

/** Whether a waiting unit is done with this object: ready, or waiting on something outside the desired state. */
export function settled(r: ObjectReadiness): boolean {
  return r.status === "Current" || (r.status === "InProgress" && !!r.external);
}

/** A unit's health: Failed when an object failed, InProgress while one is not ready, else Ready. */
export type UnitHealth = "Ready" | "InProgress" | "Failed";

/** The health of a unit from its objects' readiness. Pure. */
export function unitHealth(objects: readonly ObjectReadiness[]): UnitHealth {
  if (objects.some((r) => r.status === "Failed")) return "Failed";
  return objects.every((r) => r.status === "Current") ? "Ready" : "InProgress";
}
