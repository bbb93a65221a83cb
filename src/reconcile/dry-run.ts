import { DesiredObject } from "../desired-state/desired-state";
import { groupKind } from "../desired-state/identify";
import { ManifestError } from "../desired-state/manifest-error";
import { displayName, splitApiVersion } from "../desired-state/object-id";
import { maskQuoted } from "../desired-state/sensitive-values";
import { impersonatedUser } from "../desired-state/service-account";
import { Cluster, EngineDiagnostic } from "./ports";

/** A refusal of the API server, at the file and line of the first object it concerns, with every object it concerns. */
export class Rejection extends ManifestError {
  constructor(
    readonly objects: readonly DesiredObject[],
    problem: string,
    hint: string,
  ) {
    super(objects[0]!.location, problem, hint);
  }
}

/**
 * What the API server would refuse that the engine's own dry run does not ask it (Pulumi skips the
 * server-side dry run of kinds the cluster does not serve, and of objects in namespaces that do not
 * exist): a kind neither the cluster nor a CRD of the desired state serves, and a namespace neither
 * the cluster nor the desired state has. One error per problem, at the first object that has it (and
 * naming every object that has it).
 */
export async function clusterRejections(desired: readonly DesiredObject[], cluster: Cluster): Promise<Rejection[]> {
  const crdVersions = new Map<string, Set<string>>();
  const namespaces = new Set<string>();
  for (const { id, object } of desired) {
    if (id.group === "" && id.kind === "Namespace") namespaces.add(id.name);
    if (id.group !== "apiextensions.k8s.io" || id.kind !== "CustomResourceDefinition") continue;
    const spec = object.spec as { group?: unknown; names?: { kind?: unknown }; versions?: unknown } | undefined;
    if (typeof spec?.group !== "string" || typeof spec.names?.kind !== "string") continue;
    const versions = Array.isArray(spec.versions) ? (spec.versions as { name?: unknown; served?: unknown }[]) : [];
    crdVersions.set(
      groupKind(spec.group, spec.names.kind),
      new Set(versions.filter((v) => v.served !== false && typeof v.name === "string").map((v) => v.name as string)),
    );
  }
  // Each problem is asked once; the objects after the first that have it join its rejection.
  const problems = new Map<string, { objects: DesiredObject[]; make?: (objects: DesiredObject[]) => Rejection }>();
  const ask = async (key: string, o: DesiredObject, check: () => Promise<((objects: DesiredObject[]) => Rejection) | undefined>) => {
    const known = problems.get(key);
    if (known) known.objects.push(o);
    else problems.set(key, { objects: [o], make: await check() });
  };
  for (const o of desired) {
    const { apiVersion, kind } = o.object;
    const { group, version } = splitApiVersion(apiVersion);
    const served = crdVersions.get(groupKind(group, kind));
    await ask(`kind ${apiVersion}/${kind}`, o, async () =>
      (served ? !served.has(version) : !(await cluster.serves(apiVersion, kind)))
        ? (objects) =>
            new Rejection(
              objects,
              `${displayName(o.id)}: the cluster does not serve ${kind} in ${apiVersion}` +
                (served
                  ? ` (its CRD in the desired state serves ${[...served].join(", ") || "no version"})`
                  : ", and no CRD in the desired state declares it"),
              served ? "use a version the CRD serves" : "check the apiVersion and kind, or add the CRD that defines it",
            )
        : undefined,
    );
    const ns = o.id.namespace;
    if (ns !== undefined && !namespaces.has(ns)) {
      await ask(`namespace ${ns}`, o, async () =>
        (await cluster.hasNamespace(ns))
          ? undefined
          : (objects) =>
              new Rejection(
                objects,
                `${displayName(o.id)}: namespace "${ns}" does not exist, and the desired state does not declare it`,
                `add a Namespace "${ns}" to the repository, or put the object in an existing namespace`,
              ),
      );
    }
  }
  return [...problems.values()].flatMap((p) => (p.make ? [p.make(p.objects)] : []));
}

