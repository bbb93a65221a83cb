import * as fs from "node:fs";
import * as path from "node:path";
import { ConcurrentUpdateError, EngineEvent, LocalWorkspace, PulumiCommand, Stack, StackNotFoundError } from "@pulumi/pulumi/automation";
import { liveObjectId, ObjectId, pulumiType, resourceName } from "../desired-state/object-id";
import { newProgramInputKey, PROGRAM_INPUT_KEY_ENV, ProgramInput, serializeProgramInput } from "../desired-state/program-input";
import { ferryRoot } from "../lib/paths";
import { watchOwnProcesses } from "../lib/process-watchdog";
import { Revision } from "../source/git-source";
import { isKubernetesObject } from "./change-summary";
import { UpdateRecord } from "./history";
import { parsePin } from "./pin";
import { Engine, EngineDiagnostic, EngineError, EngineOp, EngineStep, ManagedObject, Observed, StackSnapshot } from "./ports";
import { summarizeDiagnostics } from "./pulumi-diagnostics";
import { clearStaleLocks, repairCheckpoint } from "./stack-recovery";

/** The Pulumi project of every ferry stack (the workspace's Pulumi.yaml names it). */
export const PROJECT = "ferry";
/** The component every object is a direct child of (components/cluster-stack.ts). */
const CLUSTER_STACK_TYPE = "ferry:index:ClusterStack";

/** Everything needed to run the ferry program for one stack through the Automation API. */
export interface StackSettings {
  /** Stack (cluster) name. */
  readonly stack: string;
  /** Folder with bin/pulumi and the plugins (from the toolchain). */
  readonly pulumiRoot: string;
  /** Folder for this stack's workspace (generated Pulumi.yaml and stack config). */
  readonly workDir: string;
  /** Any Pulumi backend URL (file://, s3://, https://api.pulumi.com ...). */
  readonly backendUrl: string;
  /** Environment for the Pulumi CLI: secrets provider passphrase, cloud credentials... */
  readonly env: Readonly<Record<string, string>>;
}

/** The environment every Pulumi invocation gets: offline-safe, no update checks, fast TypeScript. */
export function pulumiEnv(backendUrl: string, extra: Readonly<Record<string, string>>): Record<string, string> {
  return {
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_DISABLE_REGISTRY_RESOLVE: "true",
    PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    // Git wins: server-side apply takes back fields another manager (kubectl edit/scale) changed,
    // instead of failing with a field conflict.
    PULUMI_K8S_ENABLE_PATCH_FORCE: "true",
    // The state is written once, when the update ends, not after every step: a checkpoint per step
    // rewrites the whole state each time (an initial apply of 400 objects took 56-115 s with them,
    // 15-22 s without). What a killed update leaves unrecorded is redone by the next run without
    // harm: a create of an object that exists is an upsert with server-side apply, a delete of one
    // that is gone succeeds, and an update unrecorded still differs from the state's record.
    PULUMI_SKIP_CHECKPOINTS: "true",
    // A workspace of its own (a preview, a new machine, CI) finds the stack's secrets provider
    // (passphrase salt) in the state instead of making a new one.
    PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER: "true",
    PULUMI_BACKEND_URL: backendUrl,
    ...extra,
  };
}

/** Git metadata of the config repo for the update record (`pulumi stack history` shows it). */
export function revisionEnv(revision: Revision, repoUrl: string): Record<string, string> {
  return {
    PULUMI_GIT_HEAD: revision.sha,
    PULUMI_GIT_HEAD_NAME: revision.ref,
    PULUMI_GIT_AUTHOR: revision.author,
    PULUMI_GIT_AUTHOR_EMAIL: revision.authorEmail,
    PULUMI_GIT_COMMITTER: revision.committer,
    PULUMI_GIT_COMMITTER_EMAIL: revision.committerEmail,
    PULUMI_VCS_REPO_ROOT: repoUrl,
  };
}

/** The URN the program registers an object under: it depends on the stack and the object's identity only. */
export function objectUrn(stack: string, id: ObjectId): string {
  return `urn:pulumi:${stack}::${PROJECT}::${CLUSTER_STACK_TYPE}$${pulumiType(id)}::${resourceName(id)}`;
}

