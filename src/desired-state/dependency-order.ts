/** Anything that names other items of its kind it must wait for (HelmReleases, Flux Kustomizations). */
export interface DependsOnItem {
  readonly name: string;
  readonly namespace: string;
  readonly dependsOn: readonly { readonly name: string; readonly namespace: string }[];
}

/**
 * Orders items so every item comes after what it `dependsOn`, keeping the input order wherever the
 * dependencies allow it. Pure; throws an Error naming the item for a dependency that is not in the
 * list, an item defined twice, or a cycle (naming every member of the cycle, in order).
 */
export function orderByDependsOn<T extends DependsOnItem>(items: readonly T[], kind: string): T[] {
  const key = (i: { name: string; namespace: string }): string => `${i.namespace}/${i.name}`;
  const show = (i: { name: string; namespace: string }): string => `${kind}/${i.namespace}/${i.name}`;
  const index = new Map<string, number>();
  items.forEach((item, i) => {
    if (index.has(key(item))) throw new Error(`${show(item)} is defined twice\n  fix: keep one definition, or rename one of them`);
    index.set(key(item), i);
  });
  for (const item of items) {
    for (const dep of item.dependsOn) {
      if (!index.has(key(dep))) {
        throw new Error(
          `${show(item)} dependsOn ${show(dep)}, which is not in the repository\n` +
            `  fix: add ${show(dep)}, or remove it from spec.dependsOn (the namespace defaults to the one of ${show(item)})`,
        );
      }
    }
  }

  // Repeatedly take the first item, in input order, whose dependencies are all placed: stable and O(n²),
  // which is nothing next to rendering a chart.
  const placed = new Set<string>();
  const remaining = [...items];
  const ordered: T[] = [];
  while (remaining.length > 0) {
    const next = remaining.findIndex((item) => item.dependsOn.every((d) => placed.has(key(d))));
    if (next < 0) {
      const cycle = findCycle(remaining, key, index, items);
      throw new Error(
        `${kind} dependsOn cycle: ${[...cycle, cycle[0]!].map(show).join(" -> ")}\n  fix: remove one of these dependsOn entries so the chain has an end`,
      );
    }
    const [item] = remaining.splice(next, 1);
    placed.add(key(item!));
    ordered.push(item!);
  }
  return ordered;
}

/** Walks dependsOn from the first blocked item until an item repeats; every blocked item leads into a cycle. */
function findCycle<T extends DependsOnItem>(
  blocked: readonly T[],
  key: (i: { name: string; namespace: string }) => string,
  index: ReadonlyMap<string, number>,
  items: readonly T[],
): T[] {
  const blockedKeys = new Set(blocked.map(key));
  const path: T[] = [];
  const seen = new Map<string, number>();
  let current: T = blocked[0]!;
  while (!seen.has(key(current))) {
    seen.set(key(current), path.length);
    path.push(current);
    const dep = current.dependsOn.find((d) => blockedKeys.has(key(d)))!;
    current = items[index.get(key(dep))!]!;
  }
  return path.slice(seen.get(key(current)));
}
