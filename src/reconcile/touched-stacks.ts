/** Whether `file` is `folder` or below it (`""` is the repo's root). */
function isUnder(file: string, folder: string): boolean {
  const f = folder.replace(/^\.\/|\/$/g, "");
  return f === "" || f === "." || file === f || file.startsWith(`${f}/`);
}

/** Files that never change a cluster: documentation and the repo's own dot-folders (.github, .gitignore). */
function isInert(file: string): boolean {
  return /\.(md|txt)$/i.test(file) || /^\.[^/]+/.test(file) || /(^|\/)(LICENSE|OWNERS|CODEOWNERS)$/.test(file);
}

/**
 * Whether a change (the files a pull request touches) concerns a stack: a file in its cluster folder,
 * or in a folder no stack owns (shared bases, apps, charts, which any stack may use). Files of other
 * stacks' folders and documentation (anywhere) do not. Errs on the side of previewing. Pure.
 */
export function touchesStack(changed: readonly string[], folder: string, stackFolders: readonly string[]): boolean {
  return changed.some((file) => !isInert(file) && (isUnder(file, folder) || !stackFolders.some((f) => isUnder(file, f))));
}
