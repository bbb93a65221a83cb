import * as client from "prom-client";

/** The runner's Prometheus metrics, in their own registry. */
export class RunnerMetrics {
  readonly registry = new client.Registry();
  readonly reconcileDuration = new client.Histogram({
    name: "ferry_reconcile_duration_seconds",
    help: "Duration of reconciles, by stack, trigger and result",
    labelNames: ["stack", "trigger", "result"],
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });
  readonly driftDetected = new client.Counter({
    name: "ferry_drift_detected_total",
    help: "Drift found on a stack (live change or a detect-mode preview with changes)",
    labelNames: ["stack", "source"],
    registers: [this.registry],
  });
  readonly objectsManaged = new client.Gauge({
    name: "ferry_objects_managed",
    help: "Kubernetes objects a stack manages",
    labelNames: ["stack"],
    registers: [this.registry],
  });
  readonly lastSuccess = new client.Gauge({
    name: "ferry_last_success_timestamp_seconds",
    help: "When a stack last reconciled successfully (Unix time)",
    labelNames: ["stack"],
    registers: [this.registry],
  });
  readonly driftState = new client.Gauge({
    name: "ferry_drift",
    help: "1 while a stack's cluster differs from Git (detect mode), else 0",
    labelNames: ["stack"],
    registers: [this.registry],
  });
  readonly liveViewSynced = new client.Gauge({
    name: "ferry_live_view_synced",
    help: "1 while a stack's live view lists and watches every managed kind, else 0",
    labelNames: ["stack"],
    registers: [this.registry],
  });
}
