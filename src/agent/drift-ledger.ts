import { liveDrift, LiveObject, managedFingerprint } from "../desired-state/live-drift";
import { KubeObject, ObjectId, resourceName } from "../desired-state/object-id";

/** One managed object as the ledger judges it. */
export interface LedgerEntry {
  readonly id: ObjectId;
  readonly object: KubeObject;
  /** The key of the informer that holds its live object. */
  readonly informer: string;
}

interface Entry extends LedgerEntry {
  /** JSON of the desired object: a new desired object forgets what was accepted for the old one. */
  readonly json: string;
  /** The live fingerprint accepted as applied (a normalisation ferry did not foresee). */
  accepted?: string;
  /** The fingerprint last reported as drift: the same live state is reported once. */
  reported?: string;
}

/**
 * The live object of an entry: the object, undefined when it does not exist, or null when its
 * informer is not synced (nothing can be said).
 */
export type LiveLookup = (entry: LedgerEntry) => LiveObject | undefined | null;

/**
 * What the live view judges against (the baseline: what ferry last applied) and what it reported:
 * each drifted live state is reported once; an object a run healed that still differs right after
 * is a server normalisation ferry cannot undo, accepted until the object changes again (or matches).
 * No I/O: live objects come from `lookup`.
 */
export class DriftLedger {
  private entries = new Map<string, Entry>();
  private drift = new Set<string>();
  private known = false;

  constructor(private readonly lookup: LiveLookup) {}

  /** Whether a baseline was ever set. */
  get hasBaseline(): boolean {
    return this.known;
  }

  /** How many objects are judged. */
  get size(): number {
    return this.entries.size;
  }

  /** How many objects were drifted when last judged. */
  get driftedCount(): number {
    return this.drift.size;
  }

  /** The judged objects. */
  objects(): LedgerEntry[] {
    return [...this.entries.values()];
  }

  /** Takes a new baseline; what was accepted or reported for an unchanged desired object is kept. */
  setBaseline(objects: readonly Omit<LedgerEntry, "informer">[], informerOf: (id: ObjectId) => string): void {
    const next = new Map<string, Entry>();
    for (const o of objects) {
      const key = resourceName(o.id);
      const json = JSON.stringify(o.object);
      const old = this.entries.get(key);
      const informer = informerOf(o.id);
      next.set(key, old && old.json === json ? { ...old, informer } : { id: o.id, object: o.object, json, informer });
    }
    this.entries = next;
    this.known = true;
    for (const key of this.drift) if (!next.has(key)) this.drift.delete(key);
  }

  /** The objects drifted now. */
  drifted(): ObjectId[] {
    return [...this.entries.values()].filter((e) => this.judge(e)).map((e) => e.id);
  }

  /** An object (by key) changed outside a run: its id when that is a drift not reported yet. */
  observe(key: string, informer: string): ObjectId | undefined {
    const entry = this.entries.get(key);
    return entry && entry.informer === informer ? this.report(entry) : undefined;
  }

  /** An informer (re)listed: the drifts among its objects not reported yet. */
  listed(informer: string): ObjectId[] {
    return [...this.entries.values()].filter((e) => e.informer === informer).flatMap((e) => this.report(e) ?? []);
  }

  /**
   * A run ended (and its events settled): the drifts not reported yet. `healed` objects that still
   * differ (and exist) are accepted as they are.
   */
  runEnded(healed: readonly ObjectId[]): ObjectId[] {
    const healedKeys = new Set(healed.map(resourceName));
    const out: ObjectId[] = [];
    for (const [key, entry] of this.entries) {
      if (!healedKeys.has(key)) {
        const id = this.report(entry);
        if (id) out.push(id);
        continue;
      }
      entry.reported = undefined;
      if (!this.judge(entry)) continue;
      const live = this.lookup(entry);
      if (live) {
        entry.accepted = managedFingerprint(entry.object, live);
        this.drift.delete(key);
      } else {
        const id = this.report(entry);
        if (id) out.push(id);
      }
    }
    return out;
  }

  private report(entry: Entry): ObjectId | undefined {
    if (!this.judge(entry)) return undefined;
    const print = managedFingerprint(entry.object, this.lookup(entry) ?? undefined);
    if (entry.reported === print) return undefined;
    entry.reported = print;
    return entry.id;
  }

  /** Whether an object drifted now (false when its informer is not synced). */
  private judge(entry: Entry): boolean {
    const drifted = this.judgeNow(entry);
    const key = resourceName(entry.id);
    if (drifted) this.drift.add(key);
    else this.drift.delete(key);
    return drifted;
  }

  private judgeNow(entry: Entry): boolean {
    const live = this.lookup(entry);
    if (live === null) return false;
    if (!liveDrift(entry.object, live)) {
      entry.accepted = undefined; // it matched again: what was accepted no longer stands
      entry.reported = undefined;
      return false;
    }
    return entry.accepted === undefined || entry.accepted !== managedFingerprint(entry.object, live);
  }
}
