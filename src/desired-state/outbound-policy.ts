import { isIP } from "node:net";
import { SourcePolicy } from "./source-policy";

/** The host and port a URL of the repo's content names, as the outbound policy sees them. */
export interface OutboundTarget {
  /** `http`, `https`, `oci`, `ssh` or `git`. */
  readonly scheme: string;
  /** Lower case, without a trailing dot; an IPv6 address without brackets. */
  readonly host: string;
  /** The explicit port, else the scheme's default. */
  readonly port: number;
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443, oci: 443, ssh: 22, git: 9418 };
/** scp-like git syntax: `user@host:path` (git reads it as ssh). */
const SCP_LIKE = /^([^@/\s]+)@(\[[^\]/\s]+\]|[^:/\s]+):(?!\/)(.*)$/;

/** A remote URL split up: {@link OutboundTarget} and the raw (still encoded) path. */
export interface RemoteUrl extends OutboundTarget {
  readonly path: string;
}

/** Where a URL points, for the URLs repo content may name (http, https, oci, ssh, git and scp-like); undefined for anything else. */
export function outboundTarget(url: string): OutboundTarget | undefined {
  const remote = parseRemoteUrl(url);
  return remote && { scheme: remote.scheme, host: remote.host, port: remote.port };
}

/** A remote URL (http, https, oci, ssh, git, or scp-like `user@host:path`) split up; undefined for anything else. */
export function parseRemoteUrl(url: string): RemoteUrl | undefined {
  const scp = SCP_LIKE.exec(url);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    return { scheme: "ssh", host: normalizeHost(scp[2]!), port: DEFAULT_PORTS.ssh!, path: scp[3]! };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const scheme = parsed.protocol.replace(/:$/, "").toLowerCase();
  const defaultPort = DEFAULT_PORTS[scheme];
  if (defaultPort === undefined || !parsed.hostname) return undefined;
  return {
    scheme,
    host: normalizeHost(parsed.hostname),
    port: parsed.port ? Number(parsed.port) : defaultPort,
    path: parsed.pathname,
  };
}

function normalizeHost(host: string): string {
  return host
    .replace(/^\[(.*)\]$/, "$1")
    .toLowerCase()
    .replace(/\.$/, "");
}

/**
 * Why a git URL of the repo's content (a HelmRelease's `chart.git`, a GitRepository's `url`) is
 * refused, or undefined when it names a remote repository: local paths, `file://` and other
 * transports would read the machine ferry runs on.
 */
export function remoteGitUrlProblem(url: string): string | undefined {
  const target = outboundTarget(url);
  if (target && target.scheme !== "oci") return undefined;
  const shown = redactCredentials(url);
  if (/^file:/i.test(url)) return `"${shown}" is a file:// URL; repo content may only name remote git repositories`;
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url) || /^[a-z]:[\\/]/i.test(url)) {
    return `"${shown}" is a local path; repo content may only name remote git repositories`;
  }
  return `"${shown}" is not an https://, http://, ssh:// or git:// URL; repo content may only name remote git repositories`;
}

/** The fix every {@link remoteGitUrlProblem} comes with. */
export const REMOTE_GIT_URL_HINT = "use the repository's remote URL (https://host/org/repo or ssh://git@host/org/repo)";

/** A URL with any user name and password replaced by `***`, fit to show in an error or a log. */
export function redactCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, "$1***@");
}

/** Which special range an address is in, when it is loopback or link-local (IPv4, IPv6, IPv4-mapped or -embedded IPv6). */
export function localAddressKind(address: string): "loopback" | "link-local" | undefined {
  const bare = address.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");
  if (isIP(bare) === 4) return ipv4Kind(bare.split(".").map(Number));
  if (isIP(bare) !== 6) return undefined;
  const words = ipv6Words(bare);
  if (!words) return undefined;
  const zeros = (n: number): boolean => words.slice(0, n).every((w) => w === 0);
  // :: (unspecified) reaches this machine as ::1 does; ::1 is loopback.
  if (zeros(7) && (words[7] === 0 || words[7] === 1)) return "loopback";
  if ((words[0]! & 0xffc0) === 0xfe80) return "link-local";
  const v4 = [words[6]! >> 8, words[6]! & 0xff, words[7]! >> 8, words[7]! & 0xff];
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d).
  if (zeros(5) && words[5] === 0xffff) return ipv4Kind(v4);
  if (zeros(6)) return ipv4Kind(v4);
  if (zeros(4) && words[4] === 0xffff && words[5] === 0) return ipv4Kind(v4);
  if (words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0)) return ipv4Kind(v4);
  return undefined;
}

