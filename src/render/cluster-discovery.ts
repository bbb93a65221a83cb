import * as k8s from "@kubernetes/client-node";
import { groupKind, GroupKind } from "../desired-state/identify";
import { Scope, splitApiVersion } from "../desired-state/object-id";
import { ClusterAccess, isNotFound, kubeConfig } from "../lib/kube-config";

/** What the live cluster serves: the kinds of an API version, with their scope. */
export interface ServedKind {
  readonly name: string;
  readonly namespaced: boolean;
}

/** The client's discovery lookup (protected in its typings) made callable. */
class ResourceApi extends k8s.KubernetesObjectApi {
  lookup(apiVersion: string, kind: string): Promise<k8s.V1APIResource | undefined> {
    return this.resource(apiVersion, kind);
  }
}

/** Discovery of one cluster, cached for the life of the object (one run). */
export class ClusterDiscovery {
  private readonly api: ResourceApi;
  private readonly served = new Map<string, Promise<ServedKind | undefined>>();

  constructor(access: ClusterAccess) {
    this.api = kubeConfig(access).makeApiClient(ResourceApi);
  }

  /** The kind as the cluster serves it at this API version; undefined when it does not serve it. */
  kind(apiVersion: string, kind: string): Promise<ServedKind | undefined> {
    const key = `${apiVersion}/${kind}`;
    let found = this.served.get(key);
    if (!found) {
      found = this.api.lookup(apiVersion, kind).then(
        (r) => (r ? { name: r.name, namespaced: r.namespaced } : undefined),
        (err: unknown) => {
          if (isNotFound(err)) return undefined; // the group or version is not served
          throw new Error(`cannot ask the cluster which kinds it serves (${apiVersion}): ${message(err)}`, { cause: err });
        },
      );
      this.served.set(key, found);
    }
    return found;
  }

  /** The scope of each kind the cluster serves; kinds it does not serve are left out. */
  async scopes(kinds: readonly { apiVersion: string; kind: string }[]): Promise<Map<GroupKind, Scope>> {
    const out = new Map<GroupKind, Scope>();
    await Promise.all(
      kinds.map(async ({ apiVersion, kind }) => {
        const served = await this.kind(apiVersion, kind);
        if (served) out.set(groupKind(splitApiVersion(apiVersion).group, kind), served.namespaced ? "Namespaced" : "Cluster");
      }),
    );
    return out;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
