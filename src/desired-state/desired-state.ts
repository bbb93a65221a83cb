import { SourceLocation } from "./manifest-error";
import { KubeObject, ObjectId } from "./object-id";

/** One object of the desired state. */
export interface DesiredObject {
  readonly object: KubeObject;
  readonly id: ObjectId;
  readonly location: SourceLocation;
}

/** One manifest file of the cluster folder and the objects it declares. */
export interface ManifestFile {
  /** Path relative to the checkout root, with forward slashes. */
  readonly path: string;
  readonly objects: readonly DesiredObject[];
}

/** Everything a cluster folder declares, validated. Built by `loadDesiredState`; consumed by the components. */
export interface DesiredState {
  /** The cluster folder, relative to the checkout root. */
  readonly path: string;
  readonly files: readonly ManifestFile[];
}

/** All objects of a desired state, in file order. */
export function allObjects(state: DesiredState): DesiredObject[] {
  return state.files.flatMap((f) => f.objects);
}
