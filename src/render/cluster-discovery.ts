import * as k8s from "@kubernetes/client-node";
import { groupKind, GroupKind } from "../desired-state/identify";
import { Scope, splitApiVersion } from "../desired-state/object-id";
import { ClusterAccess, isNotFound, kubeConfig } from "../lib/kube-config";

/** What the live cluster serves: the kinds of an API version, with their scope. */
export interface ServedKind {
  readonly name: string;
  readonly namespaced: boolean;
}

/** What a chart sees of the cluster (`.Capabilities`): the server's version and every served API. */
export interface ClusterCapabilities {
  /** The API server's version, e.g. `v1.34.4`. */
  readonly kubeVersion: string;
  /** `group/version` and `group/version/Kind` of every served resource, as Helm's discovery lists them. */
  readonly apiVersions: readonly string[];
}

/** The client's discovery lookup (protected in its typings) made callable. */
class ResourceApi extends k8s.KubernetesObjectApi {
  lookup(apiVersion: string, kind: string): Promise<k8s.V1APIResource | undefined> {
    return this.resource(apiVersion, kind);
  }

  /** The kinds served at an API version (the lookup's cached list). */
  async kindsOf(apiVersion: string): Promise<string[]> {
    await this.resource(apiVersion, " ");
    return (this.apiVersionResourceCache[apiVersion]?.resources ?? []).map((r) => r.kind);
  }
}

/** Discovery of one cluster, cached for the life of the object (one run). */
export class ClusterDiscovery {
  private readonly api: ResourceApi;
  private readonly served = new Map<string, Promise<ServedKind | undefined>>();
  private readonly access: ClusterAccess;
  private caps?: Promise<ClusterCapabilities>;

  constructor(access: ClusterAccess) {
    this.access = access;
    this.api = kubeConfig(access).makeApiClient(ResourceApi);
  }

  /** The cluster's version and served APIs, as helm-controller's Helm sees them (asked once). */
  capabilities(): Promise<ClusterCapabilities> {
    this.caps ??= this.readCapabilities().catch((err: unknown) => {
      throw new Error(`cannot ask the cluster for its version and APIs (to render charts for it): ${message(err)}`, { cause: err });
    });
    return this.caps;
  }

  private async readCapabilities(): Promise<ClusterCapabilities> {
    const config = kubeConfig(this.access);
    const [version, core, groups] = await Promise.all([
      config.makeApiClient(k8s.VersionApi).getCode(),
      config.makeApiClient(k8s.CoreApi).getAPIVersions(),
      config.makeApiClient(k8s.ApisApi).getAPIVersions(),
    ]);
    const groupVersions = [...core.versions, ...groups.groups.flatMap((g) => g.versions.map((v) => v.groupVersion))];
    const apiVersions = new Set<string>();
    await Promise.all(
      groupVersions.map(async (gv) => {
        apiVersions.add(gv);
        // As Helm: a group whose discovery fails (an aggregated API that is down) is left out, not fatal.
        for (const kind of await this.api.kindsOf(gv).catch(() => [])) apiVersions.add(`${gv}/${kind}`);
      }),
    );
    return { kubeVersion: version.gitVersion, apiVersions: [...apiVersions].sort() };
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
