import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as lockfile from "proper-lockfile";
import { isProcessAlive } from "./process-alive";

/** Options for {@link withFileLock}; see {@link defaultFileLockOptions}. */
export interface FileLockOptions {
  /** The work the lock guards, as a verb phrase for progress and errors, e.g. `building pulumi 3.184.0`. */
  readonly what: string;
  /** Receives one line when the lock is busy and this process starts to wait. @default none */
  readonly progress: (line: string) => void;
  /** How long to wait for the holder before giving up. @default 30 minutes */
  readonly waitMs: number;
  /** Pause between two tries while waiting. @default 1 s */
  readonly pollMs: number;
  /**
   * A lock not refreshed for this long is stale (its holder died) and is taken over. The holder refreshes
   * the lock's mtime every `staleMs / 2`. proper-lockfile does not go below 2 s. @default 30 s
   */
  readonly staleMs: number;
}

/** The defaults of {@link FileLockOptions}. */
export function defaultFileLockOptions(overrides: Partial<FileLockOptions> & Pick<FileLockOptions, "what">): FileLockOptions {
  return { progress: () => undefined, waitMs: 30 * 60_000, pollMs: 1_000, staleMs: 30_000, ...overrides };
}

/** Who holds a lock, written beside it: named in the progress line of those who wait, and a dead holder's lock is broken at once. */
interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  readonly since: string;
}

/** A lock that is still held by another process once the wait is over. */
export class FileLockBusyError extends Error {
  constructor(
    message: string,
    /** Who holds it (`pid 123 on host (holding it since ...)`), for messages. */
    readonly holder: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "FileLockBusyError";
  }
}

/**
 * Takes the lock directory `lockPath` (proper-lockfile: an atomic mkdir whose mtime the holder keeps
 * fresh) and resolves with its release. A busy lock is waited for up to `waitMs` (0: not at all),
 * with one progress line naming the holder; a stale one is taken over: at once when its holder was a
 * process of this host that is gone (crashed, killed, a zombie), else when its mtime is `staleMs` old.
 * Throws {@link FileLockBusyError} when it is still held. Works between processes and within one.
 */
export async function acquireFileLock(
  lockPath: string,
  options: Partial<FileLockOptions> & Pick<FileLockOptions, "what">,
): Promise<() => Promise<void>> {
  const o = defaultFileLockOptions(options);
  const target = path.resolve(lockPath);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const base: lockfile.LockOptions = {
    stale: o.staleMs,
    realpath: false,
    lockfilePath: target,
    // The default throws from a timer and kills the process; the work in progress is better finished.
    onCompromised: (err) => o.progress(`lost the lock ${target} while ${o.what} (${err.message}): another process may do the same work`),
  };
  // A holder whose process is gone (killed, crashed, even a zombie not yet reaped) is broken at once;
  // the lock's mtime going stale (`staleMs`) is the fallback for holders on another host.
  const attempt = async (): Promise<(() => Promise<void>) | undefined> => {
    try {
      return await lockfile.lock(target, base);
    } catch (err) {
      if (!isLocked(err)) throw new Error(`cannot lock ${target} for ${o.what}: ${messageOf(err)}`, { cause: err });
      if (breakDeadHolder(target)) return attempt();
      return undefined;
    }
  };
  let release = await attempt();
  if (!release) {
    const holder = describeHolder(target);
    if (o.waitMs <= 0) throw new FileLockBusyError(`${holder} is ${o.what}`, holder);
    o.progress(`waiting for ${holder} to finish ${o.what} (lock ${target})`);
    const deadline = Date.now() + o.waitMs;
    while (!release) {
      if (Date.now() >= deadline) {
        const last = describeHolder(target);
        throw new FileLockBusyError(
          `gave up after ${Math.round(o.waitMs / 1000)} s waiting for ${last} to finish ${o.what}: ` +
            `if no such process is running any more, remove ${target} and try again`,
          last,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(o.pollMs, Math.max(0, deadline - Date.now()))));
      release = await attempt();
    }
  }
  const holderFile = `${target}.holder`;
  writeHolder(holderFile);
  const held = release;
  return async () => {
    removeOwnHolder(holderFile);
    // ERELEASED: the lock was compromised (reported above) and is no longer ours to remove.
    await held().catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== "ERELEASED") throw err;
    });
  };
}

/** Runs `fn` while holding the lock directory `lockPath` (see {@link acquireFileLock}). */
export async function withFileLock<T>(
  lockPath: string,
  options: Partial<FileLockOptions> & Pick<FileLockOptions, "what">,
  fn: () => Promise<T>,
): Promise<T> {
  const release = await acquireFileLock(lockPath, options);
  try {
    return await fn();
  } finally {
    await release();
  }
}

function isLocked(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === "ELOCKED";
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function writeHolder(file: string): void {
  const holder: LockHolder = { pid: process.pid, hostname: os.hostname(), since: new Date().toISOString() };
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(holder) + "\n");
    fs.renameSync(tmp, file);
  } catch {
    // Only informative: a waiter then says "another process".
  }
}

function removeOwnHolder(file: string): void {
  const holder = readHolder(file);
  if (holder && holder.pid === process.pid && holder.hostname === os.hostname()) fs.rmSync(file, { force: true });
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<LockHolder>;
    return typeof h.pid === "number" && typeof h.hostname === "string" && typeof h.since === "string"
      ? { pid: h.pid, hostname: h.hostname, since: h.since }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes a lock whose recorded holder is a process of this host that no longer runs (dead, or a
 * zombie). Of several processes that find it at once, only the one that moves the dead holder's
 * record aside breaks the lock; one that finds a live holder's record instead puts it back.
 */
function breakDeadHolder(target: string): boolean {
  const holderFile = `${target}.holder`;
  const dead = readHolder(holderFile);
  if (!dead || dead.hostname !== os.hostname() || isProcessAlive(dead.pid)) return false;
  const claim = `${holderFile}.${process.pid}.breaking`;
  try {
    fs.renameSync(holderFile, claim);
  } catch {
    return false; // another process is breaking it
  }
  const claimed = readHolder(claim);
  if (!claimed || claimed.pid !== dead.pid || claimed.since !== dead.since) {
    try {
      fs.renameSync(claim, holderFile);
    } catch {
      // a newer holder wrote its record meanwhile
    }
    return false;
  }
  fs.rmSync(target, { recursive: true, force: true });
  fs.rmSync(claim, { force: true });
  return true;
}

function describeHolder(lockPath: string): string {
  const h = readHolder(`${lockPath}.holder`);
  if (!h) return "another process";
  const self = h.pid === process.pid && h.hostname === os.hostname() ? ", this process" : "";
  return `pid ${h.pid} on ${h.hostname} (holding it since ${h.since}${self})`;
}
