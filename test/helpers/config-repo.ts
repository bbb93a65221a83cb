import * as fs from "node:fs";
import * as path from "node:path";
import { simpleGit } from "simple-git";
import { ferryRoot } from "../../src/lib/paths";

/** The folder of a fixture repo history: test/fixtures/repos/<scenario>. */
export function fixtureRepo(scenario: string): string {
  return path.join(ferryRoot(), "test", "fixtures", "repos", scenario);
}

/** A real git repository whose content is replaced by fixture steps, one commit each. */
export class ConfigRepo {
  private constructor(
    readonly dir: string,
    private readonly scenario: string,
    private readonly vars: Readonly<Record<string, string>>,
  ) {}

  /** Creates an empty repository on branch main; `${NAME}` in fixture files is replaced by vars[NAME]. */
  static async create(dir: string, scenario: string, vars: Readonly<Record<string, string>> = {}): Promise<ConfigRepo> {
    fs.mkdirSync(dir, { recursive: true });
    const git = simpleGit(dir);
    await git.init(["--initial-branch=main"]);
    await git.addConfig("commit.gpgsign", "false");
    return new ConfigRepo(dir, scenario, vars);
  }

  /** Makes the working tree equal to `stepN/` of the scenario and commits it; returns the commit SHA. */
  async commitStep(step: string, subject: string, author = { name: "Alice Example", email: "alice@example.com" }): Promise<string> {
    for (const entry of fs.readdirSync(this.dir))
      if (entry !== ".git") fs.rmSync(path.join(this.dir, entry), { recursive: true, force: true });
    fs.cpSync(path.join(fixtureRepo(this.scenario), step), this.dir, { recursive: true });
    if (Object.keys(this.vars).length > 0) this.substitute(this.dir);
    return this.commitAll(subject, author);
  }

  private substitute(dir: string): void {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.name === ".git") continue;
      if (entry.isDirectory()) this.substitute(p);
      else if (/\.ya?ml$/.test(entry.name)) {
        const text = fs.readFileSync(p, "utf8").replace(/\$\{([A-Z_]+)\}/g, (m, k: string) => this.vars[k] ?? m);
        fs.writeFileSync(p, text);
      }
    }
  }

  /** Writes (or, with `undefined`, deletes) files of the working tree; commit with {@link commitAll}. */
  edit(files: Readonly<Record<string, string | undefined>>): this {
    for (const [rel, text] of Object.entries(files)) {
      const p = path.join(this.dir, rel);
      if (text === undefined) fs.rmSync(p, { force: true });
      else {
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, text);
      }
    }
    return this;
  }

  /** The SHA of the commit checked out. */
  async head(): Promise<string> {
    return (await simpleGit(this.dir).revparse(["HEAD"])).trim();
  }

  /** Switches to a branch, creating it from the current commit when `create` is set. */
  async checkout(branch: string, create = false): Promise<this> {
    await simpleGit(this.dir).raw(["checkout", ...(create ? ["-b"] : []), branch]);
    return this;
  }

  /** Commits whatever the working tree holds; returns the commit SHA. */
  async commitAll(subject: string, author = { name: "Alice Example", email: "alice@example.com" }): Promise<string> {
    // Only what git needs: simple-git refuses variables such as EDITOR that may be in the environment.
    const git = simpleGit(this.dir).env({
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      GIT_AUTHOR_NAME: author.name,
      GIT_AUTHOR_EMAIL: author.email,
      GIT_COMMITTER_NAME: author.name,
      GIT_COMMITTER_EMAIL: author.email,
    });
    await git.add(["-A"]);
    await git.commit(subject, undefined, { "--allow-empty": null });
    return (await git.revparse(["HEAD"])).trim();
  }
}
