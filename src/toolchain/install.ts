import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { run, runChecked } from "../lib/exec";
import { withFileLock } from "../lib/file-lock";
import { cacheDir, ferryRoot } from "../lib/paths";
import { COMPONENTS, componentKey, probeAccepts, probedVersion, PULUMI_KUBERNETES_VERSION, ToolComponent } from "./components";

/** Options for {@link ensureToolchain}; see {@link defaultToolchainOptions}. */
export interface ToolchainOptions {
  /** Root of the version-keyed cache ($FERRY_CACHE_DIR/toolchain by default). */
  readonly dir: string;
  /** Where the wrapper modules live (toolchain/modules in the ferry package). */
  readonly modulesDir: string;
  /** Environment used to look up binaries on PATH and to run `go`. */
  readonly env: NodeJS.ProcessEnv;
  /** Receives one line per step. */
  readonly progress: (line: string) => void;
  /** Only these components (by name); all by default. */
  readonly only?: readonly string[];
}

/** The defaults: cache under the user cache dir (or $FERRY_TOOLCHAIN_DIR), progress on stderr. */
export function defaultToolchainOptions(overrides: Partial<ToolchainOptions> = {}): ToolchainOptions {
  const env = overrides.env ?? process.env;
  return {
    dir: env.FERRY_TOOLCHAIN_DIR ? path.resolve(env.FERRY_TOOLCHAIN_DIR) : path.join(cacheDir(env), "toolchain"),
    modulesDir: path.join(ferryRoot(), "toolchain", "modules"),
    env,
    progress: (line) => process.stderr.write(`${line}\n`),
    ...overrides,
  };
}

/** Where each binary of the toolchain is, and the Pulumi root for the Automation API. */
export interface Toolchain {
  /** Absolute path of a binary by file name (e.g. "kube-apiserver"). */
  readonly bin: (name: string) => string;
  /** A directory whose bin/ holds pulumi, its Node.js language host and the Kubernetes provider. */
  readonly pulumiRoot: string;
  /** How each component was provided. */
  readonly sources: Readonly<Record<string, "cache" | "path" | "built">>;
}

/**
 * Makes sure every pinned binary is available: from the cache, from PATH when its version is accepted
 * (the pinned one; for the Pulumi CLI any release from 3.184.0 on, with the language host beside it),
 * the Kubernetes provider from the user's Pulumi plugins, or built with `go build` into the cache. Safe to rerun after an interruption:
 * a component only counts as installed once its folder is complete.
 */
export async function ensureToolchain(options: ToolchainOptions = defaultToolchainOptions()): Promise<Toolchain> {
  const wanted = COMPONENTS.filter((c) => !options.only || options.only.includes(c.name));
  const bins = new Map<string, string>();
  const sources: Record<string, "cache" | "path" | "built"> = {};
  let step = 0;
  for (const component of wanted) {
    step++;
    const label = `toolchain [${step}/${wanted.length}] ${component.name} ${component.version}`;
    const root = path.join(options.dir, componentKey(component));
    const installed = path.join(root, "bin");
    if (isComplete(component, root)) {
      sources[component.name] = "cache";
    } else {
      const found = await findOnSystem(component, options.env, (line) => options.progress(`${label}: ${line}`));
      if (found) {
        options.progress(`${label}: using ${found.binaries.get(component.binaries[0]!.name)} (${found.why})`);
        for (const [name, p] of found.binaries) bins.set(name, p);
        sources[component.name] = "path";
        continue;
      }
      const started = Date.now();
      // One build per component and version across processes; who waits re-checks, as the holder may have built it.
      const built = await withFileLock(
        `${root}.build-lock`,
        { what: `building ${component.name} ${component.version}`, progress: (line) => options.progress(`${label}: ${line}`) },
        async () => {
          if (isComplete(component, root)) return false;
          options.progress(`${label}: building from Go modules (first run only, this takes a few minutes)...`);
          await build(component, root, options);
          return true;
        },
      );
      options.progress(
        built ? `${label}: built in ${Math.round((Date.now() - started) / 1000)}s` : `${label}: built by another process meanwhile`,
      );
      sources[component.name] = built ? "built" : "cache";
    }
    for (const b of component.binaries) bins.set(b.name, path.join(installed, b.name));
  }
  const pulumiRoot = linkPulumiRoot(options.dir, bins);
  return {
    bin: (name) => {
      const p = bins.get(name);
      if (!p) throw new Error(`toolchain: no binary ${name} (is it part of the components asked for?)`);
      return p;
    },
    pulumiRoot,
    sources,
  };
}

