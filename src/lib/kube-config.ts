import * as fs from "node:fs";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";

/** Which cluster to talk to: a kubeconfig file (else $KUBECONFIG or ~/.kube/config) and a context (else the current one). */
export interface ClusterAccess {
  readonly kubeconfig?: string;
  readonly context?: string;
  /** A user to impersonate (`Impersonate-User`, as kubectl's `--as`), e.g. `system:serviceaccount:ns:name`. */
  readonly impersonate?: string;
}

/** The client configuration of a cluster. */
export function kubeConfig(access: ClusterAccess): k8s.KubeConfig {
  let kc = new k8s.KubeConfig();
  if (access.kubeconfig) kc.loadFromFile(access.kubeconfig);
  else kc.loadFromDefault();
  if (access.kubeconfig) kc = withTokenFiles(kc, access.kubeconfig);
  if (access.context) kc.setCurrentContext(access.context);
  if (access.impersonate === undefined) return kc;
  const current = kc.getCurrentUser();
  if (!current)
    throw new Error(`kubeconfig: the context "${kc.getCurrentContext()}" names no user to impersonate ${access.impersonate} with`);
  const impersonating = new k8s.KubeConfig();
  impersonating.loadFromOptions({
    clusters: kc.clusters,
    contexts: kc.contexts,
    users: kc.users.map((u) => (u.name === current.name ? { ...u, impersonateUser: access.impersonate } : u)),
    currentContext: kc.getCurrentContext(),
  });
  return impersonating;
}

/** Whether an error of the Kubernetes client is the API server's 404. */
export function isNotFound(err: unknown): boolean {
  return err instanceof k8s.ApiException && err.code === 404;
}

/**
 * The namespace the kubeconfig's context names (what kubectl and the Pulumi provider put objects
 * without a namespace in), or undefined when it names none or there is no kubeconfig.
 */
export function contextNamespace(access: ClusterAccess): string | undefined {
  try {
    const kc = kubeConfig(access);
    return kc.getContextObject(kc.getCurrentContext())?.namespace || undefined;
  } catch {
    return undefined;
  }
}

/**
 * client-node ignores a user's standard `tokenFile` (kubectl's and client-go's key, e.g. a
 * ServiceAccount token a controller renews): such a user gets client-node's file authenticator,
 * which reads the file again as it changes, so a long watch survives the token's renewal.
 */
function withTokenFiles(kc: k8s.KubeConfig, file: string): k8s.KubeConfig {
  let raw: { users?: { name?: string; user?: { tokenFile?: unknown } }[] } | undefined;
  try {
    raw = yaml.load(fs.readFileSync(file, "utf8")) as typeof raw;
  } catch {
    return kc;
  }
  const files = new Map<string, string>();
  for (const u of raw?.users ?? []) if (u.name && typeof u.user?.tokenFile === "string") files.set(u.name, u.user.tokenFile);
  if (files.size === 0) return kc;
  const out = new k8s.KubeConfig();
  out.loadFromOptions({
    clusters: kc.clusters,
    contexts: kc.contexts,
    users: kc.users.map((u) => {
      const tokenFile = files.get(u.name);
      return tokenFile && !u.token ? { ...u, authProvider: { name: "tokenfile", config: { tokenFile } } } : u;
    }),
    currentContext: kc.getCurrentContext(),
  });
  return out;
}
