import * as k8s from "@kubernetes/client-node";
import { LiveObject } from "../desired-state/live-drift";
import { KubeObject, ObjectId, objectId, resourceName, splitApiVersion } from "../desired-state/object-id";
import { ClusterAccess, kubeConfig } from "../lib/kube-config";
import { ClusterDiscovery } from "../render/cluster-discovery";
import { backoffDelay } from "./backoff";
import { DriftLedger, LedgerEntry } from "./drift-ledger";

/** An object the live view keeps an eye on: its identity and the desired object ferry applies for it. */
export interface WatchedObject {
  readonly id: ObjectId;
  readonly object: KubeObject;
  /** Ferry leaves this object as it is (a suspended unit's): counted as managed, never judged. */
  readonly ignored?: boolean;
}

/** What the live view knows, for `ferry status` and the metrics. */
export interface LiveViewState {
  /** Every managed kind is listed and watched (no informer erroring or waiting for its first list). */
  readonly synced: boolean;
  /** Objects judged (the baseline: what ferry last applied). */
  readonly objects: number;
  /** Objects that drifted from it now. */
  readonly drifted: number;
}

/** The settings of a live view; defaults in {@link defaultLiveViewOptions}. */
export interface LiveViewOptions {
  readonly access: ClusterAccess;
  /** Objects found drifted from what ferry last applied (outside runs, and when a run ends). */
  readonly onDrift: (ids: ObjectId[]) => void;
  /** The view's state changed (synced, counts). */
  readonly onState?: (state: LiveViewState) => void;
  readonly warn: (message: string) => void;
  /** First delay before an informer that failed is started again; doubles up to `maxRetryDelayMs`. */
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  /**
   * A kind whose managed objects sit in at most this many namespaces is watched in those namespaces
   * only; past it, cluster-wide (one watch instead of many).
   */
  readonly maxNamespacesPerKind: number;
  /** How long after a run ends the view waits for the run's own last events before it judges every object. */
  readonly settleMs: number;
}

/** The live view's defaults, in one place. */
export function defaultLiveViewOptions(
  o: Pick<LiveViewOptions, "access" | "onDrift" | "warn"> & Partial<LiveViewOptions>,
): LiveViewOptions {
  return { retryDelayMs: 1000, maxRetryDelayMs: 60_000, maxNamespacesPerKind: 4, settleMs: 500, ...o };
}

/** How a run that ended changes what the view judges against. */
export interface RunEnd {
  /** What ferry applied: the run's desired objects (a run that succeeded); undefined keeps the old baseline. */
  readonly baseline?: readonly WatchedObject[];
  /**
   * Objects the run was asked to heal and did: one that still differs right after is a server
   * normalisation ferry cannot undo, so its live state is accepted until it changes again.
   */
  readonly healed: readonly ObjectId[];
}

/** The informer of one kind (at one API version), in one namespace or cluster-wide. */
interface InformerSpec {
  readonly key: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly group: string;
  readonly namespaced: boolean;
  /** Undefined: cluster-wide. */
  readonly namespace?: string;
}

interface KindInformer {
  readonly spec: InformerSpec;
  readonly cache: k8s.ListWatch<k8s.KubernetesObject>;
  readonly watch: HeldWatch;
  synced: boolean;
  errored: boolean;
  stopped: boolean;
  failures: number;
  restart?: NodeJS.Timeout;
}

/**
 * A client-node Watch that asks for bookmarks (so a resumed watch rarely finds its resourceVersion
 * expired) and can abort every watch it opened (a ListWatch forgets the one it reopens after a 410
 * at connect time). The server ends each watch after its `--min-request-timeout` (30-60 min by
 * default); the ListWatch then resumes from the last resourceVersion.
 */
class HeldWatch extends k8s.Watch {
  private readonly open = new Set<AbortController>();

