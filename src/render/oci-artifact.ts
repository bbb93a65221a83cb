import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import * as tar from "tar-stream";
import { isInside } from "../desired-state/confinement";
import { formatBytes, INPUT_LIMITS } from "../desired-state/input-limits";
import {
  isTarGzipLayer,
  OciArtifactSource,
  OciDescriptor,
  parseAuthChallenge,
  selectOciLayer,
  tarEntryProblem,
  tarLinkProblem,
} from "../desired-state/oci-repository";
import { highestMatchingTag } from "../source/git-source";
import { OutboundGuard, OutboundRefusedError, OutboundResponse } from "./outbound";
import { SourceAuth } from "./source-credentials";

/** An OCI artifact to pull for a unit (a Flux Kustomization whose sourceRef is an OCIRepository). */
export interface OciArtifactRequest {
  /** The unit that names the source (`Kustomization/<ns>/<name>`): what refusals and the fetch log name. */
  readonly unit: string;
  readonly source: OciArtifactSource;
  /** The registry login from the source's own `spec.secretRef`; anonymous when absent. */
  readonly auth?: SourceAuth;
}

/** What a pull needs: the outbound guard every URL goes through, and where unpacked artifacts are kept. */
export interface OciPullContext {
  readonly outbound: Pick<OutboundGuard, "request">;
  /** Folder for unpacked artifacts, one sub-folder per layer digest. */
  readonly cacheDir: string;
}

const MANIFEST_TYPES = ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];
const INDEX_TYPES = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const MAX_REDIRECTS = 5;
const MAX_TAG_PAGES = 100;

/**
 * Pulls an OCIRepository's artifact as source-controller does (the ref resolved to a manifest, the
 * layer the selector picks, its digest and size checked) and unpacks it, confined, into a folder of
 * its own under the cache, named by the layer's digest; returns that folder. Every URL (the
 * registry's, a token realm's, a blob redirect's) goes through the outbound guard.
 */
