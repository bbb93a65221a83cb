import * as pulumi from "@pulumi/pulumi";
import { DesiredUnit } from "../src/desired-state/desired-state";

/** Arguments of {@link UnitComponent}. */
export interface UnitArgs {
  /** The unit; its objects are registered as children by {@link ClusterStack}, in apply order. */
  readonly unit: DesiredUnit;
}

/**
 * One source of objects: a manifest file, a HelmRelease, a Kustomize folder or a Flux Kustomization
 * (type `ferry:index:<kind>`). Its objects are its children; their resource names do not contain
 * the unit's name, so moving a manifest to another file keeps the object in place.
 */
export class UnitComponent extends pulumi.ComponentResource {
  constructor(args: UnitArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`ferry:index:${args.unit.kind}`, args.unit.name, { source: args.unit.location.file }, opts);
  }

  /** Marks the component complete once its children are registered. */
  complete(objectCount: number): void {
    this.registerOutputs({ objects: objectCount });
  }
}
