import * as path from "node:path";
import { HelmReleaseSpec } from "../desired-state/helm-release";
import { readCheckoutFile, resolveInCheckout } from "../desired-state/load-desired-state";
import { GuardError } from "../desired-state/manifest-error";
import { isMapping } from "../desired-state/yaml-data";
import { mergeValues, parseValuesText } from "./helm-values";

/**
 * Values that make `helm template` render as if the chart's values.yaml were `replacement`: every
 * default the replacement does not set becomes null (Helm deletes a default set to null), and the
 * replacement's own values are kept. Pure.
 */
export function replacingDefaults(defaults: Record<string, unknown>, replacement: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, d] of Object.entries(defaults)) {
    const r = Object.prototype.hasOwnProperty.call(replacement, key) ? replacement[key] : undefined;
    if (r === undefined) Object.defineProperty(out, key, { value: null, enumerable: true, writable: true, configurable: true });
    else if (isMapping(d) && isMapping(r))
      Object.defineProperty(out, key, { value: replacingDefaults(d, r), enumerable: true, writable: true, configurable: true });
  }
  return mergeValues([out, replacement]);
}

/**
 * Flux `chart.spec.valuesFiles` for a chart from git: the files (relative to the repository root, as
 * source-controller reads them; inside the checkout) merged
 * in order into the chart's values, replacing its values.yaml as source-controller does; as values
 * for helm, to be merged under valuesFrom and values. `{}` when the release lists none. A missing
 * file is an error unless `ignoreMissingValuesFiles`.
 */
export function valuesFilesLayer(spec: HelmReleaseSpec, root: string, chartDir: string): Record<string, unknown> {
  if (spec.valuesFiles.length === 0) return {};
  const name = `HelmRelease/${spec.namespace}/${spec.name}`;
  const chartRel = path.relative(root, chartDir) || ".";
  // source-controller reads them relative to the source's root (`./charts/app/values-prod.yaml`).
  const read = (rel: string, optional: boolean): Record<string, unknown> | undefined => {
    let text: string;
    try {
      resolveInCheckout(root, rel, "file");
      text = readCheckoutFile(root, rel);
    } catch (err) {
      if (optional && !(err instanceof GuardError)) return undefined;
      throw new Error(`${name}: spec.chart.spec.valuesFiles: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return parseValuesText(text, `${name}: values file ${rel}`);
  };
  const files = spec.valuesFiles.map((f) => read(f, spec.ignoreMissingValuesFiles) ?? {});
  const defaults = read(path.posix.join(chartRel.split(path.sep).join("/"), "values.yaml"), true) ?? {};
  return replacingDefaults(defaults, mergeValues(files));
}
