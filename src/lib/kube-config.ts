import * as k8s from "@kubernetes/client-node";

/** Which cluster to talk to: a kubeconfig file (else $KUBECONFIG or ~/.kube/config) and a context (else the current one). */
export interface ClusterAccess {
  readonly kubeconfig?: string;
  readonly context?: string;
  /** A user to impersonate (`Impersonate-User`, as kubectl's `--as`), e.g. `system:serviceaccount:ns:name`. */
  readonly impersonate?: string;
}

/** The client configuration of a cluster. */
export function kubeConfig(access: ClusterAccess): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (access.kubeconfig) kc.loadFromFile(access.kubeconfig);
  else kc.loadFromDefault();
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
