import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { applyDependencies, applyRank, unitWave, waveDependencies } from "../src/desired-state/apply-order";
import { DesiredState, unitKey } from "../src/desired-state/desired-state";
import { resourceName } from "../src/desired-state/object-id";
import { KeptObject } from "../src/desired-state/program-input";
import { impersonatedUser } from "../src/desired-state/service-account";
import { kubeObject } from "./kube-object";

/** Arguments of {@link ClusterStack}. */
export interface ClusterStackArgs {
  /** The validated desired state of the cluster folder. */
  readonly state: DesiredState;
  /**
   * Objects the stack's state holds under another URN (made by an earlier ferry, whose URNs
   * depended on the file or chart that declared them): resource name -> that URN. Each is
   * registered as an alias, so the engine takes the object over in place instead of creating it
   * anew and deleting the old resource.
   */
  readonly adopt?: Readonly<Record<string, string>>;
  /**
   * Objects the state holds that no unit declares while some unit failed: registered as the state
   * recorded them, every change ignored, so the update neither changes nor deletes them.
   */
  readonly keep?: readonly KeptObject[];
  /** Kubeconfig contents or path; the ambient kubeconfig when absent. */
  readonly kubeconfig?: string;
  /** Kubeconfig context; the current context when absent. */
  readonly context?: string;
  /**
   * Stable identity of the cluster. A kubeconfig that changes (new port, new CA after a rebuild)
   * must not make Pulumi replace the provider and every object under it.
   */
  readonly clusterIdentifier: string;
  /**
   * For each account objects are applied as (`system:serviceaccount:<ns>:<name>`), a kubeconfig
   * (contents) reaching the same cluster with the same credentials, impersonating it: its objects
   * get a provider of their own with it. Required for every account the state names.
   */
  readonly impersonation?: Readonly<Record<string, string>>;
  /** The provider's client rate limit (requests per second, burst); the provider's own when absent. */
  readonly kubeClient?: { readonly qps?: number; readonly burst?: number };
}

/**
 * The whole desired state of one cluster: a Kubernetes provider and every object as a resource of
 * its own, a direct child of this component. Nothing of the unit that declares an object (file,
 * HelmRelease, Kustomize folder, Kustomization) goes into its URN: only its identity does.
 */
export class ClusterStack extends pulumi.ComponentResource {
  /** Number of Kubernetes objects managed. */
  readonly objectCount: number;

  constructor(name: string, args: ClusterStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ferry:index:ClusterStack", name, {}, opts);
    const options = {
      clusterIdentifier: args.clusterIdentifier,
      // GitOps semantics (kubectl apply, Flux, Argo CD): a changed ConfigMap or Secret is updated
      // in place, not replaced by a new object.
      enableConfigMapMutable: true,
      enableSecretMutable: true,
      ...(args.kubeClient?.qps !== undefined || args.kubeClient?.burst !== undefined
        ? { kubeClientSettings: { qps: args.kubeClient.qps, burst: args.kubeClient.burst } }
        : {}),
    };
    const provider = new k8s.Provider("cluster", { kubeconfig: args.kubeconfig, context: args.context, ...options }, { parent: this });
    // One provider per impersonated account, with the same clusterIdentifier: moving an object to or
    // from an account changes its provider, which the engine asks the provider about (DiffConfig)
    // and which is then an update, never a replacement; its URN stays its identity.
    const impersonating = new Map<string, k8s.Provider>();
    const providerFor = (user: string | undefined): k8s.Provider => {
      if (user === undefined) return provider;
      let p = impersonating.get(user);
      if (!p) {
        const kubeconfig = args.impersonation?.[user];
        if (kubeconfig === undefined)
          throw new Error(`no kubeconfig impersonating ${user} was given to the program: run the stack through ferry`);
        // The kubeconfig holds the stack's credentials: kept encrypted in the state.
        p = new k8s.Provider(`cluster-as-${user}`, { kubeconfig: pulumi.secret(kubeconfig), ...options }, { parent: this });
        impersonating.set(user, p);
      }
      return p;
    };
    const entries = args.state.units.flatMap((u) =>
      u.objects.map((o) => ({ unit: unitKey(u), dependsOnUnits: u.dependsOn, o, wave: unitWave(u, o) })),
    );
    const unitOf = new Map(entries.map((e) => [e.o, e.unit]));
    const dependencies = applyDependencies(
      entries.map((e) => e.o),
      (o) => unitOf.get(o) ?? "",
    );
    // Argo CD sync waves: an object waits for the lower waves of its own unit.
    const waves = waveDependencies(args.state.units);
    const resources = new Map<string, pulumi.CustomResource>();
    // A HelmRelease or Kustomization dependsOn waits for every object of the other unit; those are
    // known once all are registered, so each unit's list is a promise resolved after the loop.
    const unitResources = new Map<string, pulumi.CustomResource[]>(args.state.units.map((u) => [unitKey(u), []]));
    let registered!: () => void;
    const allRegistered = new Promise<void>((resolve) => (registered = resolve));
    // Registered in apply order, so every dependency exists before its dependents.
    const ordered = entries.map((e, i) => ({ ...e, i })).sort((a, b) => applyRank(a.o) - applyRank(b.o) || a.wave - b.wave || a.i - b.i);
    for (const { unit, dependsOnUnits, o } of ordered) {
      const rn = resourceName(o.id);
      const direct = [...(dependencies.get(rn) ?? []), ...(waves.get(rn) ?? [])].flatMap((d) => resources.get(d) ?? []);
      const dependsOn =
        dependsOnUnits.length === 0
          ? direct
          : allRegistered.then(() => [...direct, ...dependsOnUnits.flatMap((k) => unitResources.get(k) ?? [])]);
      const adopted = args.adopt?.[rn];
      const resource = kubeObject(
        o.id,
        o.object,
        {
          parent: this,
          provider: providerFor(o.serviceAccount && impersonatedUser(o.serviceAccount)),
          dependsOn,
          aliases: adopted ? [adopted] : undefined,
          // Never pruned (fluxcd.io/ignore: sync_only, prune disabled): leave the object when it leaves Git.
          retainOnDelete: !o.prune,
          // Suspended (HelmRelease/Kustomization suspend: true): keep the live object as it is.
          ignoreChanges: o.suspended ? ["*"] : undefined,
        },
        o.sensitive === true,
      );
      resources.set(rn, resource);
      unitResources.get(unit)?.push(resource);
    }
    for (const k of args.keep ?? []) {
      const rn = resourceName(k.id);
      if (resources.has(rn)) continue;
      const ownUrn = k.urn === undefined;
      resources.set(
        rn,
        kubeObject(k.id, k.object, { parent: this, provider, aliases: ownUrn ? undefined : [k.urn!], ignoreChanges: ["*"] }, k.sensitive),
      );
    }
    registered();
    this.objectCount = resources.size;
    this.registerOutputs({ objectCount: this.objectCount });
  }
}
