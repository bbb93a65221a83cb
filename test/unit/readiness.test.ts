import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DesiredState, DesiredUnit } from "../../src/desired-state/desired-state";
import { parseFluxKustomization } from "../../src/desired-state/flux-kustomization";
import { parseGoDuration } from "../../src/desired-state/health-policy";
import { identify, KubeObject } from "../../src/desired-state/object-id";
import { withoutProviderAnnotations } from "../../src/desired-state/provider-annotations";
import { checkHealth, healthFailure } from "../../src/reconcile/health";
import { Cluster, ObjectRef } from "../../src/reconcile/ports";
import { objectReadiness, settled, unitHealth } from "../../src/reconcile/readiness";

const deploy = (status: Record<string, unknown>, spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "default", generation: 2, ...metadata },
  spec: { replicas: 2, progressDeadlineSeconds: 600, ...spec },
  status: { observedGeneration: 2, ...status },
});
const availableStatus = {
  replicas: 2,
  updatedReplicas: 2,
  readyReplicas: 2,
  availableReplicas: 2,
  conditions: [
    { type: "Progressing", status: "True", reason: "NewReplicaSetAvailable" },
    { type: "Available", status: "True" },
  ],
};

describe("readiness (kstatus's rules)", () => {
  it("Deployment: Current once every replica is updated, available and ready, with NewReplicaSetAvailable", () => {
    assert.equal(objectReadiness(deploy(availableStatus)).status, "Current");
  });
  it("Deployment: InProgress with the first replica count that falls short, in kstatus's order", () => {
    assert.deepEqual(
      [
        objectReadiness(deploy({ ...availableStatus, replicas: 1 })).reason,
        objectReadiness(deploy({ ...availableStatus, updatedReplicas: 1 })).reason,
        objectReadiness(deploy({ ...availableStatus, replicas: 3, updatedReplicas: 3 }, { replicas: 2 })).reason,
        objectReadiness(deploy({ ...availableStatus, availableReplicas: 1 })).reason,
        objectReadiness(deploy({ ...availableStatus, readyReplicas: 1 })).reason,
        objectReadiness(deploy({ ...availableStatus, conditions: [{ type: "Available", status: "True" }] })).reason,
        objectReadiness(deploy({ ...availableStatus, conditions: [availableStatus.conditions[0]] })).reason,
      ],
      ["LessReplicas", "LessUpdated", "ExtraPods", "LessAvailable", "LessReady", "ReplicaSetNotAvailable", "DeploymentNotAvailable"],
    );
  });
  it("Deployment: Failed when its progress deadline is exceeded", () => {
    const r = objectReadiness(deploy({ conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded" }] }));
    assert.equal(r.status, "Failed");
  });
  it("InProgress while the controller has not observed the latest generation", () => {
    assert.equal(objectReadiness(deploy({ ...availableStatus, observedGeneration: 1 })).reason, "LatestGenerationNotObserved");
  });
  it("Terminating once a deletion timestamp is set", () => {
    assert.equal(objectReadiness(deploy(availableStatus, {}, { deletionTimestamp: "2024-01-01T00:00:00Z" })).status, "Terminating");
  });
  it("NotFound when the object is not there", () => {
    assert.equal(objectReadiness(undefined).status, "NotFound");
  });
  it("generic conditions: Reconciling=True is InProgress, Stalled=True is Failed, none is Current", () => {
    const cr = (conditions: unknown[]) => ({ apiVersion: "x.io/v1", kind: "Thing", metadata: { name: "t" }, status: { conditions } });
    assert.equal(objectReadiness(cr([{ type: "Reconciling", status: "True" }])).status, "InProgress");
    assert.equal(objectReadiness(cr([{ type: "Stalled", status: "True", reason: "Broken" }])).status, "Failed");
    assert.equal(objectReadiness(cr([{ type: "Ready", status: "False" }])).status, "InProgress");
    assert.equal(objectReadiness(cr([])).status, "Current");
  });
  it("StatefulSet: ready replicas, partition and revision", () => {
    const sts = (status: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "db" },
      spec: { replicas: 1, ...spec },
      status: {
        replicas: 1,
        readyReplicas: 1,
        currentReplicas: 1,
        updatedReplicas: 1,
        currentRevision: "a",
        updateRevision: "a",
        ...status,
      },
    });
    assert.equal(objectReadiness(sts({})).status, "Current");
    assert.equal(objectReadiness(sts({ readyReplicas: 0 })).reason, "LessReady");
    assert.equal(objectReadiness(sts({ updateRevision: "b" })).reason, "RevisionMismatch");
    assert.equal(objectReadiness(sts({ readyReplicas: 0 }, { updateStrategy: { type: "OnDelete" } })).status, "Current");
  });
  it("DaemonSet: needs an observed generation and every scheduled pod available", () => {
    const ds = (status: Record<string, unknown>) => ({
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "d", generation: 1 },
      status,
    });
    assert.equal(objectReadiness(ds({})).reason, "NoObservedGeneration");
    const full = {
      observedGeneration: 1,
      desiredNumberScheduled: 2,
      currentNumberScheduled: 2,
      updatedNumberScheduled: 2,
      numberAvailable: 2,
      numberReady: 2,
    };
    assert.equal(objectReadiness(ds(full)).status, "Current");
    assert.equal(objectReadiness(ds({ ...full, numberAvailable: 1 })).reason, "LessAvailable");
  });
  it("Job: Complete is Current, Failed is Failed, not started is InProgress", () => {
    const job = (status: Record<string, unknown>) => ({ apiVersion: "batch/v1", kind: "Job", metadata: { name: "j" }, status });
    assert.equal(objectReadiness(job({ conditions: [{ type: "Complete", status: "True" }] })).status, "Current");
    assert.equal(objectReadiness(job({ conditions: [{ type: "Failed", status: "True" }] })).status, "Failed");
    assert.equal(objectReadiness(job({})).reason, "JobNotStarted");
    assert.equal(objectReadiness(job({ startTime: "2024-01-01T00:00:00Z" })).status, "Current");
  });
  it("Pod: Ready, crash looping, and unschedulable past kstatus's 15 s window", () => {
    const now = Date.parse("2024-01-01T00:01:00Z");
    const pod = (status: Record<string, unknown>, created = "2024-01-01T00:00:00Z") => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", creationTimestamp: created },
      status,
    });
    assert.equal(objectReadiness(pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] }), now).status, "Current");
    const looping = pod({ phase: "Running", containerStatuses: [{ name: "app", state: { waiting: { reason: "CrashLoopBackOff" } } }] });
    assert.equal(objectReadiness(looping, now).status, "Failed");
    const unschedulable = { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable" }] };
    assert.equal(objectReadiness(pod(unschedulable), now).status, "Failed");
    assert.equal(objectReadiness(pod(unschedulable, "2024-01-01T00:00:55Z"), now).status, "InProgress");
    assert.equal(objectReadiness(pod({ phase: "Succeeded" }), now).status, "Current");
  });
  it("CRD: Established is Current, NamesAccepted=False is Failed, else installing", () => {
    const crd = (conditions: unknown[]) => ({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "x" },
      status: { conditions },
    });
    assert.equal(objectReadiness(crd([{ type: "Established", status: "True" }])).status, "Current");
    assert.equal(objectReadiness(crd([{ type: "NamesAccepted", status: "False", reason: "Conflict" }])).status, "Failed");
    assert.equal(objectReadiness(crd([])).reason, "Installing");
  });
  it("a Pending PVC, an Ingress without an address and a LoadBalancer without one are InProgress but never waited for", () => {
    const claim = objectReadiness({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "c" },
      status: { phase: "Pending" },
    });
    const ing = objectReadiness({
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "i" },
      status: { loadBalancer: {} },
    });
    const lb = objectReadiness({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "s" },
      spec: { type: "LoadBalancer", clusterIP: "10.0.0.1" },
    });
    for (const r of [claim, ing, lb]) {
      assert.equal(r.status, "InProgress");
      assert.equal(settled(r), true);
    }
    assert.equal(
      objectReadiness({ apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "c" }, status: { phase: "Bound" } }).status,
      "Current",
    );
    assert.equal(
      objectReadiness({ apiVersion: "v1", kind: "Service", metadata: { name: "s" }, spec: { clusterIP: "10.0.0.1" } }).status,
      "Current",
    );
  });
  it("a unit is Failed when an object failed, InProgress while one is not ready, else Ready", () => {
    const c = objectReadiness(undefined);
    assert.equal(unitHealth([]), "Ready");
    assert.equal(unitHealth([c]), "InProgress");
    assert.equal(unitHealth([c, { status: "Failed", reason: "x", message: "" }]), "Failed");
  });
});

