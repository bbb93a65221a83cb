import * as dns from "node:dns";
import * as http from "node:http";
import * as https from "node:https";
import { LookupAddress } from "node:dns";
import { formatBytes, INPUT_LIMITS } from "../desired-state/input-limits";
import {
  localAddressKind,
  localAddressesChecked,
  outboundRefusal,
  outboundTarget,
  redactCredentials,
} from "../desired-state/outbound-policy";
import { SourcePolicy } from "../desired-state/source-policy";
import { ClusterAccess, kubeConfig } from "../lib/kube-config";
import { createLogger, Logger } from "../lib/log";

/** A request the stack's policy refuses (a host not allowed, a loopback or link-local address): never retried, never optional. */
export class OutboundRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutboundRefusedError";
  }
}

/** What an {@link OutboundGuard} decides with. */
export interface OutboundGuardOptions {
  readonly policy: SourcePolicy;
  /** The target cluster: `local-cluster` allows local addresses only when its API server is on loopback. */
  readonly cluster: ClusterAccess;
  /** Where each outbound fetch is logged; a logger of ferry's own when absent. */
  readonly log?: Logger;
  /** The stack the run is for, logged with each fetch. */
  readonly stack?: string;
  /** Resolves a host to all its addresses (tests replace it); DNS by default. */
  readonly resolve?: (host: string) => Promise<string[]>;
}

/** What {@link OutboundGuard.request} sends and how much it reads. */
export interface OutboundRequestOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** The largest body read; a larger one fails the request. */
  readonly maxBytes: number;
  /** What the body is, as the size error names it (`an OCI manifest`). */
  readonly what: string;
}

/** A response of {@link OutboundGuard.request}: status, headers and the whole body. */
export interface OutboundResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** What kind of fetch a URL is for, as logged. */
export type OutboundKind = "chart-repository" | "oci" | "git" | "values-url";

const MAX_REDIRECTS = 5;
/** The longest one {@link OutboundGuard.request} may take, body included. */
const REQUEST_DEADLINE_MS = 300_000;
/** A values file fetched from a URL is never larger than this. */
const MAX_VALUES_BYTES = INPUT_LIMITS.maxValuesBytes;

let defaultLog: Logger | undefined;

/**
 * The edge where the render stage reaches the network on behalf of the repo's content: every URL
 * is checked against the stack's policy (allowed hosts; loopback and link-local addresses of every
 * address its host resolves to) and logged with the stack and the unit before anything is sent.
 */
export class OutboundGuard {
  private clusterLocal: Promise<boolean> | undefined;
  private readonly log: Logger;

  constructor(private readonly options: OutboundGuardOptions) {
    this.log = options.log ?? (defaultLog ??= createLogger({ component: "render" }));
  }

  /** Checks a URL a unit names, then logs the fetch; throws an {@link OutboundRefusedError} naming the unit, the URL and the fix. */
  async check(url: string, unit: string, kind: OutboundKind): Promise<void> {
    const shown = redactCredentials(url);
    const decide = async (addresses: string[]): Promise<string | undefined> =>
      outboundRefusal({ unit, url, addresses, policy: this.options.policy, clusterOnLoopback: await this.clusterOnLoopback() });
    // The host first: a host that is not allowed is not even resolved.
    const refusal = (await decide([])) ?? (await decide(await this.addressesToCheck(url, unit)));
    if (refusal !== undefined) {
      this.log.warn({ stack: this.options.stack, unit, url: shown, kind }, "outbound fetch refused by policy");
      throw new OutboundRefusedError(refusal);
    }
    this.log.info({ stack: this.options.stack, unit, url: shown, kind }, "outbound fetch");
  }

