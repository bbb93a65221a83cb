import { HealthPolicy } from "./health-policy";
import type { HelmHook } from "./helm-hooks";
import { ManifestError, SourceLocation } from "./manifest-error";
import { KubeObject, ObjectId } from "./object-id";
import type { ServiceAccountRef } from "./service-account";

/** An object as a file, a chart or Kustomize gives it, before its identity is resolved. */
export interface SourceObject {
  readonly object: KubeObject;
  readonly location: SourceLocation;
  /** False when the object must never be deleted by ferry (`fluxcd.io/ignore: sync_only`, prune disabled). */
  readonly prune: boolean;
  /** True when ferry must leave the live object as it is (a suspended HelmRelease or Kustomization). */
  readonly suspended?: boolean;
  /**
   * True when the object was rendered from values read from a Secret (or a URL): every field value
   * is secret — masked in previews and results, stored encrypted in the stack's state.
   */
  readonly sensitive?: boolean;
  /**
   * The ServiceAccount the object is applied as (its unit's Flux `serviceAccountName`): the engine,
   * the dry run and hooks impersonate it. Absent: the stack's own credentials.
   */
  readonly serviceAccount?: ServiceAccountRef;
}

/**
 * One object of the desired state: its identity is resolved, and the object carries it (the
 * namespace written out for namespaced kinds, none for cluster-scoped ones).
 */
export interface DesiredObject extends SourceObject {
  readonly id: ObjectId;
}

/** One manifest file of the cluster folder and the objects it declares. */
export interface ManifestFile {
  /** Path relative to the checkout root, with forward slashes. */
  readonly path: string;
  readonly objects: readonly SourceObject[];
}

/** What produced a group of objects: a manifest file, a HelmRelease, a Kustomize folder, a Flux Kustomization or a chart folder. */
export type UnitKind = "ManifestFile" | "HelmRelease" | "Kustomize" | "Kustomization" | "HelmChart";

/** The namespace a unit puts its namespaced objects in. */
export interface NamespacePolicy {
  readonly namespace: string;
  /** Every namespaced object goes there (Flux `targetNamespace`); otherwise only those that name none. */
  readonly override: boolean;
}

/** A group of objects from one source, with their identities. */
export interface DesiredUnit {
  readonly kind: UnitKind;
  /** File or folder path for files and Kustomize folders, `namespace/name` for HelmReleases and Kustomizations. */
  readonly name: string;
  readonly location: SourceLocation;
  readonly objects: readonly DesiredObject[];
  /** Keys ({@link unitKey}) of the units whose objects must be ready first. */
  readonly dependsOn: readonly string[];
  /** What the run waits for after applying the unit (Flux `wait`, `healthChecks`); none: readiness is only reported. */
  readonly health?: HealthPolicy;
  /** A HelmRelease's install and upgrade hooks: run around the update, never managed objects. */
  readonly hooks?: readonly HelmHook[];
}

/** A group of objects from one source, as rendered: identities not yet resolved. */
export interface RenderedUnit extends Omit<DesiredUnit, "objects"> {
  readonly objects: readonly SourceObject[];
  readonly namespace: NamespacePolicy;
}

/**
 * A unit that did not build (a chart that does not render, a Kustomization whose path does not load,
 * a refused field): none of its objects is in the desired state, and what it declared before stays
 * in the cluster as it is (see `unit-isolation.ts`).
 */
export interface FailedUnit {
  readonly kind: UnitKind;
  readonly name: string;
  readonly location: SourceLocation;
  readonly errors: readonly ManifestError[];
}

/** Everything a cluster folder declares, rendered and validated; what the components apply. */
export interface DesiredState {
  /** The cluster folder, relative to the checkout root. */
  readonly path: string;
  readonly units: readonly DesiredUnit[];
  /** Units that did not build; the others are applied without them. */
  readonly failed?: readonly FailedUnit[];
  /**
   * Strings that reveal Secret data (values read from Secrets, Secret objects' data, and their
   * encodings; see `sensitive-values.ts`): masked wherever a run shows text. Never printed.
   */
  readonly sensitive?: readonly string[];
}

/** `HelmRelease/infra/ingress`, `ManifestFile/clusters/dev/app.yaml` */
export function unitKey(unit: Pick<DesiredUnit, "kind" | "name">): string {
  return `${unit.kind}/${unit.name}`;
}

/** All objects of a desired state, in unit order. */
export function allObjects(state: DesiredState): DesiredObject[] {
  return state.units.flatMap((u) => u.objects);
}
