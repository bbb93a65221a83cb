import { SourceSecretRef } from "../desired-state/helm-release";
import { KubeObject } from "../desired-state/object-id";
import { SourcePolicy } from "../desired-state/source-policy";

/** Credentials of a chart or git source, read from the Secret its own `spec.secretRef` names. Never logged. */
export interface SourceAuth {
  /** HTTPS basic auth (Helm repositories, OCI registries, git over https). */
  readonly username?: string;
  readonly password?: string;
  /** SSH private key (git over ssh), as Flux's `identity` key holds it. */
  readonly identity?: string;
  /** known_hosts lines for SSH, as Flux's `known_hosts` key holds them. */
  readonly knownHosts?: string;
}

/** Where a Secret is looked up: the repository's declared objects first, else the live cluster. */
export interface SecretLookup {
  declared(namespace: string, name: string): KubeObject | undefined;
  live(namespace: string, name: string): Promise<KubeObject | undefined>;
}

/**
 * The credentials a source's `spec.secretRef` names (keys `username`/`password`, `identity`/
 * `known_hosts`, as source-controller reads them), from the Secret declared in Git, else the live
 * one; undefined without a secretRef. For an OCI registry (`registryHost` given), a
 * `kubernetes.io/dockerconfigjson` Secret's entry for that host is used when the Secret has no
 * `username`. A Secret in another namespace than the source's is refused
 * unless the policy allows cross-namespace refs; a missing Secret is an error naming it.
 */
export async function sourceCredentials(
  ref: SourceSecretRef | undefined,
  unit: string,
  lookup: SecretLookup,
  policy: SourcePolicy,
  registryHost?: string,
): Promise<SourceAuth | undefined> {
  if (!ref) return undefined;
  const sourceNamespace = ref.source.split("/")[1];
  const secret = `Secret/${ref.namespace}/${ref.name}`;
  if (ref.namespace !== sourceNamespace && !policy.allowCrossNamespaceRefs) {
    throw new Error(
      `${unit}: ${ref.source} \`spec.secretRef\` names ${secret}, in another namespace than the source's; refused\n` +
        `  fix: put the Secret in namespace ${sourceNamespace} and drop \`secretRef.namespace\` (as Flux reads it), or set ferry:allowCrossNamespaceRefs: true for a single-tenant cluster`,
    );
  }
  const found = lookup.declared(ref.namespace, ref.name) ?? (await lookup.live(ref.namespace, ref.name));
  if (!found) {
    throw new Error(
      `${unit}: ${secret} (\`spec.secretRef\` of ${ref.source}) is neither in the repository nor in the cluster\n` +
        `  fix: create the Secret, or remove the secretRef if the source needs no credentials`,
    );
  }
  const value = (key: string): string | undefined => secretValue(found, key);
  const docker = value(".dockerconfigjson");
  if (registryHost !== undefined && value("username") === undefined && docker !== undefined) {
    return dockerConfigAuth(docker, registryHost, `${unit}: ${secret} (\`spec.secretRef\` of ${ref.source})`);
  }
  const auth: SourceAuth = {
    username: value("username"),
    password: value("password"),
    identity: value("identity"),
    knownHosts: value("known_hosts"),
  };
  return Object.values(auth).some((v) => v !== undefined) ? auth : undefined;
}

function secretValue(secret: KubeObject, key: string): string | undefined {
  const stringData = secret.stringData as Record<string, unknown> | undefined;
  const data = secret.data as Record<string, unknown> | undefined;
  if (typeof stringData?.[key] === "string") return stringData[key];
  return typeof data?.[key] === "string" ? Buffer.from(data[key], "base64").toString("utf8") : undefined;
}

/** The registry host (`host[:port]`) of an `oci://` URL, as a Docker config's `auths` keys it. */
export function ociRegistryHost(url: string): string {
  return url.replace(/^oci:\/\//, "").split("/")[0]!;
}

/**
 * The credentials a Docker config (`.dockerconfigjson`) holds for one registry host: its `auths`
 * entry keyed by the host (or `https://host`, `http://host`, with an optional `/v1/` or `/v2/` path),
 * from `username`/`password` or the base64 `auth` pair. Pure; the message never shows a value.
 */
export function dockerConfigAuth(text: string, host: string, what: string): SourceAuth {
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    throw new Error(`${what}: \`.dockerconfigjson\` is not JSON\n  fix: write it as \`kubectl create secret docker-registry\` does`);
  }
  const auths = (config as { auths?: unknown } | null)?.auths;
  const entries = auths !== null && typeof auths === "object" ? Object.entries(auths as Record<string, unknown>) : [];
  const keyHost = (key: string): string => key.replace(/^https?:\/\//, "").replace(/\/(v1|v2)?\/?$/, "");
  const entry = entries.find(([key]) => keyHost(key) === host)?.[1] as Record<string, unknown> | undefined;
  if (!entry || typeof entry !== "object") {
    throw new Error(
      `${what}: \`.dockerconfigjson\` has no \`auths\` entry for ${host}\n  fix: add the registry ${host} to the Secret, or remove the secretRef if the registry needs no credentials`,
    );
  }
  if (typeof entry.username === "string" && typeof entry.password === "string")
    return { username: entry.username, password: entry.password };
  if (typeof entry.auth === "string") {
    const pair = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = pair.indexOf(":");
    if (colon > 0) return { username: pair.slice(0, colon), password: pair.slice(colon + 1) };
  }
  throw new Error(
    `${what}: the \`.dockerconfigjson\` entry for ${host} has neither \`username\`/\`password\` nor \`auth\` (base64 of user:password)\n  fix: write it as \`kubectl create secret docker-registry\` does`,
  );
}