function isComplete(component: ToolComponent, root: string): boolean {
  return fs.existsSync(path.join(root, ".complete")) && component.binaries.every((b) => fs.existsSync(path.join(root, "bin", b.name)));
}

/**
 * The Kubernetes provider of the pinned release installed as a Pulumi plugin (`pulumi plugin install
 * resource kubernetes v4.25.0`): under $PULUMI_HOME, else ~/.pulumi, as the Pulumi CLI looks for it.
 * Only the pinned release: the program's SDK (`@pulumi/kubernetes`) and the provider's schema must match.
 */
export function installedProviderPlugin(env: NodeJS.ProcessEnv): string | undefined {
  const home = env.PULUMI_HOME || path.join(env.HOME || os.homedir(), ".pulumi");
  const dir = path.join(home, "plugins", `resource-kubernetes-v${PULUMI_KUBERNETES_VERSION}`);
  const plugin = path.join(dir, "pulumi-resource-kubernetes");
  // Pulumi leaves `<dir>.partial` beside a plugin whose download or unpacking did not finish.
  return isExecutable(plugin) && !fs.existsSync(`${dir}.partial`) ? plugin : undefined;
}

/** Binaries found outside the cache, and why they were accepted (said by `ferry toolchain install`). */
interface FoundOnSystem {
  readonly binaries: ReadonlyMap<string, string>;
  readonly why: string;
}

