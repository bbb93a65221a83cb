import * as fs from "node:fs";
import * as path from "node:path";
import { Command, Option } from "commander";
import * as yaml from "js-yaml";
import { BootstrapOptions, defaultBootstrapOptions, validateBootstrapOptions } from "../../install/bootstrap-plan";
import { bootstrap, BootstrapResult } from "../../install/bootstrap";
import { ferryRoot } from "../../lib/paths";
import { SettingsError } from "../../reconcile/stack-settings";
import { defaultToolchainOptions, ensureToolchain } from "../../toolchain/install";
import { styler } from "../output";

interface BootstrapFlags {
  repo: string;
  path: string;
  ref: string;
  name: string;
  namespace: string;
  kubeconfig?: string;
  context?: string;
  backendUrl?: string;
  replicas?: string;
  image?: string;
  knownHosts?: string;
  values?: string;
  output: "text" | "json";
}

/** `ferry bootstrap`: installs ferry into a cluster, makes its first Stack and a deploy key for the repository. */
export function bootstrapCommand(): Command {
  return new Command("bootstrap")
    .description(
      "Install ferry into a cluster (the chart's objects, applied server-side), create the first Stack, and generate an SSH deploy key whose public half you add to the repository",
    )
    .requiredOption("--repo <url>", "the config repository's SSH URL (git@github.com:org/repo.git)")
    .requiredOption("--path <folder>", "the cluster folder inside the repository")
    .option("--ref <ref>", "branch, tag or commit to follow", "main")
    .option("--name <stack>", "name of the first Stack object", "cluster")
    .option("--namespace <ns>", "namespace of ferry and the Stack", "ferry-system")
    .option("--kubeconfig <file>", "kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kubeconfig context (default: the current one)")
    .option("--backend-url <url>", "the Pulumi backend all replicas share (s3://bucket, https://api.pulumi.com)")
    .option("--replicas <n>", "agent replicas (default: the chart's, 2)")
    .option("--image <ref>", "the agent's image (default: the chart's)")
    .option("--known-hosts <file>", "known_hosts lines of the git host, stored beside the deploy key")
    .option("--values <file>", "chart values of your own (YAML); the flags above win")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (flags: BootstrapFlags) => {
      const options = optionsFromFlags(flags);
      validateBootstrapOptions(options); // before the toolchain: a wrong flag fails at once
      const toolchain = await ensureToolchain(
        defaultToolchainOptions({ only: ["helm", "kubectl"], progress: (l) => process.stderr.write(`${l}\n`) }),
      );
      const dim = styler(process.stderr).dim;
      const result = await bootstrap(options, {
        access: { kubeconfig: flags.kubeconfig, context: flags.context },
        helm: toolchain.bin("helm"),
        kubectl: toolchain.bin("kubectl"),
        chartDir: path.join(ferryRoot(), "charts", "ferry"),
        progress: (line) => process.stderr.write(dim(`${line}\n`)),
      });
      printResult(result, options, flags.output === "json");
    });
}

function optionsFromFlags(flags: BootstrapFlags): BootstrapOptions {
  const replicas = flags.replicas === undefined ? undefined : Number(flags.replicas);
  if (replicas !== undefined && !Number.isInteger(replicas))
    throw new SettingsError(`--replicas ${flags.replicas}: give a whole number of at least 1`);
  return defaultBootstrapOptions({
    repo: flags.repo,
    path: flags.path,
    ref: flags.ref,
    name: flags.name,
    namespace: flags.namespace,
    backendUrl: flags.backendUrl,
    replicas,
    image: flags.image,
    knownHosts: flags.knownHosts === undefined ? undefined : readFile(flags.knownHosts, "--known-hosts"),
    values: flags.values === undefined ? undefined : parseValues(flags.values),
  });
}

function readFile(file: string, flag: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

function parseValues(file: string): Record<string, unknown> {
  const parsed = yaml.load(readFile(file, "--values"));
  if (parsed === undefined || parsed === null) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed))
    throw new SettingsError(`--values ${file}: must be a YAML mapping of chart values`);
  return parsed as Record<string, unknown>;
}

function printResult(result: BootstrapResult, options: BootstrapOptions, json: boolean): void {
  if (json) {
    const { namespace, stack, publicKey, secret } = result;
    process.stdout.write(JSON.stringify({ namespace, stack, publicKey, secret }, null, 2) + "\n");
    return;
  }
  const s = styler(process.stdout);
  process.stdout.write(
    [
      `${s.green("✓")} ferry is installed in namespace ${result.namespace}; Stack ${result.namespace}/${result.stack} follows ${options.repo} (${options.ref}, ${options.path}).`,
      "",
      `Deploy key (Secret ${result.namespace}/${result.secret}${result.keyCreated ? ", new" : ", kept from an earlier run"}):`,
      "",
      result.publicKey,
      "",
      `Add it as a read-only deploy key of ${options.repo}`,
      '(GitHub: Settings > Deploy keys > Add deploy key, leave "Allow write access" off; GitLab: Settings > Repository > Deploy keys).',
      `Then watch it: kubectl -n ${result.namespace} get stacks; kubectl -n ${result.namespace} wait --for=condition=Ready stack/${result.stack}`,
      "",
    ].join("\n"),
  );
}