/**
 * The objects the engine's plan (its server-side dry run) failed on, as errors at the file and line
 * that declare them; diagnostics of resources that are not declared objects are left out.
 */
export function engineRejections(diagnostics: readonly EngineDiagnostic[], byUrn: ReadonlyMap<string, DesiredObject>): Rejection[] {
  const errors: Rejection[] = [];
  for (const d of diagnostics) {
    const o = d.urn ? byUrn.get(d.urn) : undefined;
    if (!o) continue;
    errors.push(
      new Rejection(
        [o],
        `${displayName(o.id)}: the API server rejects it: ${shown(o, cleanDiagnostic(d.message))}`,
        "correct the object (a server-side dry run refused it)",
      ),
    );
  }
  return errors;
}

/** An API server's refusal of an object as a run shows it: the quoted values of an object rendered from Secret values masked. */
function shown(o: DesiredObject, message: string): string {
  return o.sensitive ? maskQuoted(message) : message;
}

/** A provider message without its preamble (`resource "urn:..." was not successfully created ...: `). */
function cleanDiagnostic(message: string): string {
  return message
    .trim()
    .replace(/^(error: )?/, "")
    .replace(/^(resource|creation of resource|update of resource) "?urn:pulumi:[^\s"]+"?[^:]*: /, "");
}

/** The message of a run refused because objects do not pass the API server's checks. */
export function rejectionMessage(errors: readonly ManifestError[]): string {
  return (
    `the API server refuses ${errors.length === 1 ? "an object" : `${errors.length} objects`} of this commit; nothing was applied:\n` +
    errors.map((e) => `- ${e.message.replace(/\n/g, "\n  ")}`).join("\n")
  );
}

/** How many dry runs are asked of the API server at once. */
const DRY_RUN_PARALLEL = 8;

/**
 * The API server's dry run of objects an update creates or changes, as errors at the file and line
 * that declare them. Objects in a namespace that does not exist yet, or of a kind the cluster does
 * not serve yet (the same update creates them first), cannot be asked and are left to the update.
 */
export async function dryRunRejections(objects: readonly DesiredObject[], cluster: Cluster): Promise<Rejection[]> {
  const errors: (Rejection | undefined)[] = new Array<Rejection | undefined>(objects.length);
  const rightsChange = grantsChange(objects);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < objects.length; i = next++) {
      const o = objects[i]!;
      if (o.id.namespace !== undefined && !(await cluster.hasNamespace(o.id.namespace))) continue;
      if (!(await cluster.serves(o.object.apiVersion, o.object.kind))) continue;
      // An account's rights that this very update changes cannot be asked ahead: left to the update.
      if (o.serviceAccount && rightsChange) continue;
      const refusal = await cluster.dryRun(o.object, o.serviceAccount ? { impersonate: impersonatedUser(o.serviceAccount) } : undefined);
      if (refusal) {
        errors[i] = new Rejection(
          [o],
          `${displayName(o.id)}: the API server rejects it: ${shown(o, refusal)}`,
          "correct the object (a server-side dry run refused it)",
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DRY_RUN_PARALLEL, objects.length) }, worker));
  return errors.filter((e): e is Rejection => e !== undefined);
}

/**
 * Whether objects applied with the stack's own credentials change RBAC (Roles, RoleBindings and
 * their cluster-wide kinds): then what an impersonated account may do changes with the same update.
 */
function grantsChange(objects: readonly DesiredObject[]): boolean {
  return objects.some((o) => !o.serviceAccount && o.id.group === "rbac.authorization.k8s.io");
}

/** Whether two JSON values are equal, whatever the order of keys. Pure. */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((v, i) => sameData(v, (b as unknown[])[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) => Object.prototype.hasOwnProperty.call(b, k) && sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}