/** A matching installation outside the cache: binaries on PATH, or the provider as an installed Pulumi plugin. */
async function findOnSystem(
  component: ToolComponent,
  env: NodeJS.ProcessEnv,
  refused: (line: string) => void,
): Promise<FoundOnSystem | undefined> {
  if (component.name === "pulumi-resource-kubernetes") {
    const plugin = installedProviderPlugin(env);
    return plugin
      ? { binaries: new Map([["pulumi-resource-kubernetes", plugin]]), why: `the Pulumi plugin of the pinned release ${component.version}` }
      : undefined;
  }
  const found = new Map<string, string>();
  let besides: string[] = [];
  let why = "on PATH: the pinned release";
  for (const b of component.binaries) {
    // Binaries without a version probe are taken only from beside an accepted one (e.g. the language host),
    // or beside what it links to (a package manager's symlink in /usr/local/bin to ~/.pulumi/bin/pulumi).
    const candidate = b.probe ? whichOnPath(b.name, env) : besides.map((d) => path.join(d, b.name)).find(isExecutable);
    if (!candidate || !isExecutable(candidate)) return undefined;
    if (b.probe) {
      const out = await run(candidate, b.probe.args, { env, timeoutMs: 20_000 }).catch(() => undefined);
      const output = out ? `${out.stdout}\n${out.stderr}` : "";
      if (!out || !probeAccepts(output, b.probe)) {
        const version = probedVersion(output);
        const wanted = b.probe.minimum ? `${b.probe.minimum.version} or newer within its major` : b.probe.expect;
        refused(`not using ${candidate} (${version ? `v${version}` : "no version found"}; accepted: ${wanted})`);
        return undefined;
      }
      const version = `v${probedVersion(output) ?? ""}`;
      why =
        !b.probe.minimum || version === b.probe.expect
          ? "on PATH: the pinned release"
          : `on PATH: ${version} is at least ${b.probe.minimum.version}, ${b.probe.minimum.why}`;
    }
    if (besides.length === 0) besides = [path.dirname(candidate), path.dirname(fs.realpathSync(candidate))];
    found.set(b.name, candidate);
  }
  return { binaries: found, why };
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function whichOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** The versions of a component ferry takes from PATH, as said to the user. */
function acceptedVersions(component: ToolComponent): string {
  const minimum = component.binaries.find((b) => b.probe?.minimum)?.probe?.minimum;
  return minimum ? `${minimum.version} or newer (within major ${minimum.version.split(".")[0]})` : component.version;
}

async function build(component: ToolComponent, root: string, options: ToolchainOptions): Promise<void> {
  const go = whichOnPath("go", options.env);
  if (!go) {
    throw new Error(
      `toolchain: ${component.name} ${component.version} is not installed and Go is not on PATH to build it.\n` +
        `Install Go 1.24 or newer (for example your distribution's golang package, or the official tarball in /usr/local/go) ` +
        `and put its bin/ on PATH, then run \`ferry toolchain install\` again. ` +
        `Alternatively install ${component.binaries.map((b) => b.name).join(", ")} ${acceptedVersions(component)} yourself and put them on PATH.`,
    );
  }
  const work = path.join(options.dir, "build", componentKey(component));
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const source = path.join(options.modulesDir, component.module);
  for (const f of fs.readdirSync(source)) fs.copyFileSync(path.join(source, f), path.join(work, f));

  const env: NodeJS.ProcessEnv = { ...options.env, CGO_ENABLED: "0", GOFLAGS: "-mod=readonly" };
  if (component.generate === "kubernetes-provider-schema") await generateProviderSchema(go, work, env);

  // Everything goes to <root>.partial first and is renamed into place at the end, so an
  // interrupted build never leaves a folder that looks complete.
  const staging = `${root}.partial`;
  const stagingBin = path.join(staging, "bin");
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(stagingBin, { recursive: true });
  const args = ["build", "-trimpath", "-ldflags", ["-s", "-w", ...component.ldflags].join(" ")];
  if (component.tags?.length) args.push("-tags", component.tags.join(","));
  args.push("-o", stagingBin + path.sep, ...component.binaries.map((b) => b.goPackage));
  await runChecked(go, args, { cwd: work, env });
  if (component.binaries.length === 1) {
    // `go build -o dir/` names a binary after its package path (etcd's is "server"); give it its real name.
    const built = fs.readdirSync(stagingBin);
    if (built.length === 1 && built[0] !== component.binaries[0]!.name) {
      fs.renameSync(path.join(stagingBin, built[0]!), path.join(stagingBin, component.binaries[0]!.name));
    }
  }
  if (component.assets) {
    const dir = await moduleDir(go, work, env, component.assets.module);
    const into = path.join(staging, component.assets.into);
    fs.mkdirSync(into, { recursive: true });
    for (const f of component.assets.files) fs.copyFileSync(path.join(dir, f), path.join(into, path.basename(f)));
  }
  fs.writeFileSync(
    path.join(staging, ".complete"),
    JSON.stringify({ component: component.name, version: component.version, builtAt: new Date().toISOString() }) + "\n",
  );
  fs.rmSync(root, { recursive: true, force: true });
  fs.renameSync(staging, root);
  fs.rmSync(work, { recursive: true, force: true });
}

/** The folder of a module (as required by the wrapper module) in the Go module cache, downloading it if needed. */
async function moduleDir(go: string, work: string, env: NodeJS.ProcessEnv, mod: string): Promise<string> {
  const list = async (): Promise<string | undefined> =>
    (JSON.parse((await runChecked(go, ["list", "-m", "-json", mod], { cwd: work, env })).stdout) as { Dir?: string }).Dir;
  let dir = await list();
  if (!dir) {
    await runChecked(go, ["mod", "download", mod], { cwd: work, env });
    dir = await list();
  }
  if (!dir) throw new Error(`toolchain: cannot locate module ${mod} in the Go module cache`);
  return dir;
}

/**
 * The provider's main embeds schema-embed.json and terraform-mapping-embed.json, which upstream
 * generates at release time and leaves out of the module zip. Generate them from the module's
 * schema.json (with the version set) and terraform-mapping.json (minified), as upstream does.
 */
async function generateProviderSchema(go: string, work: string, env: NodeJS.ProcessEnv): Promise<void> {
  const dir = await moduleDir(go, work, env, "github.com/pulumi/pulumi-kubernetes/provider/v4");
  const cmdDir = path.join(dir, "cmd", "pulumi-resource-kubernetes");
  const schema = JSON.parse(fs.readFileSync(path.join(cmdDir, "schema.json"), "utf8")) as Record<string, unknown>;
  schema.version = PULUMI_KUBERNETES_VERSION;
  fs.writeFileSync(path.join(work, "schema-embed.json"), JSON.stringify(schema));
  const mapping = JSON.parse(fs.readFileSync(path.join(cmdDir, "terraform-mapping.json"), "utf8")) as unknown;
  fs.writeFileSync(path.join(work, "terraform-mapping-embed.json"), JSON.stringify(mapping));
}

/** The Automation API wants `<root>/bin/pulumi` with the plugins beside it: link them into one folder. */
function linkPulumiRoot(dir: string, bins: Map<string, string>): string {
  const names = ["pulumi", "pulumi-language-nodejs", "pulumi-resource-kubernetes"];
  if (!names.every((n) => bins.has(n))) return "";
  const root = path.join(dir, "pulumi-root");
  const binDir = path.join(root, "bin");
  fs.mkdirSync(binDir, { recursive: true });
  for (const n of names) {
    const link = path.join(binDir, n);
    const target = bins.get(n)!;
    let current: string | undefined;
    try {
      current = fs.readlinkSync(link);
    } catch {
      current = undefined;
    }
    if (current === target) continue;
    const tmp = `${link}.${process.pid}.tmp`;
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(target, tmp);
    fs.renameSync(tmp, link); // atomic replace: concurrent readers never see a missing link
  }
  return root;
}
