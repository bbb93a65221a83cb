import { DesiredState } from "../desired-state/desired-state";
import { loadConfigFolder } from "../desired-state/load-desired-state";
import { contextNamespace } from "../lib/kube-config";
import { buildDesiredState } from "./build-desired-state";
import { localRenderTools, RenderToolsOptions } from "./render-tools";

/** What {@link renderCheckout} builds: a cluster folder of a checkout, with the real render tools. */
export interface RenderCheckoutOptions extends RenderToolsOptions {
  /** Root of the config-repo checkout. */
  readonly checkout: string;
  /** The cluster folder, relative to the checkout root. */
  readonly path: string;
  /** Accept a desired state with no objects (prunes everything). */
  readonly allowEmpty: boolean;
}

/**
 * The build phase: load the cluster folder, render its charts and Kustomize folders, resolve every
 * identity. The one way a desired state is built, by a run and by the program run by hand.
 */
export async function renderCheckout(options: RenderCheckoutOptions): Promise<DesiredState> {
  const loaded = loadConfigFolder({ checkout: options.checkout, path: options.path });
  return buildDesiredState(loaded, localRenderTools(options), {
    allowEmpty: options.allowEmpty,
    // As kubectl and the Pulumi provider do: an object that names no namespace goes to the context's.
    defaultNamespace: contextNamespace(options),
    policy: options.policy,
    repoUrl: options.repoUrl,
  });
}
