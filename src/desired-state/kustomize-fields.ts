import * as yaml from "js-yaml";
import { z } from "zod";
import {
  addProblem,
  optionalBoolean,
  optionalList,
  optionalMapping,
  optionalString,
  requiredMapping,
  requiredString,
} from "./manifest-schema";
import { isMapping } from "./yaml-data";

/** Which objects a patch applies to, as Kustomize selects them (`name` and `kind` may be regular expressions). */
export interface PatchTarget {
  readonly group?: string;
  readonly version?: string;
  readonly kind?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly annotationSelector?: string;
}

/** One Kustomize patch: a strategic-merge patch or a JSON 6902 patch (the latter needs a target). */
export interface KustomizePatch {
  /** The patch's YAML text. */
  readonly patch: string;
  readonly target?: PatchTarget;
}

/** A Kustomize `images` entry: the image `name` and what replaces its name, tag or digest. */
export interface ImageOverride {
  readonly name: string;
  readonly newName?: string;
  readonly newTag?: string;
  readonly digest?: string;
}

/**
 * What Flux adds to a Kustomize build (a Kustomization's patches, images, components, name prefix and
 * suffix, common metadata; a HelmRelease's post-renderers), as kustomize-controller writes it into the
 * kustomization it builds.
 */
export interface KustomizeOverlay {
  readonly patches: readonly KustomizePatch[];
  readonly images: readonly ImageOverride[];
  /** Component folders, relative to the unit's folder (a Flux Kustomization's `path`). */
  readonly components: readonly string[];
  /** Flux `ignoreMissingComponents`: components whose folder does not exist are left out. */
  readonly ignoreMissingComponents: boolean;
  readonly namePrefix?: string;
  readonly nameSuffix?: string;
  readonly commonMetadata?: { readonly labels: Readonly<Record<string, string>>; readonly annotations: Readonly<Record<string, string>> };
}

/** An overlay that changes nothing. */
export const EMPTY_OVERLAY: KustomizeOverlay = { patches: [], images: [], components: [], ignoreMissingComponents: false };

/** Whether an overlay changes anything (no Kustomize run is needed when it does not). */
export function isEmptyOverlay(o: KustomizeOverlay): boolean {
  return (
    o.patches.length === 0 &&
    o.images.length === 0 &&
    o.components.length === 0 &&
    o.namePrefix === undefined &&
    o.nameSuffix === undefined &&
    o.commonMetadata === undefined
  );
}

const targetShape = {
  group: optionalString,
  version: optionalString,
  kind: optionalString,
  name: optionalString,
  namespace: optionalString,
  labelSelector: optionalString,
  annotationSelector: optionalString,
};

function target(t: Record<string, string | undefined> | undefined): PatchTarget | undefined {
  if (!t) return undefined;
  const out = Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) as PatchTarget;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** `patches`: `{patch, target?}` entries (Flux v1 and v2beta2+); a `path` to a file is Kustomize's, not Flux's. */
export const patchesSchema = optionalList(z.object({ patch: requiredString, target: optionalMapping(targetShape) })).transform((list) =>
  list.map((p): KustomizePatch => ({ patch: p.patch, ...(target(p.target) ? { target: target(p.target) } : {}) })),
);

/** `patchesStrategicMerge` (Flux v1beta2 / helm v2beta1): whole objects, each a strategic-merge patch. */
export const patchesStrategicMergeSchema = optionalList(
  z.unknown().superRefine((v, ctx) => {
    if (!isMapping(v))
      addProblem(
        ctx,
        "must be a mapping (an object to merge)",
        "write each entry as the object to patch, with apiVersion, kind and metadata.name",
      );
  }),
).transform((list) => list.map((p): KustomizePatch => ({ patch: yaml.dump(p, { noRefs: true }) })));

const jsonOperation = z.object({
  op: z.enum(["add", "remove", "replace", "move", "copy", "test"]),
  path: requiredString,
  from: optionalString,
  value: z.unknown(),
});

/** `patchesJson6902` (Flux v1beta2 / helm v2beta1): a target and a list of JSON 6902 operations. */
export const patchesJson6902Schema = optionalList(
  z.object({ target: requiredMapping(targetShape), patch: z.array(jsonOperation) }),
).transform((list) =>
  list.map((p): KustomizePatch => ({
    patch: yaml.dump(
      p.patch.map((op) => Object.fromEntries(Object.entries(op).filter(([, v]) => v !== undefined))),
      { noRefs: true },
    ),
    ...(target(p.target) ? { target: target(p.target) } : {}),
  })),
);

/** `images`: Kustomize image overrides. */
export const imagesSchema = optionalList(
  z.object({ name: requiredString, newName: optionalString, newTag: optionalString, digest: optionalString }),
).transform((list) =>
  list.map((i): ImageOverride => Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined)) as unknown as ImageOverride),
);

const stringMap = z.preprocess((v) => (v === null ? undefined : v), z.record(z.string()).optional());

/** `commonMetadata`: labels and annotations set on every object (not on selectors). */
export const commonMetadataSchema = optionalMapping({ labels: stringMap, annotations: stringMap }).transform((m) =>
  m ? { labels: m.labels ?? {}, annotations: m.annotations ?? {} } : undefined,
);

/**
 * `components`: folders relative to the Kustomization's path. Remote and absolute components are
 * refused here; that they stay inside the checkout is checked when the folder is read.
 */
export const componentsSchema = optionalList(
  requiredString.superRefine((c, ctx) => {
    if (c.startsWith("/") || /^[a-z][a-z0-9+.-]*:\/\//i.test(c) || /^(git@|github\.com\/)/.test(c)) {
      addProblem(ctx, `"${c}" is not a folder of the repository`, "give the component's folder relative to the Kustomization's path");
    }
  }),
);

export { optionalBoolean as ignoreMissingComponentsSchema };
