import * as path from "node:path";
import { acquireFileLock, FileLockBusyError } from "../lib/file-lock";
import { LockedError, StackLock } from "./ports";

/** A lock whose holder stopped refreshing it this long ago (a crashed ferry) is taken over. */
const STALE_MS = 15_000;

/**
 * The stack lock of one machine's ferry state folder (`<stateDir>/locks/<stack>.lock`): a file lock
 * (proper-lockfile) kept fresh while held and taken over when its holder died. It guards what the
 * processes of this machine share — the stack's checkout, workspace and program input — for the
 * whole run; the Pulumi backend's own lock still guards the state across machines.
 */
export function fileStackLock(stateDir: string, stack: string): StackLock {
  const lockPath = path.join(stateDir, "locks", `${stack}.lock`);
  return {
    async acquire({ waitMs, onWait }) {
      try {
        return await acquireFileLock(lockPath, {
          what: `reconciling stack ${stack}`,
          waitMs,
          pollMs: 250,
          staleMs: STALE_MS,
          progress: (line) => onWait?.(line),
        });
      } catch (err) {
        if (!(err instanceof FileLockBusyError)) throw err;
        throw new LockedError(`stack ${stack} is being reconciled by another run: ${err.message}`);
      }
    },
  };
}