/**
 * The entries every targeted update of a stack includes: the stack itself (its outputs: the pin,
 * hook digests), the ClusterStack component, and every Kubernetes provider (a glob: the stack's
 * kubeconfig or an impersonating one may have changed, and a new account's provider is created).
 */
export function frameUrns(stack: string): string[] {
  const prefix = `urn:pulumi:${stack}::${PROJECT}::`;
  return [
    `${prefix}pulumi:pulumi:Stack::${PROJECT}-${stack}`,
    `${prefix}${CLUSTER_STACK_TYPE}::cluster`,
    `${prefix}${CLUSTER_STACK_TYPE}$pulumi:providers:kubernetes::*`,
  ];
}

/**
 * The `--target` list of a targeted update: the frame, the state entries, and each object to create
 * as a glob of its URN (the engine refuses a literal target the state does not hold; a glob it
 * matches as the program registers, pulumi/pulumi#11150). `*` matches within a URN's name only, so
 * such a glob may also match objects whose names extend that one: those are diffed, not more.
 */
export function targetList(stack: string, targets: { readonly urns: readonly string[]; readonly creates?: readonly string[] }): string[] {
  return [...frameUrns(stack), ...targets.urns, ...(targets.creates ?? []).map((u) => `${u}*`)];
}

/** A stack the backend does not have, opened by a run that may not create it (preview, detect, history, rollback). */
export class MissingStackError extends Error {
  constructor(stack: string, backendUrl: string, options?: { cause?: unknown }) {
    super(
      `stack ${stack} does not exist in the backend ${backendUrl}: \`ferry sync --stack ${stack}\` creates it (check the name)`,
      options,
    );
    this.name = "MissingStackError";
  }
}

/**
 * Opens the stack in a workspace folder of its own: `create` creates it when the backend does not
 * have it (only runs that write do), else such a stack is a {@link MissingStackError}. The
 * workspace's Pulumi.yaml points at the ferry program and lives outside any git repository, so the
 * CLI records the config repo's commit (PULUMI_GIT_*), not ferry's own. The Pulumi processes it
 * starts end with this process ({@link watchOwnProcesses}).
 */
export async function openStack(settings: StackSettings, options: { readonly create: boolean }): Promise<Stack> {
  watchOwnProcesses();
  fs.mkdirSync(settings.workDir, { recursive: true });
  // The program compiled with ferry (dist/index.js) when there is one: no TypeScript compiler in the
  // language host (seconds and some hundred MiB per run); from sources otherwise.
  const compiled = fs.existsSync(path.join(ferryRoot(), "dist", "index.js"));
  const main = path.relative(settings.workDir, compiled ? path.join(ferryRoot(), "dist") : ferryRoot()) || ".";
  fs.writeFileSync(
    path.join(settings.workDir, "Pulumi.yaml"),
    [
      "# Generated by ferry: the workspace of one stack. The program is the ferry package.",
      `name: ${PROJECT}`,
      "runtime:",
      "  name: nodejs",
      "  options:",
      `    typescript: ${!compiled}`,
      `main: ${JSON.stringify(main)}`,
      "",
    ].join("\n"),
  );
  if (settings.backendUrl.startsWith("file://")) fs.mkdirSync(settings.backendUrl.slice("file://".length), { recursive: true });
  const pulumiCommand = await PulumiCommand.get({ root: settings.pulumiRoot, skipVersionCheck: true });
  const workspace = await LocalWorkspace.create({
    workDir: settings.workDir,
    pulumiCommand,
    envVars: pulumiEnv(settings.backendUrl, settings.env),
  });
  if (options.create) return Stack.createOrSelect(settings.stack, workspace);
  try {
    return await Stack.select(settings.stack, workspace);
  } catch (err) {
    if (err instanceof StackNotFoundError) throw new MissingStackError(settings.stack, settings.backendUrl, { cause: err });
    throw err;
  }
}

/** Sets the program's configuration (keys without a namespace are `ferry:` keys) in one CLI call. */
export async function setProgramConfig(stack: Stack, config: Readonly<Record<string, string>>): Promise<void> {
  await stack.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [k.includes(":") ? k : `ferry:${k}`, { value: v }])));
}

