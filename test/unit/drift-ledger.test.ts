import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DriftLedger } from "../../src/agent/drift-ledger";
import { LiveObject } from "../../src/desired-state/live-drift";
import { KubeObject, objectId, resourceName } from "../../src/desired-state/object-id";

const id = objectId({ group: "", kind: "ConfigMap", namespace: "a", name: "settings" }, "Namespaced");
const KEY = resourceName(id);
const INFORMER = "v1|ConfigMap|a";
const desired: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "a" }, data: { value: "v1" } };
const live = (value: string, rv = "1"): LiveObject => ({
  metadata: { name: "settings", namespace: "a", resourceVersion: rv },
  data: { value },
});

/** A ledger over one ConfigMap whose live state the test sets (null: its informer is not synced). */
function ledger(initial: LiveObject | undefined | null) {
  const state: { live: LiveObject | undefined | null } = { live: initial };
  const l = new DriftLedger(() => state.live);
  l.setBaseline([{ id, object: desired }], () => INFORMER);
  return { l, state };
}

describe("drift ledger", () => {
  it("reports a drift once per live state, and again when it changes", () => {
    const { l, state } = ledger(live("v1"));
    assert.equal(l.observe(KEY, INFORMER), undefined);
    state.live = live("edited", "2");
    assert.deepEqual(l.observe(KEY, INFORMER), id);
    // A status-only update (new resourceVersion, same fields): not reported again.
    state.live = live("edited", "3");
    assert.equal(l.observe(KEY, INFORMER), undefined);
    assert.deepEqual(l.drifted(), [id]);
    assert.equal(l.driftedCount, 1);
    state.live = undefined;
    assert.deepEqual(l.observe(KEY, INFORMER), id);
  });

  it("reports at the end of a run what changed during it", () => {
    const { l, state } = ledger(live("v1"));
    state.live = live("edited during the run", "2");
    assert.deepEqual(l.runEnded([]), [id]);
    assert.deepEqual(l.runEnded([]), [], "reported once");
  });

  it("accepts what a heal could not undo, until the object changes again", () => {
    const { l, state } = ledger(live("normalised by the server"));
    assert.deepEqual(l.runEnded([]), [id]);
    // The heal ran and the server normalised the value again: accepted, no loop.
    assert.deepEqual(l.runEnded([id]), []);
    assert.deepEqual(l.drifted(), []);
    assert.equal(l.driftedCount, 0);
    state.live = live("normalised by the server", "5");
    assert.equal(l.observe(KEY, INFORMER), undefined);
    state.live = live("edited by hand", "6");
    assert.deepEqual(l.observe(KEY, INFORMER), id);
  });

  it("never accepts a deletion", () => {
    const { l } = ledger(undefined);
    assert.deepEqual(l.runEnded([id]), [id]);
    assert.deepEqual(l.drifted(), [id]);
  });

  it("forgets what it accepted once the object matches again", () => {
    const { l, state } = ledger(live("odd"));
    l.runEnded([id]);
    state.live = live("v1", "2");
    assert.deepEqual(l.drifted(), []);
    state.live = live("odd", "3");
    assert.deepEqual(l.drifted(), [id]);
  });

  it("judges nothing while the informer is not synced", () => {
    const { l, state } = ledger(null);
    assert.deepEqual(l.drifted(), []);
    state.live = live("edited");
    assert.deepEqual(l.listed(INFORMER), [id]);
    assert.deepEqual(l.listed("v1|Secret|a"), []);
  });

  it("keeps what was accepted across a baseline with the same desired object, not a changed one", () => {
    const { l } = ledger(live("odd"));
    l.runEnded([id]);
    l.setBaseline([{ id, object: desired }], () => INFORMER);
    assert.deepEqual(l.drifted(), []);
    l.setBaseline([{ id, object: { ...desired, data: { value: "v2" } } }], () => INFORMER);
    assert.deepEqual(l.drifted(), [id]);
  });
});
