import { Command } from "commander";
import { LOCAL_ADDRESS_POLICIES, LocalAddressPolicy, SourcePolicy } from "../../desired-state/source-policy";
import { resolveSyncSettings, SettingsError, SyncSettings } from "../../reconcile/stack-settings";

/** The options every command that opens a stack shares (sync, preview, history, rollback). */
export function withStackOptions(c: Command): Command {
  return c
    .option("--repo <url|path>", "config repo: a local path, file://, https:// or ssh:// URL (default: ferry:repo of the stack)")
    .option("--path <folder>", "cluster folder inside the config repo (default: ferry:path)")
    .option("--kubeconfig <file>", "kubeconfig of the cluster (default: ferry:kubeconfig, else $KUBECONFIG)")
    .option("--context <name>", "kubeconfig context (default: the current context)")
    .option("--cluster-identifier <id>", "stable identity of the cluster (default: the stack name)")
    .option("--backend <url>", "Pulumi backend URL (default: $PULUMI_BACKEND_URL, else a local file backend)")
    .option("--stacks-dir <dir>", "folder of the stack files (default: ferry's stacks/)")
    .option(
      "--allow-cross-namespace-refs",
      "let valuesFrom, secretRef and sourceRef name other namespaces (default: ferry:allowCrossNamespaceRefs, else refused)",
    )
    .option(
      "--allowed-host <host...>",
      "hosts chart, source and values URLs may name, *.domain for subdomains (default: ferry:allowedHosts, else any)",
    )
    .option(
      "--local-addresses <policy>",
      "URLs on loopback/link-local addresses: allow, refuse, local-cluster (default: ferry:localAddresses, else local-cluster)",
    )
    .option("--allow-remote-bases", "let Kustomize fetch remote resources (default: ferry:allowRemoteBases, else refused)");
}

/** Options parsed by {@link withStackOptions} (plus what a command adds). */
export type StackOptions = Record<string, string | boolean | string[] | undefined>;

/** Resolves a stack's settings from the shared options; `ref` is the branch the stack follows. */
export function settingsFromOptions(
  stack: string,
  opts: StackOptions,
  extra: { ref?: string; allowEmpty?: boolean; allowPrune?: boolean } = {},
): SyncSettings {
  return resolveSyncSettings({
    stack,
    repo: opts.repo as string | undefined,
    ref: extra.ref,
    path: opts.path as string | undefined,
    kubeconfig: opts.kubeconfig as string | undefined,
    context: opts.context as string | undefined,
    clusterIdentifier: opts.clusterIdentifier as string | undefined,
    backendUrl: opts.backend as string | undefined,
    stacksDir: opts.stacksDir as string | undefined,
    allowEmpty: extra.allowEmpty,
    allowPrune: extra.allowPrune,
    policy: policyFromOptions(opts),
  });
}

/** The policy flags that were given (undefined: the stack file or the default decides). */
function policyFromOptions(opts: StackOptions): Partial<SourcePolicy> {
  const local = opts.localAddresses as string | undefined;
  if (local !== undefined && !LOCAL_ADDRESS_POLICIES.includes(local as LocalAddressPolicy)) {
    throw new SettingsError(`--local-addresses must be one of ${LOCAL_ADDRESS_POLICIES.join(", ")}, not "${local}"`);
  }
  return {
    allowCrossNamespaceRefs: opts.allowCrossNamespaceRefs === true ? true : undefined,
    allowedHosts: opts.allowedHost as string[] | undefined,
    localAddresses: local as LocalAddressPolicy | undefined,
    allowRemoteBases: opts.allowRemoteBases === true ? true : undefined,
  };
}
