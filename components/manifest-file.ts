import * as pulumi from "@pulumi/pulumi";
import { ManifestFile } from "../src/desired-state/desired-state";

/** Arguments of {@link ManifestFileComponent}. */
export interface ManifestFileArgs {
  /** The file; its objects are registered as children by {@link ClusterStack}, in apply order. */
  readonly file: ManifestFile;
}

/**
 * One manifest file of the cluster folder. Its objects are its children; their resource names do
 * not contain the file name, so moving a manifest to another file keeps the object in place.
 */
export class ManifestFileComponent extends pulumi.ComponentResource {
  constructor(name: string, args: ManifestFileArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ferry:index:ManifestFile", name, { path: args.file.path }, opts);
  }

  /** Marks the component complete once its children are registered. */
  complete(objectCount: number): void {
    this.registerOutputs({ objects: objectCount });
  }
}