function ipv4Kind(octets: readonly number[]): "loopback" | "link-local" | undefined {
  // 0.0.0.0/8 reaches this machine on Linux, as loopback does.
  if (octets[0] === 127 || octets[0] === 0) return "loopback";
  if (octets[0] === 169 && octets[1] === 254) return "link-local";
  return undefined;
}

/** The eight 16-bit words of an IPv6 address (a trailing dotted IPv4 part allowed). */
function ipv6Words(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const o = dotted[1]!.split(".").map(Number);
    text = text.slice(0, -dotted[1]!.length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const parse = (s: string): number[] => (s ? s.split(":").map((w) => parseInt(w, 16)) : []);
  const first = parse(head);
  const last = tail === undefined ? [] : parse(tail);
  const fill = 8 - first.length - last.length;
  if (fill < 0 || (tail === undefined && fill !== 0)) return undefined;
  const words = [...first, ...new Array<number>(fill).fill(0), ...last];
  return words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}

/**
 * Whether `ferry:allowedHosts` lets a target through: an empty list allows any host; an entry is a
 * host (`example.com`, `10.0.0.1`, `[::1]`), `*.example.com` for its subdomains (not the domain
 * itself), either with an optional `:port` that the URL's port must then equal.
 */
export function hostAllowed(target: OutboundTarget, allowedHosts: readonly string[]): boolean {
  if (allowedHosts.length === 0) return true;
  return allowedHosts.some((entry) => {
    const { host, port } = splitHostEntry(entry);
    if (port !== undefined && port !== target.port) return false;
    if (host.startsWith("*.")) return target.host.endsWith(host.slice(1)) && target.host.length > host.length - 1;
    return host === target.host;
  });
}

function splitHostEntry(entry: string): { host: string; port?: number } {
  const e = entry.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(e);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : undefined };
  const hostPort = /^([^:]+):(\d+)$/.exec(e);
  if (hostPort) return { host: normalizeHost(hostPort[1]!), port: Number(hostPort[2]) };
  return { host: normalizeHost(e) };
}

/** What {@link outboundRefusal} decides on. */
export interface OutboundRequest {
  /** The unit that names the URL, e.g. `HelmRelease/apps/web`. */
  readonly unit: string;
  /** The URL as the repo's content wrote it. */
  readonly url: string;
  /** Every address the URL's host resolves to (the host itself when it is an address). */
  readonly addresses: readonly string[];
  readonly policy: SourcePolicy;
  /** Whether the target cluster's API server is itself on loopback (a development cluster on this machine). */
  readonly clusterOnLoopback: boolean;
}

/** Whether the host's addresses need resolving for this policy: only when loopback and link-local might be refused. */
export function localAddressesChecked(policy: SourcePolicy, clusterOnLoopback: boolean): boolean {
  return policy.localAddresses === "refuse" || (policy.localAddresses === "local-cluster" && !clusterOnLoopback);
}

/**
 * Why an outbound request a unit's URL would make is refused by the stack's policy (the message
 * leads with the unit, shows the URL without credentials and says which setting to change), or
 * undefined when it is allowed.
 */
export function outboundRefusal(request: OutboundRequest): string | undefined {
  const { unit, policy } = request;
  const shown = redactCredentials(request.url);
  const target = outboundTarget(request.url);
  if (!target) {
    return `${unit}: "${shown}" is not an http(s), oci, ssh or git URL with a host\n  fix: name the source by its full remote URL`;
  }
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  if (!hostAllowed(target, policy.allowedHosts)) {
    return (
      `${unit}: ${shown} names host ${host}, which ferry:allowedHosts (${policy.allowedHosts.join(", ")}) does not list; no request was made\n` +
      `  fix: add "${host}" to ferry:allowedHosts in the stack file (or pass --allowed-host ${host}), or move the source to an allowed host`
    );
  }
  if (!localAddressesChecked(policy, request.clusterOnLoopback)) return undefined;
  for (const address of request.addresses) {
    const kind = localAddressKind(address);
    if (!kind) continue;
    const why =
      policy.localAddresses === "refuse"
        ? "ferry:localAddresses is refuse"
        : "ferry:localAddresses is local-cluster and the cluster's API server is not on loopback";
    return (
      `${unit}: ${shown} reaches ${address} (${kind}), which is refused because ${why}; no request was made\n` +
      `  fix: serve the source from a non-local address, or set ferry:localAddresses: allow in the stack file (or pass --local-addresses allow) if this machine's own services are meant to be reachable`
    );
  }
  return undefined;
}
