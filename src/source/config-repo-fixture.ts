import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { simpleGit } from "simple-git";

/** Author of commits made by ferry itself (demo and tests). */
export const FERRY_AUTHOR = { name: "Ferry Demo", email: "demo@ferry.invalid" };

/**
 * Creates a git repository whose first commit is a copy of `source` (e.g. examples/config-repo).
 * Returns the repository's folder; used by `ferry demo` and the tests.
 */
export async function initConfigRepo(source: string, into?: string, author = FERRY_AUTHOR): Promise<string> {
  const dir = into ?? fs.mkdtempSync(path.join(os.tmpdir(), "ferry-config-repo-"));
  fs.cpSync(source, dir, { recursive: true });
  const git = simpleGit(dir);
  await git.init(["--initial-branch=main"]);
  await git.addConfig("user.name", author.name).addConfig("user.email", author.email).addConfig("commit.gpgsign", "false");
  await git.add(".");
  await git.commit("Initial cluster configuration");
  return dir;
}
