import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { runChecked } from "../lib/exec";
import { isKubernetesObject } from "./change-summary";

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

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
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
    if (isStaleLock(lock, os.hostname(), processAlive)) {
      fs.rmSync(file, { force: true });
      fs.rmSync(`${file}.attrs`, { force: true }); // the file blob store's metadata beside it
      removed.push(file);
    }
  }
  return removed;
}

interface PendingOperation {
  readonly type: string;
  readonly resource: { urn: string; type: string; inputs?: { metadata?: { name?: string; namespace?: string } } };
}

/** The provider ID of a Kubernetes object: `namespace/name`, or `name` when cluster-scoped. Pure. */
export function kubernetesId(inputs: PendingOperation["resource"]["inputs"]): string | undefined {
  const name = inputs?.metadata?.name;
  if (!name) return undefined;
  return inputs?.metadata?.namespace ? `${inputs.metadata.namespace}/${name}` : name;
}

/**
 * Resolves operations left pending by an interrupted update. A pending create may or may not have
 * reached the cluster: it is imported by its ID, and the refresh keeps it if the object exists and
 * drops it if not, so nothing is duplicated or lost. Returns how many were resolved.
 */
export async function resolvePendingOperations(stack: Stack): Promise<number> {
  const exported = await stack.exportStack();
  const pending = ((exported.deployment as { pending_operations?: PendingOperation[] }).pending_operations ?? []).filter(
    (p) => p.type === "creating" && isKubernetesObject(p.resource.type),
  );
  if (pending.length === 0) return 0;
  const args = ["refresh", "--yes", "--skip-preview", "--stack", stack.name, "--non-interactive"];
  for (const p of pending) {
    const id = kubernetesId(p.resource.inputs);
    if (id) args.push("--import-pending-creates", p.resource.urn, "--import-pending-creates", id);
  }
  const ws = stack.workspace as LocalWorkspace;
  await runChecked(ws.pulumiCommand.command, args, {
    cwd: ws.workDir,
    env: { ...process.env, ...ws.envVars, PATH: `${path.dirname(ws.pulumiCommand.command)}${path.delimiter}${process.env.PATH ?? ""}` },
  });
  return pending.length;
}
