/** The outcome of {@link decidePrune}. */
export interface PruneDecision {
  readonly allowed: boolean;
  /** Objects the stack manages now. */
  readonly managed: number;
  /** Of those, how many the new desired state no longer declares. */
  readonly deleting: number;
  readonly message?: string;
}

/**
 * Whether a run may delete what the new desired state drops: refused when it would delete more than
 * `maxShare` of the managed objects (a wrong path or a broken commit, not a real change), unless
 * this run explicitly allows it. Names are Pulumi resource names. Pure.
 */
export function decidePrune(managed: readonly string[], desired: readonly string[], maxShare: number, allowLarge: boolean): PruneDecision {
  const want = new Set(desired);
  const deleting = managed.filter((m) => !want.has(m));
  const share = managed.length === 0 ? 0 : deleting.length / managed.length;
  if (deleting.length === 0 || share <= maxShare || allowLarge)
    return { allowed: true, managed: managed.length, deleting: deleting.length };
  const sample = deleting.slice(0, 5).join(", ") + (deleting.length > 5 ? ", ..." : "");
  return {
    allowed: false,
    managed: managed.length,
    deleting: deleting.length,
    message:
      `this change would delete ${deleting.length} of the ${managed.length} objects ferry manages (${Math.round(share * 100)}%, more than the ` +
      `${Math.round(maxShare * 100)}% allowed): ${sample}; refusing, nothing was applied.\n` +
      `  fix: if this is intended, run once with --allow-prune (or raise ferry:maxPruneShare); otherwise check the commit and the path`,
  };
}