export async function pullOciArtifact(request: OciArtifactRequest, context: OciPullContext): Promise<string> {
  const { source, unit } = request;
  const what = `${unit}: ${source.source} (${source.url})`;
  const registry = new RegistryClient(request, context.outbound, what);
  const reference =
    source.ref.kind === "digest"
      ? source.ref.digest
      : source.ref.kind === "tag"
        ? source.ref.tag
        : await registry.semverTag(source.ref.range);

  // 1. The manifest: by digest (checked against it) or by tag (checked against the registry's digest header).
  const res = await registry.get(`manifests/${reference}`, {
    accept: [...MANIFEST_TYPES, ...INDEX_TYPES].join(", "),
    maxBytes: INPUT_LIMITS.maxDocumentBytes,
    what: "an OCI manifest",
  });
  if (res.status === 404)
    throw new Error(`${what}: the registry has no artifact ${reference}\n  fix: push it (\`flux push artifact\`), or change \`spec.ref\``);
  if (res.status !== 200) throw new Error(`${what}: the registry answered HTTP ${res.status} for manifest ${reference}`);
  const digest = `sha256:${createHash("sha256").update(res.body).digest("hex")}`;
  const expected = source.ref.kind === "digest" ? source.ref.digest : headerValue(res, "docker-content-digest");
  if (expected !== undefined && DIGEST.test(expected) && expected !== digest) {
    throw new Error(
      `${what}: manifest ${reference} has digest ${digest}, not ${expected}; refused\n  fix: check the registry (or what sits between ferry and it)`,
    );
  }
  const layers = manifestLayers(res, what);

  // 2. The layer the selector picks: a tar.gz, within ferry's size limit.
  const layer = selectOciLayer(layers, source.layer.mediaType, what);
  if (!isTarGzipLayer(layer.mediaType)) {
    throw new Error(
      `${what}: layer ${layer.digest} has media type ${layer.mediaType}, not a tar.gz; a Kustomization reads a folder of manifests\n` +
        "  fix: push the manifests with `flux push artifact`, or select their layer with `spec.layerSelector.mediaType`",
    );
  }
  if (layer.size > INPUT_LIMITS.maxArtifactBytes) {
    throw new Error(
      `${what}: layer ${layer.digest} is ${formatBytes(layer.size)}, more than ${formatBytes(INPUT_LIMITS.maxArtifactBytes)}, ferry's limit for an artifact\n` +
        "  fix: push only the manifests the Kustomization needs",
    );
  }
  // One folder per source URL, one per layer inside it; a folder in use is touched, so the pruning
  // below (after each new layer) never removes one a render of the last hour returned.
  const urlDir = path.join(context.cacheDir, "oci", createHash("sha256").update(source.url).digest("hex").slice(0, 16));
  const dir = path.join(urlDir, layer.digest.replace(":", "-"));
  if (fs.existsSync(dir)) {
    const now = new Date();
    fs.utimesSync(dir, now, now);
    return dir;
  }

  // 3. The blob, checked against the layer's digest and size, unpacked into a folder of its own.
  const blob = await registry.get(`blobs/${layer.digest}`, { maxBytes: layer.size, what: "this artifact's layer (its manifest's size)" });
  if (blob.status !== 200) throw new Error(`${what}: the registry answered HTTP ${blob.status} for layer ${layer.digest}`);
  const blobDigest = `sha256:${createHash("sha256").update(blob.body).digest("hex")}`;
  if (blobDigest !== layer.digest || blob.body.length !== layer.size) {
    throw new Error(
      `${what}: layer ${layer.digest} arrived with digest ${blobDigest} (${blob.body.length} bytes); refused\n  fix: check the registry`,
    );
  }
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  fs.mkdirSync(tmp, { mode: 0o700 });
  try {
    await extractTarGz(blob.body, tmp, what);
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // A concurrent render unpacked the same layer first: its folder holds the same content.
      if (!fs.existsSync(dir)) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  pruneStaleArtifacts(urlDir, dir);
  return dir;
}

/** How long an unpacked artifact no render returned is kept once a newer one of the same source arrives. */
const STALE_ARTIFACT_MS = 60 * 60 * 1000;

/** Removes the older artifacts of a source that no render returned for {@link STALE_ARTIFACT_MS}, so the cache does not grow with every push. */
function pruneStaleArtifacts(urlDir: string, keep: string): void {
  const cutoff = Date.now() - STALE_ARTIFACT_MS;
  for (const name of fs.readdirSync(urlDir)) {
    const p = path.join(urlDir, name);
    if (p === keep) continue;
    try {
      if (fs.statSync(p).mtimeMs < cutoff) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      // Gone already (a concurrent prune), or unreadable: the next prune tries again.
    }
  }
}

/** The layers of an image manifest; an index (several platforms) or anything else is refused by name. */
function manifestLayers(res: OutboundResponse, what: string): OciDescriptor[] {
  let manifest: { mediaType?: unknown; layers?: unknown; manifests?: unknown };
  try {
    manifest = JSON.parse(res.body.toString("utf8")) as typeof manifest;
  } catch {
    throw new Error(`${what}: the registry's manifest is not JSON`);
  }
  const mediaType = typeof manifest.mediaType === "string" ? manifest.mediaType : headerValue(res, "content-type")?.split(";")[0]?.trim();
  if ((mediaType !== undefined && INDEX_TYPES.includes(mediaType)) || Array.isArray(manifest.manifests)) {
    throw new Error(
      `${what}: the reference names an image index (several manifests), not an artifact; ferry reads single-manifest artifacts as \`flux push artifact\` writes them\n` +
        "  fix: point `spec.ref` at the artifact's own tag or digest",
    );
  }
  if (!Array.isArray(manifest.layers)) throw new Error(`${what}: the registry's manifest has no layers list`);
  return manifest.layers.map((l: unknown, i) => {
    const d = l as Partial<OciDescriptor> | null;
    if (
      !d ||
      typeof d.mediaType !== "string" ||
      typeof d.digest !== "string" ||
      !DIGEST.test(d.digest) ||
      typeof d.size !== "number" ||
      d.size < 0
    ) {
      throw new Error(`${what}: layer ${i} of the manifest has no valid mediaType, sha256 digest and size`);
    }
    return { mediaType: d.mediaType, digest: d.digest, size: d.size };
  });
}

function headerValue(res: OutboundResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The registry side of a pull: OCI distribution requests with the login a 401 asks for (a Bearer
 * token from the realm it names, or Basic), redirects followed hop by hop, each through the guard.
 */
class RegistryClient {
  private authorization: string | undefined;
  private readonly base: string;

  constructor(
    private readonly request: OciArtifactRequest,
    private readonly outbound: Pick<OutboundGuard, "request">,
    private readonly what: string,
  ) {
    const { host, repository, insecure } = request.source;
    this.base = `${insecure ? "http" : "https"}://${host}/v2/${repository}/`;
  }

  /** The tag a semver range picks among the repository's tags (every page of the list). */
  async semverTag(range: string): Promise<string> {
    const tags: string[] = [];
    let next: string | undefined = `${this.base}tags/list`;
    for (let page = 0; next !== undefined && page < MAX_TAG_PAGES; page++) {
      const res = await this.getUrl(next, { maxBytes: INPUT_LIMITS.maxDocumentBytes, what: "a tag list" });
      if (res.status !== 200) throw new Error(`${this.what}: the registry answered HTTP ${res.status} for the tag list`);
      const body = JSON.parse(res.body.toString("utf8")) as { tags?: unknown };
      if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === "string"));
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(headerValue(res, "link") ?? "")?.[1];
      next = link !== undefined ? new URL(link, next).toString() : undefined;
    }
    return highestMatchingTag(tags, range, this.what);
  }

  /** A GET of `<base>/<rel>` with the login the registry asks for. */
  get(rel: string, options: { accept?: string; maxBytes: number; what: string }): Promise<OutboundResponse> {
    return this.getUrl(`${this.base}${rel}`, options);
  }

  private async getUrl(url: string, options: { accept?: string; maxBytes: number; what: string }): Promise<OutboundResponse> {
    let res = await this.follow(url, options);
    if (res.status === 401 && this.authorization === undefined) {
      this.authorization = await this.login(res);
      res = await this.follow(url, options);
    }
    if (res.status === 401 || res.status === 403) {
      throw new Error(
        `${this.what}: the registry refused the ${this.request.auth ? "login of the source's secretRef" : "anonymous pull"} (HTTP ${res.status})\n` +
          "  fix: give the OCIRepository a `spec.secretRef` naming a docker-registry Secret with a login for this registry",
      );
    }
    return res;
  }

  /** Follows redirects (blob storage elsewhere); the login is sent to the registry's own host only. */
  private async follow(url: string, options: { accept?: string; maxBytes: number; what: string }): Promise<OutboundResponse> {
    const origin = new URL(this.base).host;
    let current = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const sameHost = new URL(current).host === origin;
      const insecureHop = current.toLowerCase().startsWith("http:") && !this.request.source.insecure;
      if (insecureHop)
        throw new OutboundRefusedError(
          `${this.what}: the registry redirected to plain HTTP (${current}); refused\n  fix: serve the registry over https, or set \`spec.insecure: true\``,
        );
      const headers: Record<string, string> = {
        ...(options.accept ? { accept: options.accept } : {}),
        ...(sameHost && this.authorization ? { authorization: this.authorization } : {}),
      };
      const res = await this.outbound.request(current, this.request.unit, "oci", {
        headers,
        maxBytes: options.maxBytes,
        what: options.what,
      });
      const location = headerValue(res, "location");
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).toString();
        continue;
      }
      return res;
    }
    throw new Error(`${this.what}: more than ${MAX_REDIRECTS} redirects`);
  }

  /** The Authorization header a 401's challenge asks for: a Bearer token from its realm, or the Basic login. */
  private async login(res: OutboundResponse): Promise<string | undefined> {
    const challenge = parseAuthChallenge(headerValue(res, "www-authenticate") ?? "");
    const auth = this.request.auth;
    const basic =
      auth?.username !== undefined ? `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ""}`).toString("base64")}` : undefined;
    if (challenge?.scheme === "basic") return basic;
    if (challenge?.scheme !== "bearer" || !challenge.params.realm) return undefined;
    const realm = new URL(challenge.params.realm);
    if (realm.protocol !== "https:" && !(realm.protocol === "http:" && this.request.source.insecure)) {
      throw new OutboundRefusedError(
        `${this.what}: the registry names token realm ${realm.origin}, which is not https; refused\n  fix: serve the token service over https, or set \`spec.insecure: true\` for a registry on a trusted network`,
      );
    }
    if (challenge.params.service) realm.searchParams.set("service", challenge.params.service);
    realm.searchParams.set("scope", challenge.params.scope ?? `repository:${this.request.source.repository}:pull`);
    const token = await this.outbound.request(realm.toString(), this.request.unit, "oci", {
      headers: basic ? { authorization: basic } : {},
      maxBytes: INPUT_LIMITS.maxDocumentBytes,
      what: "a registry token",
    });
    if (token.status !== 200) {
      throw new Error(
        `${this.what}: the registry's token service (${realm.origin}) answered HTTP ${token.status}\n` +
          "  fix: give the OCIRepository a `spec.secretRef` naming a docker-registry Secret with a login for this registry",
      );
    }
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse(token.body.toString("utf8")) as typeof body;
    } catch {
      throw new Error(`${this.what}: the registry's token service (${realm.origin}) did not answer JSON`);
    }
    const value = typeof body.token === "string" ? body.token : typeof body.access_token === "string" ? body.access_token : undefined;
    if (!value) throw new Error(`${this.what}: the registry's token service (${realm.origin}) gave no token`);
    return `Bearer ${value}`;
  }
}

