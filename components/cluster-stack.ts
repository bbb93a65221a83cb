import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { applyDependencies, applyPhase } from "../src/desired-state/apply-order";
import { DesiredState, unitKey } from "../src/desired-state/desired-state";
import { resourceName } from "../src/desired-state/object-id";
import { kubeObject } from "./kube-object";
import { UnitComponent } from "./unit-component";

/** Arguments of {@link ClusterStack}. */
export interface ClusterStackArgs {
  /** The validated desired state of the cluster folder. */
  readonly state: DesiredState;
  /** Kubeconfig contents or path; the ambient kubeconfig when absent. */
  readonly kubeconfig?: string;
  /** Kubeconfig context; the current context when absent. */
  readonly context?: string;
  /**
   * Stable identity of the cluster. A kubeconfig that changes (new port, new CA after a rebuild)
   * must not make Pulumi replace the provider and every object under it.
   */
  readonly clusterIdentifier: string;
}

/** The whole desired state of one cluster: a Kubernetes provider and one component per unit (file, HelmRelease...). */
export class ClusterStack extends pulumi.ComponentResource {
  /** Number of Kubernetes objects managed. */
  readonly objectCount: number;

  constructor(name: string, args: ClusterStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ferry:index:ClusterStack", name, {}, opts);
    const provider = new k8s.Provider(
      "cluster",
      {
        kubeconfig: args.kubeconfig,
        context: args.context,
        clusterIdentifier: args.clusterIdentifier,
        // GitOps semantics (kubectl apply, Flux, Argo CD): a changed ConfigMap or Secret is updated
        // in place, not replaced by a new object.
        enableConfigMapMutable: true,
        enableSecretMutable: true,
      },
      { parent: this },
    );
    const components = new Map(args.state.units.map((u) => [unitKey(u), new UnitComponent({ unit: u }, { parent: this, provider })]));
    const entries = args.state.units.flatMap((u) => u.objects.map((o) => ({ unit: unitKey(u), dependsOnUnits: u.dependsOn, o })));
    const dependencies = applyDependencies(entries.map((e) => e.o));
    const resources = new Map<string, pulumi.CustomResource>();
    // Registered in apply order, so every dependency exists before its dependents.
    const ordered = entries.map((e, i) => ({ ...e, i })).sort((a, b) => applyPhase(a.o.id) - applyPhase(b.o.id) || a.i - b.i);
    for (const { unit, dependsOnUnits, o } of ordered) {
      const rn = resourceName(o.id);
      const dependsOn: pulumi.Resource[] = [
        ...(dependencies.get(rn) ?? []).flatMap((d) => resources.get(d) ?? []),
        // A HelmRelease or Kustomization dependsOn: wait for every object of the other unit.
        ...dependsOnUnits.flatMap((k) => components.get(k) ?? []),
      ];
      resources.set(
        rn,
        kubeObject(rn, o.object, {
          parent: components.get(unit),
          dependsOn,
          // Never pruned (fluxcd.io/ignore: sync_only, prune disabled): leave the object when it leaves Git.
          retainOnDelete: !o.prune,
          // Suspended (HelmRelease/Kustomization suspend: true): keep the live object as it is.
          ignoreChanges: o.suspended ? ["*"] : undefined,
        }),
      );
    }
    for (const u of args.state.units) components.get(unitKey(u))?.complete(u.objects.length);
    this.objectCount = resources.size;
    this.registerOutputs({ objectCount: this.objectCount });
  }
}
