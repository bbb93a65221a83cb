import * as k8s from "@kubernetes/client-node";

/** Which cluster to talk to: a kubeconfig file (else $KUBECONFIG or ~/.kube/config) and a context (else the current one). */
export interface ClusterAccess {
  readonly kubeconfig?: string;
  readonly context?: string;
}

/** The client configuration of a cluster. */
export function kubeConfig(access: ClusterAccess): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (access.kubeconfig) kc.loadFromFile(access.kubeconfig);
  else kc.loadFromDefault();
  if (access.context) kc.setCurrentContext(access.context);
  return kc;
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
