/**
 * A git reference as Flux and helm-operator name it, kept typed from the manifest to git so that
 * nothing has to guess later whether a string was a branch, a tag, a range or a commit.
 */
export type GitRef =
  /** The tip of a branch of the remote. */
  | { readonly kind: "branch"; readonly branch: string }
  /** A tag, lightweight or annotated. */
  | { readonly kind: "tag"; readonly tag: string }
  /** The highest tag whose name is a version satisfying the range (`v1.2.3` counts as 1.2.3). */
  | { readonly kind: "semver"; readonly range: string }
  /** One commit, by its SHA; fetched by SHA when no branch or tag brought it. */
  | { readonly kind: "commit"; readonly sha: string }
  /** A full ref name fetched as it is, e.g. `refs/pull/1/head` (GitRepository `spec.ref.name`). */
  | { readonly kind: "name"; readonly name: string }
  /**
   * A name that may be a branch, a tag or a commit (helm-operator's `spec.chart.ref`, which it handed
   * to `git rev-list`; the config repo's `ferry:ref`): resolved as a branch, else a tag, else a commit.
   */
  | { readonly kind: "auto"; readonly ref: string };

/** How a ref is named in messages: `branch "main"`, `semver range ">=1.0.0 <2.0.0"`, ... */
export function describeGitRef(ref: GitRef): string {
  switch (ref.kind) {
    case "branch":
      return `branch "${ref.branch}"`;
    case "tag":
      return `tag "${ref.tag}"`;
    case "semver":
      return `semver range "${ref.range}"`;
    case "commit":
      return `commit ${ref.sha}`;
    case "name":
      return `ref "${ref.name}"`;
    case "auto":
      return `branch, tag or commit "${ref.ref}"`;
  }
}
