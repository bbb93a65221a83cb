import { SubstituteRef } from "../desired-state/flux-kustomization";
import { KubeObject } from "../desired-state/object-id";
import { sensitiveForms } from "../desired-state/sensitive-values";
import { defineKey } from "../desired-state/yaml-data";

/** Where `postBuild.substituteFrom` finds its ConfigMaps and Secrets: Git first, then the live cluster. */
export interface SubstituteLookup {
  /** The ConfigMap or Secret the repository declares; undefined when it declares none. */
  declared(kind: "ConfigMap" | "Secret", namespace: string, name: string): KubeObject | undefined;
  /** The live ConfigMap or Secret; undefined when absent. */
  live(kind: "ConfigMap" | "Secret", namespace: string, name: string): Promise<KubeObject | undefined>;
}

/** The variables of a Flux Kustomization's postBuild, and whether any came from a Secret. */
export interface SubstitutionVariables {
  readonly vars: Readonly<Record<string, string>>;
  readonly fromSecret: boolean;
}

/**
 * kustomize-controller's variables: each `substituteFrom` ConfigMap or Secret in order (a later one
 * wins; newlines removed from the values), then the inline `substitute`, which wins over all. Each
 * reference is read in the Kustomization's own namespace (see {@link SubstituteRef}), from Git first,
 * else from the cluster; an absent one is an error unless `optional`. The values of Secrets join
 * `sensitive` and are never shown.
 */
export async function substitutionVariables(
  unit: string,
  substituteFrom: readonly SubstituteRef[],
  substitute: Readonly<Record<string, string>>,
  lookup: SubstituteLookup,
  sensitive: Set<string>,
): Promise<SubstitutionVariables> {
  const vars: Record<string, string> = {};
  let fromSecret = false;
  for (const ref of substituteFrom) {
    const source = lookup.declared(ref.kind, ref.namespace, ref.name) ?? (await lookup.live(ref.kind, ref.namespace, ref.name));
    if (!source) {
      if (ref.optional) continue;
      throw new Error(
        `${unit}: ${ref.kind}/${ref.namespace}/${ref.name} (postBuild.substituteFrom) is neither in the repository nor in the cluster; add it, or mark the entry \`optional: true\``,
      );
    }
    const secret = ref.kind === "Secret";
    fromSecret ||= secret;
    for (const [key, value] of Object.entries(dataOf(source))) {
      const v = value.replace(/\n/g, "");
      defineKey(vars, key, v);
      if (secret) for (const f of sensitiveForms(v)) sensitive.add(f);
    }
  }
  for (const [key, value] of Object.entries(substitute)) defineKey(vars, key, value);
  return { vars, fromSecret };
}

/** A ConfigMap's `data`, or a Secret's `data` (decoded) and `stringData` (a Secret in Git may use either). */
function dataOf(obj: KubeObject): Record<string, string> {
  const out: Record<string, string> = {};
  const data = isStringMap(obj.data) ? obj.data : {};
  if (obj.kind === "Secret") {
    for (const [k, v] of Object.entries(data)) defineKey(out, k, Buffer.from(v, "base64").toString("utf8"));
    if (isStringMap(obj.stringData)) for (const [k, v] of Object.entries(obj.stringData)) defineKey(out, k, v);
  } else {
    for (const [k, v] of Object.entries(data)) defineKey(out, k, v);
  }
  return out;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
}
