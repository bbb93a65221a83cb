import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { runChecked } from "../lib/exec";
import { ClusterAccess, isNotFound, kubeConfig } from "../lib/kube-config";
import {
  BootstrapOptions,
  chartValues,
  deployKeyComment,
  deployKeySecret,
  KubeObject,
  namespaceObject,
  newPassphrase,
  passphraseSecret,
  secretNamesOf,
  stackObject,
  validateBootstrapOptions,
} from "./bootstrap-plan";
import { generateDeployKey, publicKeyOf } from "./deploy-key";
import { STACK_GROUP, STACK_PLURAL } from "../agent/stack-object";

/** The name of the CRD bootstrap waits for. */
export const STACK_CRD = `${STACK_PLURAL}.${STACK_GROUP}`;

/** How {@link bootstrap} reaches the cluster and its tools. */
export interface BootstrapEnvironment {
  readonly access: ClusterAccess;
  /** Paths of the helm and kubectl binaries (from the toolchain). */
  readonly helm: string;
  readonly kubectl: string;
  /** The ferry chart (charts/ferry in the ferry package). */
  readonly chartDir: string;
  /** Receives one line per step (never a secret). */
  readonly progress: (line: string) => void;
  /** How long to wait for the CRD to be Established. @default 60s */
  readonly crdTimeoutMs?: number;
}

/** What bootstrap did; holds no secret. */
export interface BootstrapResult {
  readonly namespace: string;
  readonly stack: string;
  /** The deploy key's public half (`ssh-ed25519 ...`). */
  readonly publicKey: string;
  /** The Secret holding the deploy key. */
  readonly secret: string;
  /** Whether the deploy key was made by this run (false: an earlier run's key was kept). */
  readonly keyCreated: boolean;
  /** Whether the passphrase Secret was made by this run. */
  readonly passphraseCreated: boolean;
  /** How many of the chart's objects were applied. */
  readonly objectsApplied: number;
}

/**
 * Installs ferry into a cluster: renders the chart, applies its objects server-side, waits for the
 * Stack CRD, makes the deploy key and passphrase Secrets unless they exist, and applies the first Stack.
 */
export async function bootstrap(options: BootstrapOptions, env: BootstrapEnvironment): Promise<BootstrapResult> {
  validateBootstrapOptions(options);
  // 1. Render the chart with the values from the flags.
  const rendered = await renderChart(options, env);
  const objects = rendered.filter((o) => o.kind !== undefined);
  env.progress(`rendered ${objects.length} objects of the ferry chart`);
  // 2. Apply its objects (and the namespace) server-side, as one field manager.
  await applyObjects([namespaceObject(options), ...objects], env);
  env.progress(`applied them to namespace ${options.namespace}`);
  // 3. The Stack object needs its CRD served.
  await runChecked(env.kubectl, [
    ...kubectlAccess(env.access),
    "wait",
    "--for=condition=Established",
    `crd/${STACK_CRD}`,
    `--timeout=${Math.ceil((env.crdTimeoutMs ?? 60_000) / 1000)}s`,
  ]);
  env.progress(`CustomResourceDefinition ${STACK_CRD} is established`);
  // 4. The Secrets: made once, kept on every later run (the deploy key is already in the git host).
  const core = kubeConfig(env.access).makeApiClient(k8s.CoreV1Api);
  const key = await ensureDeployKey(core, options, env);
  const passphraseCreated = await createUnlessExists(core, passphraseSecret(options, newPassphrase()));
  env.progress(`Secret ${options.namespace}/${secretNamesOf(options).passphrase} ${passphraseCreated ? "created" : "kept"}`);
  // 5. The first Stack.
  await applyObjects([stackObject(options)], env);
  env.progress(`Stack ${options.namespace}/${options.name} applied`);
  return {
    namespace: options.namespace,
    stack: options.name,
    publicKey: key.publicKey,
    secret: secretNamesOf(options).git,
    keyCreated: key.created,
    passphraseCreated,
    objectsApplied: objects.length,
  };
}

