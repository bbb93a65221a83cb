import * as k8s from "@kubernetes/client-node";
import { liveObjectId, ObjectId, resourceName } from "../desired-state/object-id";
import { kubeConfig } from "../lib/kube-config";
import { ClusterDiscovery } from "../render/cluster-discovery";

/** An object the runner watches for drift: its identity, and the API version Git declares it with. */
export interface WatchedObject {
  readonly apiVersion: string;
  readonly id: ObjectId;
}

interface LiveObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** What identifies the desired content of a live object: everything but metadata and status. Pure. */
export function contentFingerprint(obj: LiveObject): string {
  const rest = Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "metadata" && k !== "status"));
  return JSON.stringify(rest);
}

/**
 * Watches the managed objects through the Kubernetes API (one watch per kind) and reports the ones
 * deleted or changed by someone else, within seconds. The first event of each object sets its
 * baseline; restart the watch after ferry itself changed objects.
 */
export class LiveWatch {
  private readonly aborts: AbortController[] = [];
  private readonly baseline = new Map<string, string>();
  private stopped = false;

  constructor(
    private readonly kubeconfig: string | undefined,
    private readonly context: string | undefined,
    private readonly objects: readonly WatchedObject[],
    private readonly onDrift: (objects: WatchedObject[]) => void,
    private readonly onError: (message: string) => void,
  ) {}

  /** Starts one watch per kind; resolves once every watch is established. */
  async start(): Promise<void> {
    const access = { kubeconfig: this.kubeconfig, context: this.context };
    const discovery = new ClusterDiscovery(access);
    const byKind = new Map<string, WatchedObject[]>();
    for (const o of this.objects) {
      const key = `${o.apiVersion}|${o.id.kind}`;
      byKind.set(key, [...(byKind.get(key) ?? []), o]);
    }
    const watch = new k8s.Watch(kubeConfig(access));
    for (const [key, objs] of byKind) {
      const [apiVersion, kind] = key.split("|") as [string, string];
      const resource = await discovery.kind(apiVersion, kind).catch(() => undefined);
      if (!resource) continue; // a kind the server does not serve (yet): nothing to watch
      const prefix = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const wanted = new Map(objs.map((o) => [resourceName(o.id), o]));
      const abort = await watch.watch(
        `${prefix}/${resource.name}`,
        {},
        (type: string, obj: LiveObject) => this.event(type, obj, wanted),
        (err: unknown) => {
          if (!this.stopped && err) this.onError(`watch of ${kind} ended: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
      this.aborts.push(abort);
    }
  }

  private event(type: string, obj: LiveObject, wanted: Map<string, WatchedObject>): void {
    const live = liveObjectId(obj);
    const managed = live && wanted.get(resourceName(live));
    if (!managed || this.stopped) return;
    const id = resourceName(managed.id);
    const print = contentFingerprint(obj);
    if (type === "ADDED" && !this.baseline.has(id)) {
      this.baseline.set(id, print);
      return;
    }
    if (type === "DELETED") {
      this.baseline.delete(id);
      this.onDrift([managed]);
      return;
    }
    if ((type === "MODIFIED" || type === "ADDED") && this.baseline.get(id) !== print) {
      this.baseline.set(id, print);
      this.onDrift([managed]);
    }
  }

  /** Stops every watch. */
  stop(): void {
    this.stopped = true;
    for (const a of this.aborts) a.abort();
  }
}
