import * as crypto from "node:crypto";
import { STACK_API_VERSION } from "../agent/stack-object";
import { DeployKey } from "./deploy-key";
import { SettingsError } from "../reconcile/stack-settings";

/** What `ferry bootstrap` installs, as given on its command line; see {@link defaultBootstrapOptions}. */
export interface BootstrapOptions {
  /** The config repository (an SSH URL: the deploy key is an SSH key). */
  readonly repo: string;
  /** The cluster folder inside the repository. */
  readonly path: string;
  /** Branch, tag or commit to follow. @default "main" */
  readonly ref: string;
  /** Name of the first Stack object. @default "cluster" */
  readonly name: string;
  /** Namespace of ferry and of the Stack. @default "ferry-system" */
  readonly namespace: string;
  /** The Pulumi backend every replica reaches (s3://..., https://api.pulumi.com). */
  readonly backendUrl?: string;
  /** Agent replicas. @default the chart's (2) */
  readonly replicas?: number;
  /** The agent's image, `repository[:tag]` or `repository@digest`. @default the chart's */
  readonly image?: string;
  /** Contents of a known_hosts file for the git host (stored beside the key as `known_hosts`). */
  readonly knownHosts?: string;
  /** The user's own chart values (already parsed), merged under bootstrap's. */
  readonly values?: Readonly<Record<string, unknown>>;
}

/** The defaults of the options left out on the command line. */
export function defaultBootstrapOptions(options: Pick<BootstrapOptions, "repo" | "path"> & Partial<BootstrapOptions>): BootstrapOptions {
  return { ref: "main", name: "cluster", namespace: "ferry-system", ...options };
}

/** The names of the Secrets bootstrap makes for a Stack. */
export interface BootstrapSecretNames {
  /** The deploy key (Flux's keys: identity, identity.pub, known_hosts). */
  readonly git: string;
  /** The Pulumi state passphrase (key `passphrase`). */
  readonly passphrase: string;
}

/** The Secrets of a Stack named `<name>-git` and `<name>-passphrase`. */
export function secretNamesOf(options: Pick<BootstrapOptions, "name">): BootstrapSecretNames {
  return { git: `${options.name}-git`, passphrase: `${options.name}-passphrase` };
}

/** Checks what the chart and the API server would reject later, with the fix in the message. */
export function validateBootstrapOptions(options: BootstrapOptions): void {
  const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  if (!dns1123.test(options.namespace) || options.namespace.length > 63)
    throw new SettingsError(`--namespace ${options.namespace}: not a valid namespace name (lower-case letters, digits and '-')`);
  if (!dns1123.test(options.name) || options.name.length > 50)
    throw new SettingsError(`--name ${options.name}: not a valid Stack name (lower-case letters, digits and '-', at most 50)`);
  if (!/^(ssh:\/\/|[\w.-]+@[\w.-]+:)/.test(options.repo))
    throw new SettingsError(
      `--repo ${options.repo}: give the repository's SSH URL (git@github.com:org/repo.git or ssh://git@host/org/repo.git); the deploy key is an SSH key`,
    );
  if (options.path.trim() === "") throw new SettingsError("--path: give the cluster folder inside the repository (e.g. clusters/prod)");
  if (options.replicas !== undefined && (!Number.isInteger(options.replicas) || options.replicas < 1))
    throw new SettingsError(`--replicas ${options.replicas}: give a whole number of at least 1`);
}

/** `repository:tag`, `repository@sha256:...` or `repository` as the chart's image values (a digest is a tag `sha256:...`). */
export function imageValues(image: string): { repository: string; tag?: string } {
  const at = image.indexOf("@");
  if (at > 0) return { repository: image.slice(0, at), tag: image.slice(at + 1) };
  const colon = image.lastIndexOf(":");
  // A colon before the last slash is a registry port (localhost:5000/ferry), not a tag.
  if (colon > image.lastIndexOf("/")) return { repository: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { repository: image };
}

/**
 * The chart values bootstrap renders with: the user's values, then the flags on top; the Secrets
 * bootstrap makes are added to the user's secretNames so the agent may read them.
 */
export function chartValues(options: BootstrapOptions): Record<string, unknown> {
  const user = options.values ?? {};
  const secrets = secretNamesOf(options);
  const userSecretNames = Array.isArray(user.secretNames) ? user.secretNames.filter((n): n is string => typeof n === "string") : [];
  const values: Record<string, unknown> = {
    ...user,
    secretNames: [...new Set([...userSecretNames, secrets.git, secrets.passphrase])],
  };
  if (options.replicas !== undefined) values.replicas = options.replicas;
  if (options.backendUrl !== undefined) values.backend = { ...asRecord(user.backend), url: options.backendUrl };
  if (options.image !== undefined) {
    const image = imageValues(options.image);
    values.image = { ...asRecord(user.image), repository: image.repository, tag: image.tag ?? "" };
  }
  return values;
}

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** A Kubernetes object as bootstrap writes it. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly [field: string]: unknown;
}

const LABELS = { "app.kubernetes.io/managed-by": "ferry-bootstrap", "app.kubernetes.io/part-of": "ferry" };

/** The namespace ferry is installed into. */
export function namespaceObject(options: Pick<BootstrapOptions, "namespace">): KubeObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name: options.namespace, labels: { ...LABELS } } };
}

/** The deploy key Secret, with Flux's key names (identity, identity.pub, known_hosts). */
export function deployKeySecret(options: BootstrapOptions, key: DeployKey): KubeObject {
  const data: Record<string, string> = { identity: key.privateKey, "identity.pub": `${key.publicKey}\n` };
  if (options.knownHosts !== undefined) data.known_hosts = options.knownHosts;
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: secretNamesOf(options).git, namespace: options.namespace, labels: { ...LABELS } },
    type: "Opaque",
    stringData: data,
  };
}

/** A new random passphrase for the Pulumi state (256 bits). */
export function newPassphrase(): string {
  return crypto.randomBytes(32).toString("base64url");
}

/** The Secret holding the Pulumi state passphrase (key `passphrase`). */
export function passphraseSecret(options: BootstrapOptions, passphrase: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: secretNamesOf(options).passphrase, namespace: options.namespace, labels: { ...LABELS } },
    type: "Opaque",
    stringData: { passphrase },
  };
}

/** The first Stack object: the repository's cluster folder, read with the deploy key. */
export function stackObject(options: BootstrapOptions): KubeObject {
  const secrets = secretNamesOf(options);
  return {
    apiVersion: STACK_API_VERSION,
    kind: "Stack",
    metadata: { name: options.name, namespace: options.namespace, labels: { ...LABELS } },
    spec: {
      repo: options.repo,
      ref: options.ref,
      path: options.path,
      gitSecretRef: { name: secrets.git },
      passphraseSecretRef: { name: secrets.passphrase },
    },
  };
}

/** The comment of a deploy key's public half: says where the key lives. */
export function deployKeyComment(options: Pick<BootstrapOptions, "namespace" | "name">): string {
  return `ferry@${options.namespace}/${options.name}`;
}
