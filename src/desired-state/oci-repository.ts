import * as path from "node:path";
import { z } from "zod";
import { auditFields, fields, FieldRules, meaningless, refused, SUPPORTED } from "./field-audit";
import { SourceSecretRef } from "./helm-release";
import {
  fieldError,
  ObjectContext,
  optionalBoolean,
  optionalMapping,
  optionalOneOf,
  optionalString,
  parseObject,
  requiredMapping,
  requiredString,
} from "./manifest-schema";
import { KubeObject } from "./object-id";

/** The media type of the layer `flux push artifact` writes: a tar.gz of the pushed folder. */
export const FLUX_CONTENT_MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip";
/** The config media type of a Flux artifact (`flux push artifact`). */
export const FLUX_CONFIG_MEDIA_TYPE = "application/vnd.cncf.flux.config.v1+json";

/** Which manifest of an OCI repository an OCIRepository names, with source-controller's precedence: digest, semver, tag, `latest`. */
export type OciArtifactRef =
  | { readonly kind: "digest"; readonly digest: string }
  | { readonly kind: "semver"; readonly range: string }
  | { readonly kind: "tag"; readonly tag: string };

/** An OCIRepository read as the source of a Flux Kustomization's path: where its artifact is and how to unpack it. */
export interface OciArtifactSource {
  /** `OCIRepository/<namespace>/<name>`, as messages name it. */
  readonly source: string;
  /** `oci://host[:port]/repository`, without a trailing slash. */
  readonly url: string;
  /** `host[:port]` of the registry. */
  readonly host: string;
  /** The repository inside the registry (`team/manifests`). */
  readonly repository: string;
  readonly ref: OciArtifactRef;
  /** `spec.layerSelector`: the first layer of this media type (the first layer when unset), extracted or copied. */
  readonly layer: { readonly mediaType?: string; readonly operation: "extract" | "copy" };
  /** `spec.insecure`: the registry speaks plain HTTP. */
  readonly insecure: boolean;
  readonly secretRef?: SourceSecretRef;
}

const SCHEDULE = "ferry syncs on its own schedule (the stack's interval, webhooks, `ferry sync`)";

/** Every field of an OCIRepository's spec, as ferry treats it when a Kustomization reads its artifact. */
const OCI_REPOSITORY_FIELDS: FieldRules = {
  url: SUPPORTED,
  ref: fields({
    tag: SUPPORTED,
    semver: SUPPORTED,
    digest: SUPPORTED,
    semverFilter: refused(
      "ferry does not run regular expressions from the repository",
      "write the versions you want as a semver range in `spec.ref.semver` alone",
    ),
  }),
  layerSelector: fields({ mediaType: SUPPORTED, operation: SUPPORTED }),
  insecure: SUPPORTED,
  secretRef: SUPPORTED,
  provider: refused(
    "ferry reads registry credentials only from the Secret `spec.secretRef` names",
    "set `spec.provider: generic` (or drop it) and give the credentials in a docker-registry Secret named by `spec.secretRef`",
    (v) => v === "generic",
  ),
  interval: meaningless(SCHEDULE),
  timeout: meaningless("ferry bounds each registry request itself"),
  suspend: refused(
    "ferry reads the artifact on every sync and cannot keep an older one",
    "drop `spec.suspend`, or pin the artifact with `spec.ref.digest`",
  ),
  ignore: refused(
    "ferry does not filter an artifact's files",
    "leave the files out when pushing (`flux push artifact --ignore-paths`), or drop `spec.ignore`",
  ),
  verify: refused("ferry does not verify OCI signatures", "drop `spec.verify`, or verify the artifact before it is pushed"),
  certSecretRef: refused(
    "ferry does not load client certificates or CAs from a Secret",
    "serve the registry with a certificate the machine running ferry trusts, and drop `spec.certSecretRef`",
  ),
  proxySecretRef: refused("ferry does not fetch through a proxy named in the repository", "drop `spec.proxySecretRef`"),
  serviceAccountName: refused(
    "ferry does not read registry credentials from a service account's image pull secrets",
    "give the registry's credentials in a docker-registry Secret named by `spec.secretRef`",
  ),
};

const schema = z.object({
  spec: requiredMapping({
    url: requiredString,
    ref: optionalMapping({ digest: optionalString, semver: optionalString, tag: optionalString }),
    layerSelector: optionalMapping({ mediaType: optionalString, operation: optionalOneOf(["extract", "copy"]) }),
    insecure: optionalBoolean,
    secretRef: optionalMapping({ name: requiredString, namespace: optionalString }),
  }),
});

const OCI_URL_HINT = "write the repository as `oci://host/path` (plain HTTP registries also need `insecure: true`)";
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** An OCI tag as the distribution spec allows it. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** A repository name as the distribution spec allows it (path components of lowercase letters and digits, with separators). */
const REPOSITORY = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;

/**
 * Reads an OCIRepository as a Kustomization's source: its URL, ref (source-controller's precedence;
 * the `latest` tag when none), layer selector, `insecure` and credentials' Secret. Every field is read
 * or refused by name. Pure; throws a ManifestError reported as `context` names it.
 */
