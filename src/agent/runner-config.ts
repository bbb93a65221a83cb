import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { z } from "zod";
import { LOCAL_ADDRESS_POLICIES } from "../desired-state/source-policy";
import { parseDuration } from "../lib/duration";
import { MIN_API_TOKEN_LENGTH, readApiToken } from "./api-auth";

const duration = z
  .union([z.number(), z.string().regex(/^\d+(ms|s|m|h)$/, "a duration like 30s, 5m or 1h")])
  .transform((v) => (typeof v === "number" ? v * 1000 : parseDuration(v)));

/** What a stack's repo content may reach (SourcePolicy's fields; each left out: its default): a runner stack's and a Stack object's `policy`. */
export const PolicySchema = z
  .object({
    allowCrossNamespaceRefs: z.boolean().optional(),
    allowCrossNamespaceSourceRefs: z.boolean().optional(),
    allowedHosts: z.array(z.string().min(1)).optional(),
    localAddresses: z.enum(LOCAL_ADDRESS_POLICIES).optional(),
    allowRemoteBases: z.boolean().optional(),
  })
  .strict();

/** One stack (cluster) the runner keeps in sync. */
const StackSchema = z.object({
  name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, "letters, digits, '-', '_' and '.' only"),
  repo: z.string().min(1),
  ref: z.string().optional(),
  path: z.string().min(1),
  kubeconfig: z.string().optional(),
  context: z.string().optional(),
  clusterIdentifier: z.string().optional(),
  /** enforce: heal drift; detect: report it and change nothing; suspended: do nothing. */
  mode: z.enum(["enforce", "detect", "suspended"]).default("enforce"),
  pollInterval: duration.default("1m"),
  driftInterval: duration.default("5m"),
  /** Keep a live view of the managed objects (informers): heal within seconds, and runs touch only what changed or drifted. */
  watch: z.boolean().default(true),
  /** With a live view: how often a full refresh of every object runs anyway (the safety net). */
  fullRefreshInterval: duration.default("1h"),
  /** What the repo's content may reach (see SourcePolicy); left out: the defaults. */
  policy: PolicySchema.default({}),
});

/** The runner's configuration file (`ferry run --config ferry.yaml`). */
const RunnerConfigSchema = z.object({
  /** host:port of the webhook receivers, and of the API, metrics and health unless apiListen says otherwise. */
  listen: z.string().default("127.0.0.1:8080"),
  /** host:port of the API, metrics and health on their own; left out or equal to listen: one server for all. */
  apiListen: z.string().optional(),
  /** How many stacks may reconcile at once. */
  maxParallel: z.number().int().min(1).default(2),
  /** Largest webhook body accepted, in bytes. */
  maxWebhookBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** Retry a failed run after this much, doubling up to maxRetryDelay. */
  retryDelay: duration.default("5s"),
  maxRetryDelay: duration.default("5m"),
  /** Where failures, drift and recoveries are posted. */
  notifications: z.array(z.object({ type: z.enum(["generic", "slack"]), url: z.string().url() })).default([]),
  stacks: z.array(StackSchema).min(1, "name at least one stack"),
});

/**
 * The agent's own settings when its stacks are Stack objects (`ferry operator`): the runner config
 * without `stacks`, from flags; the same defaults and the same secrets from the environment.
 */
export function agentConfig(
  input: Partial<Record<"listen" | "apiListen", string>> & { maxParallel?: number },
  env: NodeJS.ProcessEnv = process.env,
): RunnerConfig {
  const parsed = RunnerConfigSchema.extend({ stacks: z.array(StackSchema).default([]) }).parse(input);
  return { ...parsed, ...secrets(env) };
}

/** A validated stack entry, durations in milliseconds. */
export type RunnerStack = z.infer<typeof StackSchema>;
/** The validated runner configuration, durations in milliseconds. */
export type RunnerConfig = z.infer<typeof RunnerConfigSchema> & {
  readonly webhookSecret: string;
  /** Bearer token of the control API's state-changing calls; "" leaves them disabled. Never logged. */
  readonly apiToken: string;
};

/**
 * Reads and validates the runner's config file. Secrets never live in it: the webhook secret comes
 * from FERRY_WEBHOOK_SECRET or FERRY_WEBHOOK_SECRET_FILE, the control API's token from FERRY_API_TOKEN or
 * FERRY_API_TOKEN_FILE (git and Pulumi secrets as for `ferry sync`).
 */
export function loadRunnerConfig(file: string, env: NodeJS.ProcessEnv = process.env): RunnerConfig {
  let raw: unknown;
  try {
    raw = yaml.load(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = RunnerConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new Error(
      `${file}: invalid runner config:\n${parsed.error.issues.map((i) => `- ${i.path.join(".") || "(top)"}: ${i.message}`).join("\n")}`,
    );
  }
  const names = parsed.data.stacks.map((s) => s.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`${file}: stack "${dup}" is listed twice`);
  const base = path.dirname(path.resolve(file));
  return {
    ...parsed.data,
    ...secrets(env),
    stacks: parsed.data.stacks.map((s) => ({ ...s, kubeconfig: s.kubeconfig ? path.resolve(base, s.kubeconfig) : undefined })),
  };
}

/** The webhook secret and the control API's token, from the environment (never from a file ferry is given). */
function secrets(env: NodeJS.ProcessEnv): { webhookSecret: string; apiToken: string } {
  const secretFile = env.FERRY_WEBHOOK_SECRET_FILE;
  const webhookSecret = env.FERRY_WEBHOOK_SECRET ?? (secretFile ? fs.readFileSync(secretFile, "utf8").trim() : "");
  const apiToken = readApiToken(env);
  if (apiToken && (apiToken.length < MIN_API_TOKEN_LENGTH || /\s/.test(apiToken))) {
    throw new Error(
      `the control API token (FERRY_API_TOKEN or FERRY_API_TOKEN_FILE) must be at least ${MIN_API_TOKEN_LENGTH} characters without spaces; generate one with \`openssl rand -hex 32\``,
    );
  }
  return { webhookSecret, apiToken };
}
