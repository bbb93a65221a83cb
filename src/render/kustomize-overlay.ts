import * as path from "node:path";
import { isEmptyOverlay, KustomizeOverlay, KustomizePatch } from "../desired-state/kustomize-fields";
import { assertKustomizationConfined, resolveInCheckout } from "../desired-state/load-desired-state";
import { GuardError } from "../desired-state/manifest-error";

/** The file of an overlay folder that holds the objects to change. */
export const OVERLAY_BASE_FILE = "base.yaml";

/** A Kustomize build of objects already rendered, with what Flux adds: see {@link RenderTools.kustomizeOverlay}. */
export interface OverlayRequest {
  /** The unit being built (`Kustomization/<ns>/<name>`, `HelmRelease/<ns>/<name>`): what errors name. */
  readonly unit: string;
  /** The YAML of the objects the overlay changes (written to {@link OVERLAY_BASE_FILE} of a folder of ferry's own). */
  readonly base: string;
  /** The overlay; its components are absolute folders already known to stay inside the checkout. */
  readonly overlay: KustomizeOverlay;
}

/**
 * The kustomization.yaml of an overlay folder, as kustomize-controller writes one: the base objects,
 * then components, patches, images, name prefix/suffix and common metadata (labels not on selectors).
 * `componentPaths` are the components as the overlay folder reaches them (relative: Kustomize refuses
 * absolute ones). Written as JSON, so no value is re-read as a YAML 1.1 boolean or number. Pure.
 */
export function overlayKustomization(overlay: KustomizeOverlay, componentPaths: readonly string[]): string {
  const k: Record<string, unknown> = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    resources: [OVERLAY_BASE_FILE],
  };
  if (componentPaths.length > 0) k.components = [...componentPaths];
  if (overlay.patches.length > 0) k.patches = overlay.patches.map(kustomizePatch);
  if (overlay.images.length > 0) k.images = overlay.images.map((i) => ({ ...i }));
  if (overlay.namePrefix !== undefined) k.namePrefix = overlay.namePrefix;
  if (overlay.nameSuffix !== undefined) k.nameSuffix = overlay.nameSuffix;
  const meta = overlay.commonMetadata;
  if (meta && Object.keys(meta.annotations).length > 0) k.commonAnnotations = { ...meta.annotations };
  if (meta && Object.keys(meta.labels).length > 0) k.labels = [{ pairs: { ...meta.labels }, includeSelectors: false }];
  return `${JSON.stringify(k, null, 2)}\n`;
}

function kustomizePatch(p: KustomizePatch): Record<string, unknown> {
  return p.target ? { patch: p.patch, target: { ...p.target } } : { patch: p.patch };
}

/** Where an overlay's components are looked up and how far they may reach. */
export interface OverlayFolder {
  /** The checkout the components must stay in. */
  readonly checkout: string;
  /** The unit's folder, relative to the checkout (a Flux Kustomization's `path`): components are relative to it. */
  readonly dir: string;
  readonly allowRemoteBases: boolean;
}

/**
 * The overlay with its components resolved to absolute folders inside the checkout (each walked
 * like any Kustomize folder, so none of its bases leaves the checkout); with
 * `ignoreMissingComponents`, those that do not exist are left out. Throws a GuardError or
 * ConfinementError for a component that leaves the checkout, an Error for one that is missing.
 */
export function confinedOverlay(overlay: KustomizeOverlay, folder: OverlayFolder | undefined): KustomizeOverlay {
  if (overlay.components.length === 0) return overlay;
  if (!folder) throw new Error("components need a folder of the repository to be relative to");
  const components: string[] = [];
  for (const c of overlay.components) {
    const rel = path.posix.join(folder.dir, c);
    let abs: string;
    try {
      abs = resolveInCheckout(folder.checkout, rel, "folder");
    } catch (err) {
      // Only a folder that does not exist is skipped; one that leaves the checkout never is.
      if (overlay.ignoreMissingComponents && !(err instanceof GuardError) && /does not exist/.test(String(err))) continue;
      throw new Error(`component "${c}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    assertKustomizationConfined(folder.checkout, abs, folder.allowRemoteBases);
    components.push(abs);
  }
  return { ...overlay, components };
}

/** Runs an overlay through Kustomize (nothing to do when it is empty): the YAML of the changed objects. */
export async function applyOverlay(
  request: OverlayRequest,
  folder: OverlayFolder | undefined,
  run: (request: OverlayRequest) => Promise<string>,
): Promise<string> {
  if (isEmptyOverlay(request.overlay)) return request.base;
  return run({ ...request, overlay: confinedOverlay(request.overlay, folder) });
}

/**
 * A HelmRelease's post-renderers run over Helm's output in order, as helm-controller chains them.
 * With values from a Secret, Kustomize's own message is withheld (it may quote the objects).
 */
export async function postRender(
  unit: string,
  rendered: string,
  overlays: readonly KustomizeOverlay[],
  secretValues: boolean,
  run: (request: OverlayRequest) => Promise<string>,
): Promise<string> {
  let text = rendered;
  for (const [i, overlay] of overlays.entries()) {
    try {
      text = await applyOverlay({ unit, base: text, overlay }, undefined, run);
    } catch (err) {
      const why = secretValues
        ? "Kustomize's message is withheld because this release's values come from a Secret"
        : err instanceof Error
          ? err.message
          : String(err);
      throw new Error(`${unit}: spec.postRenderers[${i}] failed: ${why}; check its patches' targets and paths`, { cause: err });
    }
  }
  return text;
}