interface ExportedResource {
  readonly urn: string;
  readonly type: string;
  readonly inputs?: Record<string, unknown>;
  readonly outputs?: Record<string, unknown>;
}

interface ExportedDeployment {
  readonly resources?: ExportedResource[];
  readonly pending_operations?: { type: string; resource: { type: string } }[];
}

/**
 * What a run needs of a stack's state (`pulumi stack export`, parsed; pure): every Kubernetes object
 * with its identity, read from what the cluster returned (its outputs), so entries made by any
 * earlier ferry are identified the same way as the desired state.
 */
export function snapshotOf(deployment: ExportedDeployment): StackSnapshot {
  const resources = deployment.resources ?? [];
  const objects: ManagedObject[] = resources.flatMap((r) => {
    if (!isKubernetesObject(r.type)) return [];
    const id =
      liveObjectId((r.outputs ?? {}) as Parameters<typeof liveObjectId>[0]) ??
      liveObjectId((r.inputs ?? {}) as Parameters<typeof liveObjectId>[0]);
    if (!id) return [];
    const { value, secret } = r.inputs ? revealed(r.inputs) : { value: undefined, secret: false };
    const observed = observedOf(r.outputs);
    return [
      {
        urn: r.urn,
        id,
        inputs: value as Record<string, unknown> | undefined,
        ...(secret ? { secret } : {}),
        ...(observed ? { observed } : {}),
      },
    ];
  });
  return {
    objects,
    pendingCreates: (deployment.pending_operations ?? []).filter((p) => p.type === "creating" && isKubernetesObject(p.resource.type))
      .length,
    pin: parsePin(resources.find((r) => r.type === "pulumi:pulumi:Stack")?.outputs?.pin),
    ...hooksOutput(resources.find((r) => r.type === "pulumi:pulumi:Stack")?.outputs?.hooks),
    ...clusterUidOutput(resources.find((r) => r.type === "pulumi:pulumi:Stack")?.outputs?.clusterUid),
  };
}

/** Pulumi's marker of a secret value in an exported state (`{<sig>: SECRET_SIG, plaintext | ciphertext}`). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/**
 * A value of an exported state (`pulumi stack export --show-secrets`) with its secrets revealed:
 * each envelope replaced by its plaintext, and whether there was one. Pure.
 */
export function revealed(value: unknown): { value: unknown; secret: boolean } {
  if (Array.isArray(value)) {
    const items = value.map(revealed);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (typeof value !== "object" || value === null) return { value, secret: false };
  const o = value as Record<string, unknown>;
  if (o[SIG_KEY] === SECRET_SIG) {
    if (typeof o.plaintext !== "string")
      throw new Error("the stack's state holds a secret ferry cannot read (exported without --show-secrets)");
    return { value: revealed(JSON.parse(o.plaintext)).value, secret: true };
  }
  const entries = Object.entries(o).map(([k, v]) => [k, revealed(v)] as const);
  return { value: Object.fromEntries(entries.map(([k, r]) => [k, r.value])), secret: entries.some(([, r]) => r.secret) };
}

/** The live object's resourceVersion and generation the outputs recorded (revealed when secret). */
function observedOf(outputs: Record<string, unknown> | undefined): Observed | undefined {
  if (!outputs) return undefined;
  const metadata = revealed(outputs.metadata).value as { resourceVersion?: unknown; generation?: unknown } | undefined;
  if (typeof metadata !== "object" || metadata === null) return undefined;
  return {
    ...(typeof metadata.resourceVersion === "string" ? { resourceVersion: metadata.resourceVersion } : {}),
    ...(typeof metadata.generation === "number" ? { generation: metadata.generation } : {}),
  };
}

/** The `clusterUid` output, when it is one. */
function clusterUidOutput(value: unknown): { clusterUid?: string } {
  return typeof value === "string" ? { clusterUid: value } : {};
}

/** The `hooks` output (unit -> digest of its hooks), when it is one. */
function hooksOutput(value: unknown): { hooks?: Record<string, string> } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return {};
  const entries = Object.entries(value).filter((e): e is [string, string] => typeof e[1] === "string");
  return { hooks: Object.fromEntries(entries) };
}

