import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { z } from "zod";
import { ferryRoot, stateDir } from "../lib/paths";
import { LocalAddressPolicy, SourcePolicy, sourcePolicy } from "../desired-state/source-policy";
import { GitAuth } from "../source/git-source";

/** What `stacks/Pulumi.<stack>.yaml` may say about a cluster (the `ferry:` config keys). */
const StackFileSchema = z.object({
  config: z
    .object({
      "ferry:repo": z.string().optional(),
      "ferry:ref": z.string().optional(),
      "ferry:path": z.string().optional(),
      "ferry:checkout": z.string().optional(),
      "ferry:kubeconfig": z.string().optional(),
      "ferry:context": z.string().optional(),
      "ferry:clusterIdentifier": z.string().optional(),
      "ferry:maxPruneShare": z.union([z.number(), z.string().regex(/^(0(\.\d+)?|1(\.0+)?)$/)]).optional(),
      "ferry:allowCrossNamespaceRefs": z.boolean().optional(),
      "ferry:allowCrossNamespaceSourceRefs": z.boolean().optional(),
      "ferry:allowedHosts": z.array(z.string().min(1)).optional(),
      "ferry:localAddresses": z.enum(["allow", "refuse", "local-cluster"]).optional(),
      "ferry:allowRemoteBases": z.boolean().optional(),
      "ferry:kubeClientQps": z.number().positive().optional(),
      "ferry:kubeClientBurst": z.number().int().positive().optional(),
      "ferry:parallel": z.number().int().positive().optional(),
    })
    .passthrough()
    .optional(),
});

/** By default one run may delete at most half of the objects a stack manages. */
export const DEFAULT_MAX_PRUNE_SHARE = 0.5;

/** Command-line or caller overrides; anything left out comes from the stack file or the defaults. */
export interface SyncInput {
  readonly stack: string;
  readonly repo?: string;
  readonly ref?: string;
  readonly path?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly clusterIdentifier?: string;
  readonly backendUrl?: string;
  readonly allowEmpty?: boolean;
  /** Allow this run to delete more than maxPruneShare of the managed objects. */
  readonly allowPrune?: boolean;
  /** Folder of the stack files; false when the caller has all settings (the runner's config file). */
  readonly stacksDir?: string | false;
  /** What repo content may reach; each field left out comes from the stack file, else the default. */
  readonly policy?: Partial<SourcePolicy>;
}

/** Fully resolved settings of a sync: every default applied, in this one place. */
export interface SyncSettings {
  readonly stack: string;
  readonly repo: string;
  readonly ref?: string;
  readonly path: string;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly clusterIdentifier: string;
  readonly backendUrl: string;
  readonly allowEmpty: boolean;
  /** Largest share of managed objects one run may delete (0..1). */
  readonly maxPruneShare: number;
  readonly allowPrune: boolean;
  /** Credentials of the config repo: sent to its own URL only. */
  readonly auth: GitAuth;
  /** What the repo's content may reach (namespaces, hosts, remote bases). */
  readonly policy: SourcePolicy;
  /** Environment for Pulumi: the secrets passphrase (file), cloud credentials pass through. */
  readonly pulumiEnv: Readonly<Record<string, string>>;
  readonly checkoutDir: string;
  readonly workDir: string;
  /** ferry's state folder (checkouts, workspaces, previews, the default backend). */
  readonly stateDir: string;
  /**
   * How hard a run drives the API server and the engine: the provider's client rate limit
   * (`ferry:kubeClientQps`, `ferry:kubeClientBurst`; the provider's own 50/120 when unset) and how
   * many resource operations the engine runs at once (`ferry:parallel`; Pulumi's default when unset).
   */
  readonly throughput: { readonly qps?: number; readonly burst?: number; readonly parallel?: number };
}

