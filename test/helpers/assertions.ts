import assert from "node:assert/strict";
import { ManifestError, SourceLocation } from "../../src/desired-state/manifest-error";

/** Asserts that fn throws a ManifestError at `location` whose message matches. */
export function throwsManifestError(fn: () => unknown, location: SourceLocation, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    assert.deepEqual(err.location, location);
    assert.match(err.message, message);
    return true;
  });
}