/** Reads the stack's state once. */
export async function snapshotStack(stack: Stack): Promise<StackSnapshot> {
  return snapshotOf((await stack.exportStack()).deployment as ExportedDeployment);
}

const HISTORY_PAGE = 100;

/** The stack's whole update history, newest first: every page (`pulumi stack history` returns 10 unless asked). */
export async function stackHistory(stack: Stack): Promise<UpdateRecord[]> {
  const all: UpdateRecord[] = [];
  for (let page = 1; ; page++) {
    const updates = await stack.history(HISTORY_PAGE, page);
    all.push(...updates);
    if (updates.length < HISTORY_PAGE) return all;
  }
}

/** Where {@link pulumiEngine} runs the program, and how. */
export interface EngineSettings extends StackSettings {
  /** `ferry:*` configuration of the program (checkout, path, kubeconfig...), set once when the stack is opened. */
  readonly config: Readonly<Record<string, string>>;
  /** The file the program reads its input from (`ferry:desiredState`), encrypted under a key of the run. */
  readonly inputFile: string;
  /** Whether the run may create the stack in the backend (runs that write); others never do. */
  readonly create: boolean;
  /**
   * A run that may not create the stack, of a stack the backend does not have yet, plans against an
   * empty state in a throwaway backend and workspace here (the caller removes it): a preview of a new
   * cluster shows everything it would create. Without it such a run fails with {@link MissingStackError}.
   */
  readonly emptyStateDir?: string;
  /** The config repo's URL as the update records it (no credentials). */
  readonly repoUrl: string;
  /** How many resource operations the engine runs at once (`--parallel`); Pulumi's default when unset. */
  readonly parallel?: number;
}

