import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { pulumiEnv } from "../../src/reconcile/pulumi-stack";
import { resolveSyncSettings } from "../../src/reconcile/stack-settings";
import { E2E } from "./e2e";

/** Options of {@link addStackUpdates}. */
export interface StackUpdateOptions {
  /** The message of the i-th update (0-based). */
  readonly message: (i: number) => string;
  /** Extra environment of the updates (`PULUMI_GIT_*` for the commit they record). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Grows a ferry stack's update history fast, with real updates: `count` runs of `pulumi up` through
 * the real CLI and engine on the same backend and stack, each recorded in the stack's history like
 * any other update. The program is an empty inline one and the update targets only the stack's root
 * resource, so the objects ferry manages are left exactly as they are (not re-diffed, not deleted);
 * ferry's own update (a second or more: its program, the provider, a refresh) is not needed to
 * record an update. The stack must exist (a ferry sync made it).
 */
export async function addStackUpdates(e: E2E, stackName: string, count: number, options: StackUpdateOptions): Promise<void> {
  const settings = resolveSyncSettings({ stack: stackName, repo: "unused", path: "unused", stacksDir: false }, e.env);
  const workDir = fs.mkdtempSync(path.join(e.dir, `updates-${stackName}-`));
  const inherited = Object.fromEntries(Object.entries(e.env).filter((kv): kv is [string, string] => kv[1] !== undefined));
  const workspace = await LocalWorkspace.create({
    workDir,
    pulumiCommand: await PulumiCommand.get({ root: e.toolchain.pulumiRoot, skipVersionCheck: true }),
    projectSettings: { name: "ferry", runtime: "nodejs" },
    program: async () => ({}),
    envVars: { ...inherited, ...pulumiEnv(settings.backendUrl, settings.pulumiEnv), ...options.env },
  });
  const stack = await Stack.select(stackName, workspace);
  const root = `urn:pulumi:${stackName}::ferry::pulumi:pulumi:Stack::ferry-${stackName}`;
  for (let i = 0; i < count; i++) await stack.up({ target: [root], message: options.message(i), color: "never" });
}
