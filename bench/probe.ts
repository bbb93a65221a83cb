// Polling with a deadline, and the API-server probes the bench times with.
import * as k8s from "@kubernetes/client-node";
import { isNotFound, kubeConfig } from "../src/lib/kube-config";

/** A figure that did not come within its deadline: the bench prints "timeout" and goes on. */
export class BenchTimeout extends Error {}

/** Polls `check` every `everyMs` until it holds; throws {@link BenchTimeout} after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new BenchTimeout(`timed out after ${Math.round(timeoutMs / 1000)}s waiting until ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Whether a Deployment reports the condition Available=True. Pure. */
export function isAvailable(d: k8s.V1Deployment | undefined): boolean {
  return d?.status?.conditions?.some((c) => c.type === "Available" && c.status === "True") === true;
}

/** Reads Deployments straight from the API server (no kubectl process per poll). */
export class DeploymentProbe {
  private readonly api: k8s.AppsV1Api;

  constructor(kubeconfig: string) {
    this.api = kubeConfig({ kubeconfig }).makeApiClient(k8s.AppsV1Api);
  }

  /** The Deployment, or undefined when it does not exist. */
  async get(namespace: string, name: string): Promise<k8s.V1Deployment | undefined> {
    try {
      return await this.api.readNamespacedDeployment({ name, namespace });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Polls every 100 ms until the Deployment exists and is Available. */
  async untilAvailable(namespace: string, name: string, timeoutMs: number): Promise<void> {
    await until(`Deployment/${namespace}/${name} is Available`, async () => isAvailable(await this.get(namespace, name)), timeoutMs, 100);
  }
}