describe("Flux Kustomization health fields and Go durations", () => {
  const k = (spec: Record<string, unknown>): KubeObject => ({
    apiVersion: "kustomize.toolkit.fluxcd.io/v1",
    kind: "Kustomization",
    metadata: { name: "apps", namespace: "flux-system" },
    spec: { path: "./apps", prune: true, ...spec },
  });
  const at = { file: "c/flux.yaml", line: 3 };
  it("reads wait, healthChecks and timeout; none of them: no health policy", () => {
    assert.equal(parseFluxKustomization(k({}), at).health, undefined);
    assert.deepEqual(parseFluxKustomization(k({ wait: true, timeout: "1m30s" }), at).health, { wait: true, checks: [], timeoutMs: 90_000 });
    const checks = [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: "apps" }];
    assert.deepEqual(parseFluxKustomization(k({ healthChecks: checks }), at).health, { wait: false, checks, timeoutMs: 300_000 });
  });
  it("refuses a timeout that is not a Go duration, naming the field", () => {
    assert.throws(() => parseFluxKustomization(k({ wait: true, timeout: "5 minutes" }), at), /spec\.timeout.*not a duration/s);
  });
  it("parses Go durations", () => {
    assert.deepEqual(["20s", "5m", "1h0m0s", "1.5h", "300ms", "0", "5", "m", "1d"].map(parseGoDuration), [
      20_000,
      300_000,
      3_600_000,
      5_400_000,
      300,
      0,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe("the provider's skipAwait annotation", () => {
  it("is left out when the state's inputs are compared with Git", () => {
    const inputs = { kind: "ConfigMap", metadata: { name: "a", annotations: { "pulumi.com/skipAwait": "true" } } };
    assert.deepEqual(withoutProviderAnnotations(inputs), { kind: "ConfigMap", metadata: { name: "a" } });
    const kept = { metadata: { name: "a", annotations: { "pulumi.com/skipAwait": "true", team: "x" } } };
    assert.deepEqual(withoutProviderAnnotations(kept), { metadata: { name: "a", annotations: { team: "x" } } });
  });
});

describe("checkHealth", () => {
  const unit = (kind: DesiredUnit["kind"], name: string, objects: KubeObject[], health?: DesiredUnit["health"]): DesiredUnit => ({
    kind,
    name,
    location: { file: "c/x.yaml", line: 1 },
    objects: objects.map((object) => ({
      object,
      location: { file: "c/x.yaml", line: 1 },
      prune: true,
      id: identify(object, "Namespaced", "default"),
    })),
    dependsOn: [],
    ...(health ? { health } : {}),
  });
  const web: KubeObject = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "default" } };
  const claim: KubeObject = { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data", namespace: "default" } };
  const cluster = (live: (ref: ObjectRef, reads: number) => Record<string, unknown> | undefined): Cluster & { reads: number } => {
    const c = {
      reads: 0,
      serves: () => Promise.resolve(true),
      uid: () => Promise.resolve("cluster-uid"),
      observe: () => Promise.resolve({ seen: new Map(), unlisted: [] }),
      hasNamespace: () => Promise.resolve(true),
      dryRun: () => Promise.resolve(undefined),
      read: (ref: ObjectRef) => Promise.resolve(live(ref, ++c.reads)),
      runHooks: () => Promise.resolve(undefined),
    };
    return c;
  };
  const pending = { ...deploy({ replicas: 2, updatedReplicas: 2 }), metadata: { name: "web", namespace: "default" } };
  const ready = { ...deploy(availableStatus), metadata: { name: "web", namespace: "default" } };
  const unbound = { ...claim, status: { phase: "Pending" } };

  it("reads once and reports units not ready without waiting for them", async () => {
    const state: DesiredState = { path: "c", units: [unit("ManifestFile", "c/x.yaml", [web, claim])] };
    const c = cluster((ref) => (ref.kind === "Deployment" ? pending : unbound));
    const [u] = await checkHealth(state, c, { wait: true, pollMs: 1 });
    assert.equal(c.reads, 2);
    assert.equal(u!.health, "InProgress");
    assert.equal(u!.waited, undefined);
    assert.deepEqual(
      u!.objects.map((o) => [o.object, o.reason, !!o.external]),
      [
        ["Deployment/default/web", "LessAvailable", false],
        ["PersistentVolumeClaim/default/data", "NotBound", true],
      ],
    );
  });

  it("waits for a unit with `wait: true` until its objects are ready, never for a claim's binding", async () => {
    const state: DesiredState = {
      path: "c",
      units: [unit("Kustomization", "flux-system/apps", [web, claim], { wait: true, checks: [], timeoutMs: 10_000 })],
    };
    const c = cluster((ref, n) => (ref.kind === "Deployment" ? (n > 4 ? ready : pending) : unbound));
    const [u] = await checkHealth(state, c, { wait: true, pollMs: 1 });
    assert.equal(u!.waited, "ready");
  });

  it("fails a waited unit after its timeout, naming what is not ready", async () => {
    const state: DesiredState = {
      path: "c",
      units: [unit("Kustomization", "flux-system/apps", [web], { wait: true, checks: [], timeoutMs: 30 })],
    };
    const units = await checkHealth(
      state,
      cluster(() => pending),
      { wait: true, pollMs: 5 },
    );
    assert.equal(units[0]!.waited, "failed");
    assert.match(
      healthFailure(units, state),
      /Kustomization\/flux-system\/apps: health check was not ready within 0s[\s\S]*Deployment\/default\/web: InProgress \(LessAvailable\)/,
    );
  });

  it("a health check naming a HelmRelease waits for that release's objects", async () => {
    const release = unit("HelmRelease", "apps/podinfo", [web]);
    const check = { apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmRelease", name: "podinfo", namespace: "apps" };
    const k = unit("Kustomization", "flux-system/apps", [], { wait: false, checks: [check], timeoutMs: 30 });
    const units = await checkHealth(
      { path: "c", units: [release, k] },
      cluster(() => pending),
      { wait: true, pollMs: 5 },
    );
    assert.equal(units[1]!.waited, "failed");
    assert.deepEqual(
      units[1]!.objects.map((o) => o.object),
      ["Deployment/default/web"],
    );
  });

  it("does not wait when told not to (a heal)", async () => {
    const state: DesiredState = {
      path: "c",
      units: [unit("Kustomization", "flux-system/apps", [web], { wait: true, checks: [], timeoutMs: 60_000 })],
    };
    const [u] = await checkHealth(
      state,
      cluster(() => pending),
      { wait: false },
    );
    assert.equal(u!.waited, undefined);
  });
});