/**
 * Unpacks a tar.gz into `dest` (an empty folder), confined: absolute paths, `..` parts, links that
 * leave the folder (also through other links), devices and FIFOs are refused by name; regular files
 * and folders first, symbolic links last, each checked where it really resolves. Stops at ferry's
 * limits on unpacked size and entry count.
 */
export async function extractTarGz(archive: Buffer, dest: string, what: string): Promise<void> {
  const root = fs.realpathSync.native(dest);
  const refuse = (name: string, problem: string): Error =>
    new Error(
      `${what}: artifact entry "${name}" ${problem}; refused\n  fix: push the artifact from a plain folder of manifests (\`flux push artifact\`)`,
    );
  const limit = INPUT_LIMITS.maxArtifactUnpackedBytes;
  const extract = tar.extract();
  const gunzip = zlib.createGunzip();
  let unpacked = 0;
  gunzip.on("data", (chunk: Buffer) => {
    unpacked += chunk.length;
    if (unpacked > limit) {
      gunzip.destroy(
        new Error(
          `${what}: the artifact unpacks to more than ${formatBytes(limit)}, ferry's limit\n  fix: push only the manifests the Kustomization needs`,
        ),
      );
      return;
    }
    if (!extract.write(chunk)) {
      gunzip.pause();
      extract.once("drain", () => gunzip.resume());
    }
  });
  gunzip.on("end", () => extract.end(undefined));
  gunzip.on("error", (err) => extract.destroy(err));
  gunzip.end(archive);

  const symlinks: { name: string; rel: string; target: string }[] = [];
  let entries = 0;
  try {
    for await (const entry of extract) {
      const { header } = entry;
      const name = header.name;
      if (++entries > INPUT_LIMITS.maxArtifactEntries)
        throw refuse(name, `is past ${INPUT_LIMITS.maxArtifactEntries} entries, ferry's limit for an artifact`);
      const problem = tarEntryProblem(name);
      if (problem !== undefined) throw refuse(name, problem);
      const rel = path.posix.normalize(name.replace(/^(\.\/)+/, "")).replace(/\/+$/, "");
      const abs = path.join(root, rel);
      if (rel === "" || rel === ".") {
        entry.resume();
        continue; // the folder itself
      }
      try {
        await unpackEntry(entry, name, rel, abs, root, symlinks, refuse);
      } catch (err) {
        if (err instanceof Error && "code" in err) throw refuse(name, `cannot be unpacked (${String(err.code)})`);
        throw err;
      }
    }
  } catch (err) {
    gunzip.destroy();
    throw err;
  }
  // Links last, so no file above was written through one; each is made only in a folder that really
  // is inside, and every link is checked again once all exist (a link may run through a later one).
  for (const link of symlinks) {
    const abs = path.join(root, link.rel);
    const parent = nearestExisting(path.dirname(abs));
    if (!isInside(root, parent)) throw refuse(link.name, "would be made through a link that leaves the artifact's folder");
    try {
      fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o755 });
    } catch (err) {
      throw refuse(link.name, `cannot be unpacked (${err instanceof Error && "code" in err ? String(err.code) : "mkdir"})`);
    }
    if (!isInside(root, fs.realpathSync.native(path.dirname(abs))))
      throw refuse(link.name, "would be made through a link that leaves the artifact's folder");
    if (lstat(abs)) throw refuse(link.name, "would replace another entry of the artifact");
    fs.symlinkSync(link.target, abs);
  }
  for (const link of symlinks) {
    const real = realpath(path.join(root, link.rel));
    if (real !== undefined && !isInside(root, real)) throw refuse(link.name, `resolves to ${real}, outside the artifact's folder`);
  }
}