  override async watch(
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    // done() may run before super.watch() returns (a refused watch): then there is nothing to hold.
    const held: { controller?: AbortController; ended?: boolean } = {};
    held.controller = await super.watch(path, { ...params, allowWatchBookmarks: true }, callback, (err: unknown) => {
      held.ended = true;
      if (held.controller) this.open.delete(held.controller);
      done(err);
    });
    if (!held.ended) this.open.add(held.controller);
    return held.controller;
  }

  abortAll(): void {
    for (const c of this.open) c.abort();
    this.open.clear();
  }
}

/** client-node's object API with a raw list: the items exactly as the server sends them (no typed models). */
class ListApi extends k8s.KubernetesObjectApi {
  async listPath(path: string): Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> {
    const request = this.configuration.baseServer.makeRequestContext(path, k8s.HttpMethod.GET);
    request.setHeaderParam("Accept", "application/json");
    return (await this.requestPromise(request, "any")) as unknown as k8s.KubernetesListObject<k8s.KubernetesObject>;
  }
}

/**
 * The always-on live view of one stack: an informer (list, then watch, resumed from its
 * resourceVersion, relisted when that expired, restarted with backoff after errors) per managed
 * kind, and a judgement of each managed object against what ferry last applied. It keeps running
 * during runs: what changes then is judged when the run ends, against the run's outcome.
 */
export class LiveView {
  private readonly ledger = new DriftLedger((entry) => this.live(entry));
  /** Objects of the run in progress: their kinds are watched already, judged from its end. */
  private upcoming: readonly WatchedObject[] = [];
  private readonly informers = new Map<string, KindInformer>();
  /** Specs the server does not serve (yet): the view is not synced while there are any. */
  private unserved = new Set<string>();
  private running = false;
  private stopped = false;
  private settleTimer: NodeJS.Timeout | undefined;
  private retryUnserved: NodeJS.Timeout | undefined;
  private unservedFailures = 0;
  private updating: Promise<void> = Promise.resolve();
  private lastState = "";
  private readonly kc: k8s.KubeConfig;
  private readonly api: ListApi;
  private readonly options: LiveViewOptions;

  constructor(options: LiveViewOptions) {
    this.options = options;
    this.kc = kubeConfig(options.access);
    this.api = this.kc.makeApiClient(ListApi);
  }

  /** A run started: events only update the cache until it ends. `objects`, when known, are watched already. */
  runStarted(): void {
    this.running = true;
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
  }

  /** The run in progress built these desired objects: watch their kinds now, so its end is judged on a warm cache. */
  prepare(objects: readonly WatchedObject[]): void {
    this.upcoming = objects;
    this.updateInformers();
  }

