import { z } from "zod";
import { fields, FieldRules, meaningless, refused, SUPPORTED } from "./field-audit";
import {
  commonMetadataSchema,
  EMPTY_OVERLAY,
  imagesSchema,
  KustomizeOverlay,
  patchesJson6902Schema,
  patchesSchema,
  patchesStrategicMergeSchema,
} from "./kustomize-fields";
import { optionalList, optionalMapping } from "./manifest-schema";

const SCHEDULE = "ferry renders the release on its own schedule (the stack's interval, webhooks, `ferry sync`)";
const READINESS = "ferry waits for the objects it applies with its own readiness rules and deadlines";
const NO_HELM_STORAGE = "ferry keeps no Helm release records: the stack's state is its record";
const HOOKS_HINT = "remove it: ferry handles the chart's hooks itself";
const REMEDIATION = "ferry retries a failed sync on its next run and never uninstalls or rolls back a release on its own";
const SCHEMA_VALIDATION = refused(
  "ferry renders charts with their values schema checked",
  "fix the values so that they match the chart's values.schema.json, and remove the field",
);

/** `install` and `upgrade` settings that tune Helm's actions: the rules both share. */
const ACTION_FIELDS: FieldRules = {
  timeout: meaningless(READINESS),
  remediation: meaningless(REMEDIATION),
  strategy: meaningless(REMEDIATION),
  disableWait: meaningless(READINESS),
  disableWaitForJobs: meaningless(READINESS),
  disableHooks: refused("ferry does not switch a chart's hooks off", HOOKS_HINT),
  disableOpenAPIValidation: meaningless("the API server validates every object ferry applies"),
  disableSchemaValidation: SCHEMA_VALIDATION,
  disableTakeOwnership: refused(
    "ferry applies with server-side apply, which takes over an object that exists already",
    "remove disableTakeOwnership, or delete the existing objects first",
  ),
  // The chart's crds/ are rendered with --include-crds unless install.crds is Skip or skipCRDs is set.
  crds: SUPPORTED,
};

/**
 * Every field of helm.toolkit.fluxcd.io v2 (and v2beta1/v2beta2) HelmReleaseSpec: read, accepted as
 * meaningless for ferry (with why), or refused by name.
 */
export const HELM_RELEASE_V2_FIELDS: FieldRules = {
  chart: fields({
    spec: fields({
      chart: SUPPORTED,
      version: SUPPORTED,
      sourceRef: SUPPORTED,
      interval: meaningless(SCHEDULE),
      // Revision re-renders on every new commit of the source; ferry renders the current one on every run.
      reconcileStrategy: meaningless(SCHEDULE),
      valuesFiles: SUPPORTED,
      valuesFile: SUPPORTED,
      ignoreMissingValuesFiles: SUPPORTED,
      verify: refused("ferry cannot verify chart signatures", "remove spec.chart.spec.verify, or verify the chart before it is published"),
    }),
    metadata: meaningless("labels and annotations of the HelmChart object Flux creates; ferry creates none"),
  }),
  chartRef: SUPPORTED,
  interval: meaningless(SCHEDULE),
  kubeConfig: refused("ferry applies to its own cluster only", "remove spec.kubeConfig and run a ferry stack for the other cluster"),
  suspend: SUPPORTED,
  releaseName: SUPPORTED,
  targetNamespace: SUPPORTED,
  storageNamespace: meaningless(NO_HELM_STORAGE),
  dependsOn: SUPPORTED,
  timeout: meaningless(READINESS),
  maxHistory: meaningless(NO_HELM_STORAGE),
  // Its objects and hooks are applied impersonating the account (engine, dry run, hooks): the cluster's RBAC decides.
  serviceAccountName: SUPPORTED,
  persistentClient: meaningless("ferry starts no Helm client to keep"),
  driftDetection: fields({
    mode: meaningless("the stack's mode decides what ferry does with drift (detect, heal)"),
    ignore: refused("ferry corrects every field of the objects it manages", "remove spec.driftDetection.ignore"),
  }),
  install: fields({
    ...ACTION_FIELDS,
    skipCRDs: SUPPORTED,
    replace: meaningless(NO_HELM_STORAGE),
    createNamespace: refused(
      "ferry does not create the target namespace",
      "declare the Namespace in the repository and remove install.createNamespace",
    ),
  }),
  upgrade: fields({
    ...ACTION_FIELDS,
    // Pulumi's Kubernetes provider replaces an object whose immutable fields change, which is what force asks.
    force: meaningless("ferry replaces an object when an immutable field changes"),
    preserveValues: refused("ferry renders every release from the values in Git", "remove upgrade.preserveValues and declare every value"),
    cleanupOnFail: meaningless(REMEDIATION),
  }),
  test: fields({
    enable: refused("ferry does not run Helm tests", "remove spec.test.enable (or set it to false)"),
    ignoreFailures: meaningless("ferry runs no Helm tests"),
    timeout: meaningless("ferry runs no Helm tests"),
    filters: meaningless("ferry runs no Helm tests"),
  }),
  rollback: meaningless("ferry rolls back by syncing an earlier commit (`ferry rollback`), never on its own"),
  uninstall: meaningless("ferry deletes a removed release's objects by pruning them"),
  valuesFrom: SUPPORTED,
  values: SUPPORTED,
  postRenderers: SUPPORTED,
  commonMetadata: fields({ labels: SUPPORTED, annotations: SUPPORTED }),
  skipCRDs: SUPPORTED,
};

/** `spec.postRenderers`: Kustomize patches, strategic-merge and JSON 6902 patches, and images applied to Helm's output, in order. */
export const postRenderersSchema = optionalList(
  z.object({
    kustomize: optionalMapping({
      patches: patchesSchema,
      patchesStrategicMerge: patchesStrategicMergeSchema,
      patchesJson6902: patchesJson6902Schema,
      images: imagesSchema,
    }),
  }),
).transform((list) =>
  list.flatMap((r): KustomizeOverlay[] =>
    r.kustomize
      ? [
          {
            ...EMPTY_OVERLAY,
            patches: [...r.kustomize.patchesStrategicMerge, ...r.kustomize.patchesJson6902, ...r.kustomize.patches],
            images: r.kustomize.images,
          },
        ]
      : [],
  ),
);

export { commonMetadataSchema };
