/**
 * What the content of a config repo may reach. A branch under review is untrusted input, so the
 * defaults are the walls Flux draws for multi-tenancy; a single-tenant setup lowers them per stack.
 */
export interface SourcePolicy {
  /**
   * `valuesFrom`, `secretRef` and `sourceRef` may name an object in another namespace than the
   * HelmRelease's, Kustomization's or source's own (Flux's `--no-cross-namespace-refs=false`).
   * @default false
   */
  readonly allowCrossNamespaceRefs: boolean;
  /**
   * A HelmRelease's `sourceRef`/`chartRef` and a Flux Kustomization's `sourceRef` may name a source in
   * another namespace — the standard Flux layout (a HelmRelease in `podinfo` using a HelmRepository
   * in `flux-system`), and Flux's default. The source's credentials are still read in the source's
   * own namespace. Set false for Flux's multi-tenancy lockdown (`--no-cross-namespace-refs`).
   * @default true
   */
  readonly allowCrossNamespaceSourceRefs: boolean;
  /**
   * Hosts that chart, source and values URLs may name (`example.com`, or `*.example.com` for its
   * subdomains). Empty allows any host.
   * @default []
   */
  readonly allowedHosts: readonly string[];
  /**
   * Loopback and link-local addresses (127.0.0.0/8, ::1, 169.254.0.0/16, fe80::/10) as the target of
   * a URL: `allow`, `refuse`, or `local-cluster` — allowed only when the cluster's API server is
   * itself on loopback (a development cluster on the same machine), refused otherwise.
   * @default "local-cluster"
   */
  readonly localAddresses: LocalAddressPolicy;
  /**
   * Kustomize remote resources (`resources:` naming an http(s) or git URL), as kustomize-controller's
   * `--no-remote-bases` is switched off.
   * @default false
   */
  readonly allowRemoteBases: boolean;
}

/** How URLs that name loopback or link-local addresses are treated. */
export type LocalAddressPolicy = (typeof LOCAL_ADDRESS_POLICIES)[number];
/** Every {@link LocalAddressPolicy}. */
export const LOCAL_ADDRESS_POLICIES = ["allow", "refuse", "local-cluster"] as const;

/** The policy of a stack: the defaults, with what the stack's settings say on top. */
export function sourcePolicy(overrides: Partial<SourcePolicy> = {}): SourcePolicy {
  return {
    allowCrossNamespaceRefs: overrides.allowCrossNamespaceRefs ?? false,
    allowCrossNamespaceSourceRefs: overrides.allowCrossNamespaceSourceRefs ?? true,
    allowedHosts: overrides.allowedHosts ?? [],
    localAddresses: overrides.localAddresses ?? "local-cluster",
    allowRemoteBases: overrides.allowRemoteBases ?? false,
  };
}