  /** A run ended: take its baseline, update the watched kinds, and (once settled) judge every object. */
  runEnded(end: RunEnd): void {
    this.running = false;
    this.upcoming = [];
    if (end.baseline) this.setBaseline(end.baseline);
    this.updateInformers();
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      if (this.running || this.stopped) return;
      this.reportDrift(this.ledger.runEnded(end.healed));
    }, this.options.settleMs);
  }

  /** The managed objects that drifted from what ferry last applied, as far as the view knows. */
  drifted(): ObjectId[] {
    return this.ledger.drifted();
  }

  /** Whether every managed kind is listed and watched: only then does "nothing drifted" mean it. */
  synced(): boolean {
    if (!this.ledger.hasBaseline || this.stopped || this.unserved.size > 0) return false;
    for (const key of this.wantedSpecs().keys()) if (!this.informers.get(key)?.synced) return false;
    return true;
  }

  /** What the view knows now. */
  state(): LiveViewState {
    return { synced: this.synced(), objects: this.ledger.size, drifted: this.ledger.driftedCount };
  }

  /** Stops every informer (suspend, runner stop). */
  stop(): void {
    this.stopped = true;
    if (this.settleTimer) clearTimeout(this.settleTimer);
    if (this.retryUnserved) clearTimeout(this.retryUnserved);
    for (const inf of this.informers.values()) this.stopInformer(inf);
    this.informers.clear();
  }

  /** Waits for the informer updates asked for so far (tests). */
  settled(): Promise<void> {
    return this.updating;
  }

  private setBaseline(objects: readonly WatchedObject[]): void {
    const judged = objects.filter((o) => !o.ignored);
    const plan = planInformers(judged, this.options.maxNamespacesPerKind);
    this.ledger.setBaseline(judged, (id) => plan.of.get(resourceName(id))!);
  }

  /** The informers the baseline and the run in progress need, by key. */
  private wantedSpecs(): Map<string, InformerSpec> {
    const objects = [...this.ledger.objects(), ...this.upcoming.filter((o) => !o.ignored)];
    return planInformers(objects, this.options.maxNamespacesPerKind).specs;
  }

  /** Starts the informers newly needed and stops those no longer needed; unchanged ones keep running. */
  private updateInformers(): void {
    this.updating = this.updating
      .then(() => this.doUpdateInformers())
      .catch((err: unknown) => this.options.warn(`live view: ${String(err)}`));
  }

  private async doUpdateInformers(): Promise<void> {
    if (this.stopped) return;
    const wanted = this.wantedSpecs();
    for (const [key, inf] of this.informers) {
      if (wanted.has(key)) continue;
      this.stopInformer(inf);
      this.informers.delete(key);
    }
    const discovery = new ClusterDiscovery(this.options.access);
    const unserved = new Set<string>();
    await Promise.all(
      [...wanted.values()]
        .filter((spec) => !this.informers.has(spec.key))
        .map(async (spec) => {
          const served = await discovery.kind(spec.apiVersion, spec.kind).catch(() => undefined);
          if (!served || this.stopped) return void unserved.add(spec.key);
          const { group, version } = splitApiVersion(spec.apiVersion);
          const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
          const path = spec.namespace ? `${prefix}/namespaces/${spec.namespace}/${served.name}` : `${prefix}/${served.name}`;
          this.startInformer({ ...spec, namespaced: served.namespaced }, path);
        }),
    );
    this.unserved = unserved;
    if (this.retryUnserved) clearTimeout(this.retryUnserved);
    this.retryUnserved = undefined;
    if (unserved.size > 0 && !this.stopped) {
      // A kind the server does not serve yet (its CRD comes with a later run): ask again later.
      const delay = backoffDelay(++this.unservedFailures, this.options.retryDelayMs, this.options.maxRetryDelayMs);
      this.retryUnserved = setTimeout(() => this.updateInformers(), delay);
    } else this.unservedFailures = 0;
    this.emitState();
  }

  private startInformer(spec: InformerSpec, path: string): void {
    const watch = new HeldWatch(this.kc);
    const cache = new k8s.ListWatch<k8s.KubernetesObject>(path, watch, () => this.api.listPath(path), false);
    const inf: KindInformer = { spec, cache, watch, synced: false, errored: false, stopped: false, failures: 0 };
    const onObject = (obj: k8s.KubernetesObject): void => {
      // The cache keeps each object; the managed-fields bookkeeping is most of its size and never judged.
      if (obj.metadata) delete obj.metadata.managedFields;
      this.observed(inf, obj);
    };
    cache.on(k8s.ADD, onObject);
    cache.on(k8s.UPDATE, onObject);
    cache.on(k8s.DELETE, (obj) => this.observed(inf, obj));
    cache.on(k8s.ERROR, (err: unknown) => {
      if (inf.stopped) return;
      inf.errored = true;
      const wasSynced = inf.synced;
      inf.synced = false;
      if (wasSynced || inf.failures === 0)
        this.options.warn(`live view: the watch of ${describe(spec)} failed (${errorText(err)}); starting it again`);
      this.emitState();
      this.scheduleRestart(inf);
    });
    this.informers.set(spec.key, inf);
    void this.begin(inf);
  }

  private async begin(inf: KindInformer): Promise<void> {
    inf.errored = false;
    try {
      await inf.cache.start();
    } catch (err) {
      if (inf.stopped) return;
      inf.errored = true;
      this.options.warn(`live view: cannot watch ${describe(inf.spec)} (${errorText(err)}); trying again`);
      return this.scheduleRestart(inf);
    }
    if (inf.stopped || inf.errored) return;
    inf.failures = 0;
    inf.synced = true;
    this.emitState();
    if (this.running || !this.ledger.hasBaseline) return;
    // Freshly listed: judge its objects (a kind new to the view, or one back after an error).
    this.reportDrift(this.ledger.listed(inf.spec.key));
  }

  private scheduleRestart(inf: KindInformer): void {
    if (inf.restart || inf.stopped || this.stopped) return;
    const delay = backoffDelay(++inf.failures, this.options.retryDelayMs, this.options.maxRetryDelayMs);
    inf.restart = setTimeout(() => {
      inf.restart = undefined;
      if (!inf.stopped) void this.begin(inf);
    }, delay);
  }

  private stopInformer(inf: KindInformer): void {
    inf.stopped = true;
    inf.synced = false;
    if (inf.restart) clearTimeout(inf.restart);
    void inf.cache.stop();
    inf.watch.abortAll();
  }

  /** An event of a watched kind: outside runs, a managed object is judged now. */
  private observed(inf: KindInformer, obj: k8s.KubernetesObject): void {
    if (inf.stopped || this.running || !inf.synced) return;
    const name = obj.metadata?.name;
    if (!name) return;
    const id = objectId(
      { group: inf.spec.group, kind: inf.spec.kind, name, namespace: obj.metadata?.namespace },
      inf.spec.namespaced ? "Namespaced" : "Cluster",
    );
    const drifted = this.ledger.observe(resourceName(id), inf.spec.key);
    this.reportDrift(drifted ? [drifted] : []);
  }

  /** The live object of a managed object, or undefined (missing); null when its kind is not synced. */
  private live(entry: LedgerEntry): LiveObject | undefined | null {
    const inf = this.informers.get(entry.informer);
    if (!inf?.synced) return null;
    return inf.cache.get(entry.id.name, entry.id.namespace) as LiveObject | undefined;
  }

  private reportDrift(ids: ObjectId[]): void {
    this.emitState();
    if (ids.length > 0) this.options.onDrift(ids);
  }

  private emitState(): void {
    if (!this.options.onState || this.stopped) return;
    const state = this.state();
    const text = JSON.stringify(state);
    if (text === this.lastState) return;
    this.lastState = text;
    this.options.onState(state);
  }
}

