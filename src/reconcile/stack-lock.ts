import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as lockfile from "proper-lockfile";
import { LockedError, StackLock } from "./ports";

/** How often a waiting run tries the lock again. */
const RETRY_MS = 250;
/** A lock whose holder stopped refreshing it this long ago (a crashed ferry) is taken over. */
const STALE_MS = 15_000;

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

/**
 * The stack lock of one machine's ferry state folder (`<stateDir>/locks/<stack>`), on
 * proper-lockfile: an atomic `mkdir`, kept fresh while held, taken over when its holder died. It
 * guards what the processes of this machine share (the stack's checkout, workspace and program
 * input); the Pulumi backend's own lock still guards the state across machines.
 */
export function fileStackLock(stateDir: string, stack: string): StackLock {
  const dir = path.join(stateDir, "locks");
  const target = path.join(dir, stack);
  const holderFile = `${target}.holder.json`;
  const holder = (): string => {
    try {
      const h = JSON.parse(fs.readFileSync(holderFile, "utf8")) as Holder;
      return `pid ${h.pid} on ${h.host}, since ${h.since}`;
    } catch {
      return "another ferry process";
    }
  };
  return {
    async acquire({ waitMs, onWait }) {
      fs.mkdirSync(dir, { recursive: true });
      const deadline = Date.now() + waitMs;
      let told = false;
      for (;;) {
        try {
          const release = await lockfile.lock(target, {
            realpath: false,
            stale: STALE_MS,
            update: STALE_MS / 3,
            // Losing the lock to a takeover means this process stalled for longer than STALE_MS;
            // the Pulumi backend's lock still protects the state, so the run goes on.
            onCompromised: () => undefined,
          });
          const me: Holder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
          fs.writeFileSync(holderFile, JSON.stringify(me));
          return async () => {
            fs.rmSync(holderFile, { force: true });
            await release().catch(() => undefined);
          };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ELOCKED") throw err;
        }
        if (Date.now() >= deadline) {
          throw new LockedError(
            `stack ${stack} is being reconciled by another run (${holder()}); try again when it is done` +
              (waitMs > 0 ? ` (waited ${Math.round(waitMs / 1000)}s)` : ""),
          );
        }
        if (!told) {
          onWait?.(holder());
          told = true;
        }
        await new Promise((r) => setTimeout(r, Math.min(RETRY_MS, Math.max(0, deadline - Date.now()))));
      }
    },
  };
}
