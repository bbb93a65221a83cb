// Generated config-repo content for the benchmarks.

/** Manifests of `size` objects in namespace `ns`: a Namespace, one Deployment per ten objects, ConfigMaps. */
export function manifests(ns: string, size: number, version: string): Record<string, string> {
  const files: Record<string, string> = { "ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n` };
  for (let i = 1; i < size; i++) {
    files[`obj-${i}.yaml`] =
      i % 10 === 0
        ? `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d-${i}, namespace: ${ns}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: d-${i}}}\n  template:\n    metadata: {labels: {app: d-${i}}}\n    spec: {containers: [{name: c, image: nginx}]}\n`
        : `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c-${i}, namespace: ${ns}}\ndata: {v: "${i === 1 ? version : "1"}"}\n`;
  }
  return files;
}
