import * as k8s from "@kubernetes/client-node";

/** An object the runner watches for drift. */
export interface WatchedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** ferry's resource name of the object (what a targeted heal names). */
  readonly resourceName: string;
}

interface LiveObject {
  metadata?: { name?: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** Resolves a kind to its API resource (plural name, scope) through discovery. */
class ResourceResolver extends k8s.KubernetesObjectApi {
  resolve(apiVersion: string, kind: string): Promise<k8s.V1APIResource | undefined> {
    return this.resource(apiVersion, kind);
  }
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
    const kc = new k8s.KubeConfig();
    if (this.kubeconfig) kc.loadFromFile(this.kubeconfig);
    else kc.loadFromDefault();
    if (this.context) kc.setCurrentContext(this.context);
    const api = kc.makeApiClient(ResourceResolver);
    const byKind = new Map<string, WatchedObject[]>();
    for (const o of this.objects) byKind.set(`${o.apiVersion}|${o.kind}`, [...(byKind.get(`${o.apiVersion}|${o.kind}`) ?? []), o]);
    const watch = new k8s.Watch(kc);
    for (const [key, objs] of byKind) {
      const [apiVersion, kind] = key.split("|") as [string, string];
      const resource = await api.resolve(apiVersion, kind).catch(() => undefined);
      if (!resource) continue; // a kind the server does not serve (yet): nothing to watch
      const prefix = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const wanted = new Map(objs.map((o) => [`${resource.namespaced ? o.namespace || "default" : ""}/${o.name}`, o]));
      const abort = await watch.watch(
        `${prefix}/${resource.name}`,
        {},
        (type: string, obj: LiveObject) => this.event(type, obj, resource.namespaced, wanted),
        (err: unknown) => {
          if (!this.stopped && err) this.onError(`watch of ${kind} ended: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
      this.aborts.push(abort);
    }
  }

  private event(type: string, obj: LiveObject, namespaced: boolean, wanted: Map<string, WatchedObject>): void {
    const key = `${namespaced ? (obj.metadata?.namespace ?? "") : ""}/${obj.metadata?.name ?? ""}`;
    const managed = wanted.get(key);
    if (!managed || this.stopped) return;
    const id = managed.resourceName;
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
