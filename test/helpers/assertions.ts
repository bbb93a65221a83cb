import assert from "node:assert/strict";
import { DesiredState } from "../../src/desired-state/desired-state";
import { DesiredStateError, ManifestError, SourceLocation } from "../../src/desired-state/manifest-error";

/** Asserts that fn throws a ManifestError at `location` whose message matches. */
export function throwsManifestError(fn: () => unknown, location: SourceLocation, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    assert.deepEqual(err.location, location);
    assert.match(err.message, message);
    return true;
  });
}

/**
 * A build whose failed units fail it as a whole (the error a build with no unit left throws): for
 * asserting on one unit's problems when the folder has other units that build.
 */
export async function strictBuild(build: Promise<DesiredState>): Promise<DesiredState> {
  const state = await build;
  if (state.failed?.length) throw new DesiredStateError(state.failed.flatMap((f) => f.errors));
  return state;
}