/** A setting that is missing or invalid, with how to fix it. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SettingsError";
  }
}

/** Reads `<stacksDir>/Pulumi.<stack>.yaml` if it exists. */
export function readStackFile(stacksDir: string, stack: string): z.infer<typeof StackFileSchema>["config"] {
  const file = path.join(stacksDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) return undefined;
  const parsed = StackFileSchema.safeParse(yaml.load(fs.readFileSync(file, "utf8")) ?? {});
  if (!parsed.success) {
    throw new SettingsError(`${file}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  return parsed.data.config;
}

/**
 * Resolves a sync's settings: explicit input, then the stack file, then defaults (a local file
 * backend and a generated passphrase under the state dir). Secrets come from the environment:
 * FERRY_GIT_TOKEN(_FILE), FERRY_GIT_SSH_KEY_FILE, FERRY_GIT_KNOWN_HOSTS_FILE, PULUMI_CONFIG_PASSPHRASE(_FILE).
 */
export function resolveSyncSettings(input: SyncInput, env: NodeJS.ProcessEnv = process.env): SyncSettings {
  const stacksDir = input.stacksDir === false ? undefined : stacksDirOf(input.stacksDir, env);
  const file = (stacksDir && readStackFile(stacksDir, input.stack)) || {};
  const state = stateDir(env);
  const repo = input.repo ?? file["ferry:repo"];
  if (!repo) {
    throw new SettingsError(
      `stack "${input.stack}" has no config repo: pass --repo <url|path>, or set ferry:repo in ${path.join(stacksDir ?? "stacks", `Pulumi.${input.stack}.yaml`)}`,
    );
  }
  const folder = input.path ?? file["ferry:path"];
  if (!folder) {
    throw new SettingsError(`stack "${input.stack}" has no cluster folder: pass --path <folder>, or set ferry:path in its stack file`);
  }
  const backendUrl = input.backendUrl ?? env.PULUMI_BACKEND_URL ?? `file://${path.join(state, "backend")}`;
  const tokenFile = env.FERRY_GIT_TOKEN_FILE;
  const token = env.FERRY_GIT_TOKEN ?? (tokenFile ? fs.readFileSync(tokenFile, "utf8").trim() : undefined);
  const kubeconfig = input.kubeconfig ?? file["ferry:kubeconfig"];
  return {
    stack: input.stack,
    repo,
    ref: input.ref ?? file["ferry:ref"],
    path: folder,
    kubeconfig: kubeconfig ? path.resolve(expandHome(kubeconfig, env)) : undefined,
    context: input.context ?? file["ferry:context"],
    clusterIdentifier: input.clusterIdentifier ?? file["ferry:clusterIdentifier"] ?? input.stack,
    throughput: { qps: file["ferry:kubeClientQps"], burst: file["ferry:kubeClientBurst"], parallel: file["ferry:parallel"] },
    backendUrl,
    allowEmpty: input.allowEmpty ?? false,
    maxPruneShare: Number(file["ferry:maxPruneShare"] ?? DEFAULT_MAX_PRUNE_SHARE),
    allowPrune: input.allowPrune ?? input.allowEmpty ?? false,
    auth: { token, sshKeyFile: env.FERRY_GIT_SSH_KEY_FILE, knownHostsFile: env.FERRY_GIT_KNOWN_HOSTS_FILE },
    policy: sourcePolicy({
      allowCrossNamespaceRefs: input.policy?.allowCrossNamespaceRefs ?? file["ferry:allowCrossNamespaceRefs"],
      allowCrossNamespaceSourceRefs: input.policy?.allowCrossNamespaceSourceRefs ?? file["ferry:allowCrossNamespaceSourceRefs"],
      allowedHosts: input.policy?.allowedHosts ?? file["ferry:allowedHosts"],
      localAddresses: input.policy?.localAddresses ?? (file["ferry:localAddresses"] as LocalAddressPolicy | undefined),
      allowRemoteBases: input.policy?.allowRemoteBases ?? file["ferry:allowRemoteBases"],
    }),
    pulumiEnv: passphraseEnv(state, env),
    checkoutDir: path.join(state, "checkouts", input.stack),
    stateDir: state,
    workDir: path.join(state, "workspaces", createHash("sha256").update(backendUrl).digest("hex").slice(0, 8), input.stack),
  };
}

/** The stacks that have a stack file (`Pulumi.<stack>.yaml`) in a folder, sorted. */
export function listStackFiles(stacksDir: string): string[] {
  if (!fs.existsSync(stacksDir)) return [];
  return fs
    .readdirSync(stacksDir)
    .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
    .filter((s): s is string => !!s)
    .sort();
}

/** The stacks folder a command reads: --stacks-dir, $FERRY_STACKS_DIR, else ferry's own stacks/. */
export function stacksDirOf(input: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return input ?? env.FERRY_STACKS_DIR ?? path.join(ferryRoot(), "stacks");
}

function expandHome(p: string, env: NodeJS.ProcessEnv): string {
  return p.startsWith("~/") ? path.join(env.HOME ?? "", p.slice(2)) : p;
}

/** The secrets passphrase: the user's, or one generated once and kept (mode 0600) in the state dir. */
function passphraseEnv(state: string, env: NodeJS.ProcessEnv): Record<string, string> {
  if (env.PULUMI_CONFIG_PASSPHRASE !== undefined) return { PULUMI_CONFIG_PASSPHRASE: env.PULUMI_CONFIG_PASSPHRASE };
  if (env.PULUMI_CONFIG_PASSPHRASE_FILE) return { PULUMI_CONFIG_PASSPHRASE_FILE: env.PULUMI_CONFIG_PASSPHRASE_FILE };
  const file = path.join(state, "passphrase");
  if (!fs.existsSync(file)) {
    fs.mkdirSync(state, { recursive: true });
    try {
      fs.writeFileSync(file, randomBytes(24).toString("hex"), { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err; // another ferry made it first
    }
  }
  return { PULUMI_CONFIG_PASSPHRASE_FILE: file };
}