/**
 * Which informers a set of managed objects needs: one per API version and kind, per namespace when
 * the kind's objects sit in a few namespaces (the cache and the list then hold only what ferry
 * manages, and namespace-bound credentials suffice), cluster-wide past that or for cluster-scoped
 * kinds. Pure.
 */
export function planInformers(
  objects: readonly WatchedObject[],
  maxNamespacesPerKind: number,
): { specs: Map<string, InformerSpec>; of: Map<string, string> } {
  const byKind = new Map<string, WatchedObject[]>();
  for (const o of objects) {
    const k = `${o.object.apiVersion}|${o.id.kind}`;
    byKind.set(k, [...(byKind.get(k) ?? []), o]);
  }
  const specs = new Map<string, InformerSpec>();
  const of = new Map<string, string>();
  for (const [k, objs] of byKind) {
    const [apiVersion, kind] = k.split("|") as [string, string];
    const group = splitApiVersion(apiVersion).group;
    const namespaced = objs.every((o) => o.id.namespace !== undefined);
    const namespaces = new Set(objs.map((o) => o.id.namespace ?? ""));
    const perNamespace = namespaced && namespaces.size <= maxNamespacesPerKind;
    for (const o of objs) {
      const namespace = perNamespace ? o.id.namespace : undefined;
      const key = `${apiVersion}|${kind}|${namespace ?? "*"}`;
      specs.set(key, { key, apiVersion, kind, group, namespaced, namespace });
      of.set(resourceName(o.id), key);
    }
  }
  return { specs, of };
}

function describe(spec: InformerSpec): string {
  return `${spec.kind} (${spec.apiVersion}) ${spec.namespace ? `in namespace ${spec.namespace}` : "cluster-wide"}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