export function ociRepositorySource(repo: KubeObject, context: ObjectContext): OciArtifactSource {
  auditFields(repo.spec, OCI_REPOSITORY_FIELDS, context, ["spec"]);
  const { spec } = parseObject(schema, repo, context);
  const url = spec.url.replace(/\/+$/, "");
  const match = /^oci:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!match) throw fieldError(context, ["spec", "url"], `is "${spec.url}", not an oci://host/repository URL`, OCI_URL_HINT);
  const [, host, repository] = match as unknown as [string, string, string];
  if (host.includes("@") || !REPOSITORY.test(repository)) {
    throw fieldError(context, ["spec", "url"], `is "${spec.url}", which names no valid registry host and repository`, OCI_URL_HINT);
  }
  const namespace = repo.metadata.namespace || "default";
  const source = `OCIRepository/${namespace}/${repo.metadata.name}`;
  const r = spec.ref;
  let ref: OciArtifactRef;
  if (r?.digest !== undefined) {
    if (!DIGEST.test(r.digest))
      throw fieldError(context, ["spec", "ref", "digest"], `is "${r.digest}", not a sha256 digest`, "write it as sha256:<64 hex digits>");
    ref = { kind: "digest", digest: r.digest };
  } else if (r?.semver !== undefined) ref = { kind: "semver", range: r.semver };
  else {
    const tag = r?.tag ?? "latest";
    if (!TAG.test(tag))
      throw fieldError(context, ["spec", "ref", "tag"], `is "${tag}", not a valid OCI tag`, "give a tag the registry has");
    ref = { kind: "tag", tag };
  }
  return {
    source,
    url,
    host,
    repository,
    ref,
    layer: {
      ...(spec.layerSelector?.mediaType !== undefined ? { mediaType: spec.layerSelector.mediaType } : {}),
      operation: spec.layerSelector?.operation ?? "extract",
    },
    insecure: spec.insecure ?? false,
    ...(spec.secretRef ? { secretRef: { source, name: spec.secretRef.name, namespace: spec.secretRef.namespace ?? namespace } } : {}),
  };
}

/** A layer (or config) of an OCI image manifest. */
export interface OciDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

/**
 * The layer an OCIRepository's `layerSelector` picks, as source-controller does: the first layer of
 * the media type, or the first layer when none is named. Throws naming the source and the media types
 * the artifact has when none matches.
 */
export function selectOciLayer(layers: readonly OciDescriptor[], mediaType: string | undefined, what: string): OciDescriptor {
  const layer = mediaType === undefined ? layers[0] : layers.find((l) => l.mediaType === mediaType);
  if (layer) return layer;
  if (layers.length === 0) throw new Error(`${what}: the artifact has no layers\n  fix: push the manifests with \`flux push artifact\``);
  throw new Error(
    `${what}: the artifact has no layer of media type ${mediaType} (\`spec.layerSelector.mediaType\`); it has ${[...new Set(layers.map((l) => l.mediaType))].join(", ")}\n` +
      `  fix: name one of those media types, or drop \`spec.layerSelector\``,
  );
}

/** Whether a layer's media type is a gzip-compressed tar, the only layer format a Kustomization can read. */
export function isTarGzipLayer(mediaType: string): boolean {
  return /(\.|\+)tar(\.|\+)gzip$/.test(mediaType) || mediaType.endsWith(".tar.gz") || mediaType.endsWith("+tgz");
}

/**
 * Why a tar entry cannot be unpacked into an artifact's folder: an absolute path, a `..` part, a NUL;
 * undefined when its normalized path stays inside. Pure: only the name is judged.
 */
export function tarEntryProblem(name: string): string | undefined {
  if (name.includes("\0")) return "has a NUL character in its name";
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name)) return "is an absolute path";
  if (name.split(/[\\/]/).includes("..")) return "has a `..` part, which could leave the artifact's folder";
  return undefined;
}

/**
 * Why a symbolic or hard link entry cannot be unpacked: its target is absolute or leaves the
 * artifact's folder (resolved from the entry's own folder for a symlink, from the root for a hard
 * link, as tar reads them); undefined when it stays inside. Pure.
 */
export function tarLinkProblem(name: string, target: string, kind: "symlink" | "link"): string | undefined {
  if (target === "") return "has an empty link target";
  if (target.includes("\0")) return "has a NUL character in its link target";
  if (path.posix.isAbsolute(target)) return `links to the absolute path ${target}`;
  const from = kind === "symlink" ? path.posix.dirname(path.posix.normalize(name)) : ".";
  const resolved = path.posix.normalize(path.posix.join(from, target));
  if (resolved === ".." || resolved.startsWith("../")) return `links to ${target}, outside the artifact's folder`;
  return undefined;
}

/** A `WWW-Authenticate` challenge of a registry: its scheme and parameters (`realm`, `service`, `scope`). */
export interface AuthChallenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses the first challenge of a `WWW-Authenticate` header (`Bearer realm="...",service="..."`). Pure. */
export function parseAuthChallenge(header: string): AuthChallenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : (p[3] ?? "");
  }
  return { scheme: m[1]!.toLowerCase(), params };
}
