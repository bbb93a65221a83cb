import * as path from "node:path";
import * as yaml from "js-yaml";
import { isMapping } from "./yaml-data";

/**
 * The ServiceAccount a unit is applied as (Flux `spec.serviceAccountName`, in the unit's own
 * namespace): the cluster's RBAC decides what the unit may do.
 */
export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

/** The user name Kubernetes gives a ServiceAccount, what impersonation asks for: `system:serviceaccount:<ns>:<name>`. */
export function impersonatedUser(account: ServiceAccountRef): string {
  return `system:serviceaccount:${account.namespace}:${account.name}`;
}

/** The ServiceAccount of `spec.serviceAccountName` in the unit's namespace; undefined when the field is unset. */
export function serviceAccountOf(name: string | undefined, namespace: string): ServiceAccountRef | undefined {
  return name ? { namespace, name } : undefined;
}

/** What carries an account: an object or a hook (structural, so this module needs nothing of desired-state.ts). */
interface Impersonating {
  readonly serviceAccount?: ServiceAccountRef;
}

/** The distinct impersonated users of a desired state (its objects and hooks), sorted. Pure. */
export function impersonatedUsers(state: {
  readonly units: readonly { readonly objects: readonly Impersonating[]; readonly hooks?: readonly Impersonating[] }[];
}): string[] {
  const users = new Set<string>();
  for (const unit of state.units) {
    for (const o of unit.objects) if (o.serviceAccount) users.add(impersonatedUser(o.serviceAccount));
    for (const h of unit.hooks ?? []) if (h.serviceAccount) users.add(impersonatedUser(h.serviceAccount));
  }
  return [...users].sort();
}

/** One kubeconfig file's text and the folder its relative paths are relative to. */
export interface KubeconfigFile {
  readonly text: string;
  readonly dir: string;
}

/** Fields of kubeconfig entries that hold file paths (client-go resolves them against the file's folder). */
const PATH_FIELDS: Readonly<Record<string, readonly string[]>> = {
  clusters: ["certificate-authority"],
  users: ["client-certificate", "client-key", "tokenFile"],
};

/**
 * A kubeconfig (YAML text) that reaches the same cluster as the given files with the same
 * credentials, impersonating `user` (`users[].user.as`, which client-go and so the Pulumi provider
 * honour): the files merged as client-go merges `$KUBECONFIG` (the first file to name an entry
 * wins, and the first `current-context`), `context` or the current one kept, relative paths made
 * absolute. Pure; throws when the context or its user is not found.
 */
export function impersonatingKubeconfig(files: readonly KubeconfigFile[], context: string | undefined, user: string): string {
  const merged: Record<"clusters" | "contexts" | "users", Map<string, Record<string, unknown>>> = {
    clusters: new Map(),
    contexts: new Map(),
    users: new Map(),
  };
  let current: string | undefined;
  for (const file of files) {
    const doc = yaml.load(file.text);
    if (!isMapping(doc)) continue;
    if (current === undefined && typeof doc["current-context"] === "string" && doc["current-context"] !== "")
      current = doc["current-context"];
    for (const section of ["clusters", "contexts", "users"] as const) {
      const entries = doc[section];
      if (!Array.isArray(entries)) continue;
      for (const entry of entries) {
        if (!isMapping(entry) || typeof entry.name !== "string" || merged[section].has(entry.name)) continue;
        merged[section].set(entry.name, absolutePaths(entry, section, file.dir));
      }
    }
  }
  const contextName = context || current;
  const ctx = contextName !== undefined ? merged.contexts.get(contextName) : undefined;
  const ctxBody = ctx && isMapping(ctx.context) ? ctx.context : undefined;
  if (!ctxBody) throw new Error(`kubeconfig: context "${contextName ?? ""}" not found; name an existing context (--context)`);
  const clusterName = ctxBody.cluster;
  const userName = ctxBody.user;
  const cluster = typeof clusterName === "string" ? merged.clusters.get(clusterName) : undefined;
  if (!cluster) throw new Error(`kubeconfig: context "${contextName}" names cluster "${String(clusterName)}", which is not defined`);
  const own = typeof userName === "string" ? merged.users.get(userName) : undefined;
  const ownBody = own && isMapping(own.user) ? own.user : {};
  const name = "ferry-impersonated";
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ ...cluster, name }],
    // The namespace of the context stays: objects that name none go where they go with the stack's credentials.
    contexts: [{ name, context: { ...ctxBody, cluster: name, user: name } }],
    users: [{ name, user: { ...withoutImpersonation(ownBody), as: user } }],
    "current-context": name,
  });
}

/** A user entry without impersonation of its own (ferry's `as` replaces it, and groups or extras would not belong to the account). */
function withoutImpersonation(user: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(user).filter(([key]) => !IMPERSONATION_FIELDS.has(key)));
}

const IMPERSONATION_FIELDS = new Set(["as", "as-groups", "as-uid", "as-user-extra"]);

function absolutePaths(entry: Record<string, unknown>, section: string, dir: string): Record<string, unknown> {
  const key = section === "clusters" ? "cluster" : section === "users" ? "user" : undefined;
  const fields = PATH_FIELDS[section];
  const body = key ? entry[key] : undefined;
  if (!key || !fields || !isMapping(body)) return entry;
  const out: Record<string, unknown> = { ...body };
  for (const f of fields) {
    const v = out[f];
    if (typeof v === "string" && v !== "" && !path.isAbsolute(v)) out[f] = path.resolve(dir, v);
  }
  return { ...entry, [key]: out };
}
