import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { applyDependencies, applyPhase } from "../src/desired-state/apply-order";
import { DesiredState } from "../src/desired-state/desired-state";
import { resourceName } from "../src/desired-state/object-id";
import { kubeObject } from "./kube-object";
import { ManifestFileComponent } from "./manifest-file";

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

/** The whole desired state of one cluster: a Kubernetes provider and one component per manifest file. */
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
    const components = new Map(
      args.state.files.map((f) => [f.path, new ManifestFileComponent(f.path, { file: f }, { parent: this, provider })]),
    );
    const entries = args.state.files.flatMap((f) => f.objects.map((o) => ({ file: f.path, o })));
    const dependencies = applyDependencies(entries.map((e) => e.o));
    const resources = new Map<string, pulumi.CustomResource>();
    // Registered in apply order, so every dependency exists before its dependents.
    const ordered = entries.map((e, i) => ({ ...e, i })).sort((a, b) => applyPhase(a.o.id) - applyPhase(b.o.id) || a.i - b.i);
    for (const { file, o } of ordered) {
      const rn = resourceName(o.id);
      const dependsOn = (dependencies.get(rn) ?? []).flatMap((d) => resources.get(d) ?? []);
      resources.set(rn, kubeObject(rn, o.object, { parent: components.get(file), dependsOn }));
    }
    for (const f of args.state.files) components.get(f.path)?.complete(f.objects.length);
    this.objectCount = resources.size;
    this.registerOutputs({ objectCount: this.objectCount });
  }
}