  /**
   * The text at an http(s) URL (a Flux v1 `externalSourceRef`): each hop of a redirect is checked,
   * and the addresses the connection uses are the ones checked (no second DNS answer slips in).
   */
  async fetchText(url: string, unit: string): Promise<string> {
    let current = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      if (!/^https?:\/\//i.test(current)) {
        throw new OutboundRefusedError(
          `${unit}: ${redactCredentials(current)} is not an http(s) URL\n  fix: fetch values over http(s), or move them into the repository`,
        );
      }
      await this.check(current, unit, "values-url");
      const res = await this.get(current, unit);
      if (res.status >= 300 && res.status < 400 && res.location) {
        current = new URL(res.location, current).toString();
        continue;
      }
      if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`);
      return res.body;
    }
    throw new Error(`more than ${MAX_REDIRECTS} redirects`);
  }

  /**
   * One request to a URL a unit names, checked and logged as {@link check} does, on a connection
   * that uses only the addresses checked; redirects are not followed (the caller checks each hop).
   * The body is read up to `maxBytes`: a larger one stops the request with an error naming the limit.
   */
  async request(url: string, unit: string, kind: OutboundKind, options: OutboundRequestOptions): Promise<OutboundResponse> {
    if (!/^https?:\/\//i.test(url)) {
      throw new OutboundRefusedError(`${unit}: ${redactCredentials(url)} is not an http(s) URL\n  fix: name an http(s) or oci:// URL`);
    }
    await this.check(url, unit, kind);
    const client = url.toLowerCase().startsWith("https:") ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        url,
        {
          method: "GET",
          lookup: this.pinnedLookup(url, unit),
          timeout: 60_000,
          headers: { "user-agent": "ferry", ...options.headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > options.maxBytes)
              req.destroy(new Error(`the response is larger than ${formatBytes(options.maxBytes)}, ferry's limit for ${options.what}`));
            else chunks.push(c);
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      // An idle limit alone lets a server trickle a large body forever: the whole request has one too.
      const deadline = setTimeout(() => req.destroy(new Error(`took longer than ${REQUEST_DEADLINE_MS / 1000}s`)), REQUEST_DEADLINE_MS);
      req.on("close", () => clearTimeout(deadline));
      req.on("timeout", () => req.destroy(new Error("timed out after 60s")));
      req.on("error", reject);
      req.end();
    });
  }

  private get(url: string, unit: string): Promise<{ status: number; location?: string; body: string }> {
    const client = url.toLowerCase().startsWith("https:") ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.get(url, { lookup: this.pinnedLookup(url, unit), timeout: 60_000, headers: { "user-agent": "ferry" } }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_VALUES_BYTES)
            req.destroy(new Error(`the response is larger than ${formatBytes(MAX_VALUES_BYTES)}, ferry's limit for a values text`));
          else chunks.push(c);
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("timed out after 60s")));
      req.on("error", reject);
    });
  }

  /** A DNS lookup for the connection that refuses local addresses the policy refuses, whatever DNS answers this time. */
  private pinnedLookup(url: string, unit: string): NonNullable<http.RequestOptions["lookup"]> {
    return ((hostname: string, opts: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
      dns.lookup(hostname, { all: true, family: opts.family, hints: opts.hints }, (err, addresses: LookupAddress[]) => {
        if (err) return callback(err);
        void this.clusterOnLoopback().then((clusterOnLoopback) => {
          const refusal = outboundRefusal({
            unit,
            url,
            addresses: addresses.map((a) => a.address),
            policy: this.options.policy,
            clusterOnLoopback,
          });
          if (refusal !== undefined) return callback(new OutboundRefusedError(refusal));
          if (opts.all) return callback(null, addresses);
          const first = addresses[0];
          return first ? callback(null, first.address, first.family) : callback(new Error(`${hostname} has no address`));
        });
      });
    }) as NonNullable<http.RequestOptions["lookup"]>;
  }

  /** Every address of the URL's host, when the policy needs them; a host that does not resolve is an error naming the unit. */
  private async addressesToCheck(url: string, unit: string): Promise<string[]> {
    if (!localAddressesChecked(this.options.policy, await this.clusterOnLoopback())) return [];
    const host = outboundTarget(url)?.host;
    if (host === undefined) return [];
    try {
      return await (this.options.resolve ?? resolveAll)(host);
    } catch (err) {
      throw new Error(
        `${unit}: cannot resolve the host of ${redactCredentials(url)}: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Whether the target cluster's API server (the kubeconfig context's server URL) is on loopback; asked once. */
  clusterOnLoopback(): Promise<boolean> {
    this.clusterLocal ??= (async () => {
      if (this.options.policy.localAddresses !== "local-cluster") return false;
      try {
        const kc = kubeConfig(this.options.cluster);
        const server = kc.getCurrentCluster()?.server;
        if (!server) return false;
        const addresses = await (this.options.resolve ?? resolveAll)(new URL(server).hostname.replace(/^\[(.*)\]$/, "$1"));
        return addresses.length > 0 && addresses.every((a) => localAddressKind(a) === "loopback");
      } catch {
        return false;
      }
    })();
    return this.clusterLocal;
  }
}

async function resolveAll(host: string): Promise<string[]> {
  return (await dns.promises.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}