/** `helm template` of the chart (CRDs included), parsed into objects. */
async function renderChart(options: BootstrapOptions, env: BootstrapEnvironment): Promise<KubeObject[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bootstrap-"));
  try {
    const valuesFile = path.join(dir, "values.json");
    fs.writeFileSync(valuesFile, JSON.stringify(chartValues(options)), { mode: 0o600 });
    const out = await runChecked(env.helm, [
      "template",
      "ferry",
      env.chartDir,
      "--namespace",
      options.namespace,
      "--include-crds",
      "--values",
      valuesFile,
    ]);
    // Plain YAML: the client library's loadAllYaml maps objects onto its models (default -> _default).
    return yaml.loadAll(out.stdout).filter((o): o is KubeObject => o !== null && typeof o === "object");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `kubectl apply --server-side` of objects without secrets (given as JSON on stdin). */
async function applyObjects(objects: readonly KubeObject[], env: BootstrapEnvironment): Promise<void> {
  await runChecked(
    env.kubectl,
    [...kubectlAccess(env.access), "apply", "--server-side", "--field-manager", "ferry-bootstrap", "--force-conflicts", "-f", "-"],
    { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }) },
  );
}

function kubectlAccess(access: ClusterAccess): string[] {
  return [...(access.kubeconfig ? ["--kubeconfig", access.kubeconfig] : []), ...(access.context ? ["--context", access.context] : [])];
}

/** The deploy key Secret's public key: from the existing Secret, or a new key stored in a new Secret. */
async function ensureDeployKey(
  core: k8s.CoreV1Api,
  options: BootstrapOptions,
  env: BootstrapEnvironment,
): Promise<{ publicKey: string; created: boolean }> {
  const name = secretNamesOf(options).git;
  const existing = await readSecret(core, options.namespace, name);
  if (existing) {
    const identity = existing.data?.identity;
    if (!identity)
      throw new Error(
        `Secret ${options.namespace}/${name}: exists but has no \`identity\` key; delete it (kubectl -n ${options.namespace} delete secret ${name}) to have a new deploy key made`,
      );
    env.progress(`Secret ${options.namespace}/${name} kept (its deploy key was made by an earlier run)`);
    return { publicKey: publicKeyOf(Buffer.from(identity, "base64").toString("utf8"), deployKeyComment(options)), created: false };
  }
  const key = generateDeployKey(deployKeyComment(options));
  const created = await createUnlessExists(core, deployKeySecret(options, key));
  if (!created) return ensureDeployKey(core, options, env); // made meanwhile by another run: use that one
  env.progress(`Secret ${options.namespace}/${name} created with a new ed25519 deploy key`);
  return { publicKey: key.publicKey, created: true };
}

async function readSecret(core: k8s.CoreV1Api, namespace: string, name: string): Promise<k8s.V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name, namespace });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw new Error(`Secret ${namespace}/${name}: cannot read it: ${apiReason(err)}`, { cause: err });
  }
}

/** Creates a Secret; false when it already exists. Errors carry the API's reason, never the Secret's data. */
async function createUnlessExists(core: k8s.CoreV1Api, secret: KubeObject): Promise<boolean> {
  const { name, namespace = "" } = secret.metadata;
  try {
    await core.createNamespacedSecret({ namespace, body: secret as k8s.V1Secret });
    return true;
  } catch (err) {
    if (err instanceof k8s.ApiException && err.code === 409) return false;
    throw new Error(`Secret ${namespace}/${name}: cannot create it: ${apiReason(err)}`);
  }
}

function apiReason(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    const body = typeof err.body === "string" ? safeJson(err.body) : err.body;
    const message = body && typeof body === "object" && "message" in body ? String((body as { message: unknown }).message) : "";
    return `${err.code}${message ? ` ${message}` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
