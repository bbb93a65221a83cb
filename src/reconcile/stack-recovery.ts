import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isProcessAlive } from "../lib/process-alive";

/** A lock file of Pulumi's file backend. */
interface LockContent {
  readonly pid?: number;
  readonly hostname?: string;
  readonly timestamp?: string;
}

/** Whether a lock was left by a process of this machine that no longer exists. Pure given `isAlive`. */
export function isStaleLock(lock: LockContent, hostname: string, isAlive: (pid: number) => boolean): boolean {
  return lock.hostname === hostname && typeof lock.pid === "number" && !isAlive(lock.pid);
}

/**
 * Removes locks of a file-backend stack left by a crashed ferry (its pulumi process is gone): the
 * lock's host is this machine and its pid is dead. Locks of live processes are kept (they are waited
 * for); other backends manage their own locks. Returns the removed lock files.
 */
export function clearStaleLocks(backendUrl: string, project: string, stack: string): string[] {
  if (!backendUrl.startsWith("file://")) return [];
  const dir = path.join(backendUrl.slice("file://".length), ".pulumi", "locks", "organization", project, stack);
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".json"))) {
    const file = path.join(dir, f);
    let lock: LockContent;
    try {
      lock = JSON.parse(fs.readFileSync(file, "utf8")) as LockContent;
    } catch {
      continue;
    }
    if (isStaleLock(lock, os.hostname(), isProcessAlive)) {
      fs.rmSync(file, { force: true });
      fs.rmSync(`${file}.attrs`, { force: true }); // the file blob store's metadata beside it
      removed.push(file);
    }
  }
  return removed;
}

function parses(file: string): boolean {
  try {
    JSON.parse(fs.readFileSync(file, "utf8"));
    return true;
  } catch {
    return false;
  }
}

/**
 * Repairs a file-backend checkpoint that a crash left empty or truncated (kill -9 while Pulumi was
 * writing it: "failed to load checkpoint: EOF"), from the backup Pulumi keeps beside it or, failing
 * that, the newest checkpoint in the stack's history. The broken file is kept as `.corrupt-<time>`.
 * Objects the lost state knew about are taken over again by the next update (server-side apply
 * upserts), so nothing is duplicated. A metadata sidecar (`.attrs`) the crash left unreadable next to
 * a good checkpoint is set aside too. Returns the file restored from, or the sidecar set aside.
 */
export function repairCheckpoint(backendUrl: string, project: string, stack: string): string | undefined {
  if (!backendUrl.startsWith("file://")) return undefined;
  const root = path.join(backendUrl.slice("file://".length), ".pulumi");
  const file = path.join(root, "stacks", project, `${stack}.json`);
  const attrs = `${file}.attrs`;
  if (fs.existsSync(file) && parses(file)) {
    // The blob store rewrites the sidecar in place (truncate, write) before it renames a new
    // checkpoint over the old one: a crash in between leaves an empty sidecar and Pulumi fails with
    // "EOF". Without a sidecar the store uses its defaults.
    if (!fs.existsSync(attrs) || parses(attrs)) return undefined;
    fs.renameSync(attrs, `${attrs}.corrupt-${Date.now()}`);
    return attrs;
  }
  if (!fs.existsSync(file)) return undefined;
  const historyDir = path.join(root, "history", project, stack);
  const history = fs.existsSync(historyDir)
    ? fs
        .readdirSync(historyDir)
        .filter((f) => f.endsWith(".checkpoint.json"))
        .sort()
        .reverse()
        .map((f) => path.join(historyDir, f))
    : [];
  const source = [`${file}.bak`, ...history].find((f) => fs.existsSync(f) && parses(f));
  if (!source) return undefined;
  fs.renameSync(file, `${file}.corrupt-${Date.now()}`);
  fs.copyFileSync(source, file);
  fs.rmSync(attrs, { force: true });
  if (fs.existsSync(`${source}.attrs`) && parses(`${source}.attrs`)) fs.copyFileSync(`${source}.attrs`, attrs);
  return source;
}