/** Unpacks one entry (a folder, a file, a hard link as a copy); a symlink is recorded for later; anything else is refused. */
async function unpackEntry(
  entry: tar.Extract extends AsyncIterable<infer S> ? S : never,
  name: string,
  rel: string,
  abs: string,
  root: string,
  symlinks: { name: string; rel: string; target: string }[],
  refuse: (name: string, problem: string) => Error,
): Promise<void> {
  const { header } = entry;
  switch (header.type) {
    case "directory":
      fs.mkdirSync(abs, { recursive: true, mode: 0o755 });
      entry.resume();
      break;
    case "file":
    case "contiguous-file": {
      fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o755 });
      const existing = lstat(abs);
      if (existing && !existing.isFile()) throw refuse(name, "would replace a folder or link of the artifact");
      const fd = fs.openSync(abs, "w", 0o644);
      try {
        for await (const chunk of entry) fs.writeSync(fd, chunk as Buffer);
      } finally {
        fs.closeSync(fd);
      }
      break;
    }
    case "link": {
      const linkProblem = tarLinkProblem(name, header.linkname, "link");
      if (linkProblem !== undefined) throw refuse(name, linkProblem);
      const target = path.join(root, path.posix.normalize(header.linkname));
      if (!lstat(target)?.isFile()) throw refuse(name, `is a hard link to ${header.linkname}, which is not a file unpacked before it`);
      fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o755 });
      if (lstat(abs)) throw refuse(name, "would replace another entry of the artifact");
      fs.copyFileSync(target, abs);
      entry.resume();
      break;
    }
    case "symlink": {
      const linkProblem = tarLinkProblem(name, header.linkname, "symlink");
      if (linkProblem !== undefined) throw refuse(name, linkProblem);
      symlinks.push({ name, rel, target: header.linkname });
      entry.resume();
      break;
    }
    default:
      throw refuse(name, `is a ${header.type}, which ferry does not unpack`);
  }
}

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

function realpath(p: string): string | undefined {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return undefined;
  }
}

/** The real path of the nearest folder above `p` (or `p` itself) that exists. */
function nearestExisting(p: string): string {
  for (let dir = p; ; dir = path.dirname(dir)) {
    const real = realpath(dir);
    if (real !== undefined) return real;
    if (path.dirname(dir) === dir) return dir;
  }
}