/** The Pulumi engine through the Automation API: the {@link Engine} port of a run. */
export function pulumiEngine(settings: EngineSettings): Engine {
  let opened: Stack | undefined;
  const stack = (): Stack => {
    if (!opened) throw new Error("the stack is not open");
    return opened;
  };
  // The program input holds Secret data: on disk it is encrypted under a key of this run, which the
  // program gets through the environment only, so a run killed before it removes the file leaves no
  // plaintext behind.
  const inputKey = newProgramInputKey();
  /** Runs the program with this input: written for the call only, encrypted, readable by this user only. */
  const withInput = async <T>(input: ProgramInput, call: () => Promise<T>): Promise<T> => {
    fs.mkdirSync(path.dirname(settings.inputFile), { recursive: true });
    fs.writeFileSync(settings.inputFile, serializeProgramInput(input, inputKey), { mode: 0o600 });
    try {
      return await call();
    } finally {
      fs.rmSync(settings.inputFile, { force: true });
    }
  };
  const update = async (options: Parameters<Engine["apply"]>[1]): Promise<void> => {
    const diagnostics: EngineDiagnostic[] = [];
    const ws = stack().workspace as LocalWorkspace;
    const env = revisionEnv(options.revision, settings.repoUrl);
    const saved = { ...ws.envVars };
    Object.assign(ws.envVars, env);
    // The caller's veto stops the update before a step it refuses (the engine is cancelled as Ctrl-C
    // would: steps under way finish, no new one starts).
    const vetoed = new AbortController();
    let veto: string | undefined;
    const signal = options.signal ? AbortSignal.any([options.signal, vetoed.signal]) : vetoed.signal;
    try {
      await engineCall(diagnostics, () =>
        stack().up({
          refresh: true,
          message: options.message,
          // A targeted update refreshes only its targets (pulumi/pulumi#4174); the frame keeps the
          // outputs and the providers' configuration current.
          target: options.targets ? targetList(settings.stack, options.targets) : undefined,
          targetDependents: options.targets?.dependents || undefined,
          // A failing object does not stop the others; what depends on it waits (Flux's isolation).
          continueOnError: true,
          parallel: settings.parallel,
          color: "never",
          signal,
          onEvent: (e: EngineEvent) => {
            collectDiagnostic(e, diagnostics);
            const pre = e.resourcePreEvent?.metadata;
            if (pre && !veto && options.veto) {
              veto = options.veto({ op: pre.op as EngineOp, urn: pre.urn, type: pre.type });
              if (veto) vetoed.abort();
            }
            const m = e.resOutputsEvent?.metadata;
            if (m) options.onStep({ op: m.op as EngineOp, urn: m.urn, type: m.type });
          },
        }),
      );
      if (veto) throw new EngineError(veto, diagnostics, false, { vetoed: veto });
    } catch (err) {
      if (veto && !(err instanceof EngineError && err.vetoed))
        throw new EngineError(veto, diagnostics, false, { cause: err, vetoed: veto });
      throw err;
    } finally {
      for (const k of Object.keys(env)) delete ws.envVars[k];
      Object.assign(ws.envVars, saved);
    }
  };
  return {
    async open(onRecovered) {
      const restored = repairCheckpoint(settings.backendUrl, PROJECT, settings.stack);
      if (restored) onRecovered(`repaired the stack's checkpoint a crash left unreadable (${restored})`);
      for (const lock of clearStaleLocks(settings.backendUrl, PROJECT, settings.stack)) onRecovered(`removed a stale lock ${lock}`);
      // What a killed run left: its program input (and that of releases that wrote it in clear).
      for (const f of [settings.inputFile, path.join(settings.workDir, "desired-state.json")]) fs.rmSync(f, { force: true });
      try {
        opened = await openStack(settings, { create: settings.create });
      } catch (err) {
        if (!(err instanceof MissingStackError) || !settings.emptyStateDir) throw err;
        onRecovered(`stack ${settings.stack} does not exist yet: planning against an empty state (\`ferry sync\` creates the stack)`);
        opened = await openStack(
          {
            ...settings,
            workDir: path.join(settings.emptyStateDir, "workspace"),
            backendUrl: `file://${path.join(settings.emptyStateDir, "backend")}`,
          },
          { create: true },
        );
      }
      (opened.workspace as LocalWorkspace).envVars[PROGRAM_INPUT_KEY_ENV] = inputKey;
      await setProgramConfig(opened, { ...settings.config, desiredState: settings.inputFile });
      return snapshotStack(opened);
    },
    async resolvePendingCreates() {
      // Such a create may or may not have reached the cluster; it is dropped from the state, and the
      // update creates it again, which with server-side apply also takes over an object the
      // interrupted update did create (an upsert), so nothing is duplicated or lost.
      await stack().refresh({ clearPendingCreates: true, color: "never" });
      return snapshotStack(stack());
    },
    async plan(input, options) {
      const steps: EngineStep[] = [];
      const diagnostics: EngineDiagnostic[] = [];
      await withInput(input, () =>
        engineCall(diagnostics, () =>
          stack().preview({
            refresh: options.refresh,
            color: "never",
            diff: true,
            signal: options.signal,
            onEvent: (e: EngineEvent) => {
              collectDiagnostic(e, diagnostics);
              const m = e.resourcePreEvent?.metadata;
              if (!m) return;
              steps.push({
                op: m.op as EngineOp,
                urn: m.urn,
                type: m.type,
                detailedDiff: m.detailedDiff,
                diffs: m.diffs,
                oldInputs: m.old?.inputs,
                newInputs: m.new?.inputs,
              });
            },
          }),
        ),
      );
      return steps;
    },
    async apply(input, options) {
      return withInput(input, () => update(options));
    },
    async history() {
      return stackHistory(opened ?? (await openStack(settings, { create: false })));
    },
    urnOf: (id) => objectUrn(settings.stack, id),
  };
}

function collectDiagnostic(e: EngineEvent, into: EngineDiagnostic[]): void {
  const d = e.diagnosticEvent;
  if (d && (d.severity === "error" || d.severity === "info#err")) into.push({ urn: d.urn || undefined, message: d.message });
}

/** Runs an Automation API call, turning its failure into an {@link EngineError} with the diagnostics seen. */
async function engineCall<T>(diagnostics: EngineDiagnostic[], call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    const message = text.includes("Diagnostics:") ? summarizeDiagnostics(text) : text.trim();
    throw new EngineError(message, diagnostics, err instanceof ConcurrentUpdateError, { cause: err });
  }
}
