import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { after, before, describe, it } from "node:test";
import * as tar from "tar-stream";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import {
  FLUX_CONTENT_MEDIA_TYPE,
  ociRepositorySource,
  parseAuthChallenge,
  selectOciLayer,
  tarEntryProblem,
  tarLinkProblem,
} from "../../src/desired-state/oci-repository";
import { KubeObject } from "../../src/desired-state/object-id";
import { sourcePolicy } from "../../src/desired-state/source-policy";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { extractTarGz, pullOciArtifact } from "../../src/render/oci-artifact";
import { OutboundGuard } from "../../src/render/outbound";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const at = { file: "c/source.yaml", line: 3 };
const ociRepo = (spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "source.toolkit.fluxcd.io/v1beta2",
  kind: "OCIRepository",
  metadata: { name: "manifests", namespace: "apps" },
  spec: { url: "oci://registry.example/team/manifests", ...spec },
});
const read = (spec: Record<string, unknown>) => ociRepositorySource(ociRepo(spec), { what: "OCIRepository/apps/manifests", location: at });
const DIGEST = `sha256:${"a".repeat(64)}`;

type Entry = { name: string; type?: "file" | "directory" | "symlink" | "link" | "character-device"; body?: string; linkname?: string };

/** A tar.gz of the entries, made with tar-stream as `flux push artifact` makes one with Go's tar. */
async function tarGz(entries: readonly Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? "file";
    if (type === "file") pack.entry({ name: e.name }, e.body ?? "");
    else
      pack.entry({ name: e.name, type, linkname: e.linkname ?? "", ...(type === "character-device" ? { devmajor: 1, devminor: 3 } : {}) });
  }
  pack.finalize();
  await done;
  return zlib.gzipSync(Buffer.concat(chunks));
}

describe("ociRepositorySource", () => {
  it("picks the ref as source-controller does: digest, then semver, then tag, else `latest`", () => {
    assert.deepEqual(read({ ref: { digest: DIGEST, semver: "1.x", tag: "v1" } }).ref, { kind: "digest", digest: DIGEST });
    assert.deepEqual(read({ ref: { semver: ">=1.0.0 <2.0.0", tag: "v1" } }).ref, { kind: "semver", range: ">=1.0.0 <2.0.0" });
    assert.deepEqual(read({ ref: { tag: "main" } }).ref, { kind: "tag", tag: "main" });
    const source = read({});
    assert.deepEqual(source.ref, { kind: "tag", tag: "latest" });
    assert.equal(source.host, "registry.example");
    assert.equal(source.repository, "team/manifests");
    assert.deepEqual(source.layer, { operation: "extract" });
    assert.equal(source.insecure, false);
  });

  it("reads layerSelector, insecure and the secretRef in the source's namespace", () => {
    const s = read({
      layerSelector: { mediaType: FLUX_CONTENT_MEDIA_TYPE, operation: "copy" },
      insecure: true,
      secretRef: { name: "login" },
      provider: "generic",
      interval: "5m",
    });
    assert.deepEqual(s.layer, { mediaType: FLUX_CONTENT_MEDIA_TYPE, operation: "copy" });
    assert.equal(s.insecure, true);
    assert.deepEqual(s.secretRef, { source: "OCIRepository/apps/manifests", name: "login", namespace: "apps" });
  });

  it("refuses by name what it does not implement: provider, verify, certSecretRef, proxySecretRef, semverFilter, ignore, unknown fields", () => {
    const refusals: [Record<string, unknown>, RegExp][] = [
      [{ provider: "aws" }, /`spec\.provider` is not supported/],
      [{ verify: { provider: "cosign" } }, /`spec\.verify` is not supported: ferry does not verify OCI signatures/],
      [{ certSecretRef: { name: "ca" } }, /`spec\.certSecretRef` is not supported/],
      [{ proxySecretRef: { name: "proxy" } }, /`spec\.proxySecretRef` is not supported/],
      [{ ref: { semver: "1.x", semverFilter: ".*-rc" } }, /`spec\.ref\.semverFilter` is not supported/],
      [{ ignore: "*.md" }, /`spec\.ignore` is not supported/],
      [{ serviceAccountName: "puller" }, /`spec\.serviceAccountName` is not supported/],
      [{ layerSelector: { operation: "unpack" } }, /`spec\.layerSelector\.operation`/],
      [{ url: "https://registry.example/team" }, /`spec\.url` is "https:\/\/registry\.example\/team", not an oci:\/\/host\/repository URL/],
      [{ ref: { digest: "sha256:abc" } }, /`spec\.ref\.digest` is "sha256:abc", not a sha256 digest/],
      [{ typo: true }, /`spec\.typo` is not a field ferry knows/],
    ];
    for (const [spec, message] of refusals) {
      assert.throws(
        () => read(spec),
        (err: Error) => {
          assert.match(err.message, /OCIRepository\/apps\/manifests/);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });
});

describe("selectOciLayer", () => {
  const layers = [
    { mediaType: "application/vnd.example.readme", digest: DIGEST, size: 1 },
    { mediaType: FLUX_CONTENT_MEDIA_TYPE, digest: `sha256:${"b".repeat(64)}`, size: 2 },
  ];
  it("takes the first layer without a selector and the first of the media type with one", () => {
    assert.equal(selectOciLayer(layers, undefined, "x").digest, DIGEST);
    assert.equal(selectOciLayer(layers, FLUX_CONTENT_MEDIA_TYPE, "x").size, 2);
  });
  it("names the media types the artifact has when none matches", () => {
    assert.throws(
      () => selectOciLayer(layers, "application/x-nope", "OCIRepository/apps/m"),
      /OCIRepository\/apps\/m: the artifact has no layer of media type application\/x-nope .*it has application\/vnd\.example\.readme, application\/vnd\.cncf\.flux\.content\.v1\.tar\+gzip/,
    );
  });
});

describe("tar entry confinement", () => {
  it("refuses absolute paths, `..` parts and NULs, and accepts paths inside", () => {
    assert.equal(tarEntryProblem("./apps/cm.yaml"), undefined);
    assert.equal(tarEntryProblem("apps/a..b.yaml"), undefined);
    assert.match(tarEntryProblem("/etc/passwd") ?? "", /absolute/);
    assert.match(tarEntryProblem("apps/../../x") ?? "", /`\.\.`/);
    assert.match(tarEntryProblem("..") ?? "", /`\.\.`/);
    assert.match(tarEntryProblem("a\0b") ?? "", /NUL/);
  });
  it("refuses links that point outside, from the entry's folder for symlinks and from the root for hard links", () => {
    assert.equal(tarLinkProblem("apps/current", "../base", "symlink"), undefined);
    assert.match(tarLinkProblem("apps/current", "../../x", "symlink") ?? "", /outside/);
    assert.match(tarLinkProblem("apps/x", "/etc/passwd", "symlink") ?? "", /absolute/);
    assert.equal(tarLinkProblem("apps/x", "base/cm.yaml", "link"), undefined);
    assert.match(tarLinkProblem("apps/x", "../cm.yaml", "link") ?? "", /outside/);
  });
  it("parses registry challenges", () => {
    assert.deepEqual(
      parseAuthChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'),
      {
        scheme: "bearer",
        params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull" },
      },
    );
    assert.deepEqual(parseAuthChallenge('Basic realm="ferry-test"'), { scheme: "basic", params: { realm: "ferry-test" } });
  });
});

describe("extractTarGz", () => {
  const extract = async (entries: Entry[]) => {
    const dir = tempDir();
    await extractTarGz(await tarGz(entries), dir, "Kustomization/apps/m");
    return dir;
  };
  it("unpacks files, folders, links inside the folder and hard links as copies", async () => {
    const dir = await extract([
      { name: "./", type: "directory" },
      { name: "./apps/", type: "directory" },
      { name: "./apps/cm.yaml", body: "kind: ConfigMap\n" },
      { name: "./apps/copy.yaml", type: "link", linkname: "apps/cm.yaml" },
      { name: "./current", type: "symlink", linkname: "apps" },
    ]);
    assert.equal(fs.readFileSync(path.join(dir, "apps/cm.yaml"), "utf8"), "kind: ConfigMap\n");
    assert.equal(fs.readFileSync(path.join(dir, "apps/copy.yaml"), "utf8"), "kind: ConfigMap\n");
    assert.equal(fs.readFileSync(path.join(dir, "current/cm.yaml"), "utf8"), "kind: ConfigMap\n");
  });

  it("refuses entries that would leave the folder, by name, and writes nothing outside", async () => {
    const cases: [Entry[], RegExp][] = [
      [[{ name: "../escape.yaml", body: "x" }], /"\.\.\/escape\.yaml" has a `\.\.` part/],
      [[{ name: "/tmp/abs.yaml", body: "x" }], /"\/tmp\/abs\.yaml" is an absolute path/],
      [[{ name: "passwd", type: "symlink", linkname: "/etc/passwd" }], /"passwd" links to the absolute path \/etc\/passwd/],
      [[{ name: "a/up", type: "symlink", linkname: "../../.." }], /"a\/up" links to \.\.\/\.\.\/\.\., outside/],
      [[{ name: "shadow", type: "link", linkname: "../shadow" }], /"shadow" links to \.\.\/shadow, outside/],
      // Each link stays inside when read alone; through the other one, `a` is the folder's parent.
      [
        [
          { name: "a", type: "symlink", linkname: "b/.." },
          { name: "b", type: "symlink", linkname: "." },
        ],
        /"a" resolves to .*, outside the artifact's folder/,
      ],
      [[{ name: "null", type: "character-device" }], /"null" is a character-device, which ferry does not unpack/],
    ];
    for (const [entries, message] of cases) {
      const parent = tempDir();
      const dir = path.join(parent, "artifact");
      fs.mkdirSync(dir);
      await assert.rejects(extractTarGz(await tarGz(entries), dir, "Kustomization/apps/m"), (err: Error) => {
        assert.match(err.message, /^Kustomization\/apps\/m: artifact entry /);
        assert.match(err.message, message);
        return true;
      });
      assert.deepEqual(fs.readdirSync(parent), ["artifact"], "nothing is written next to the folder");
    }
  });
});

describe("pullOciArtifact", () => {
  // A registry that wants a Bearer token from its own token service, as Docker Hub or GHCR do.
  let server: http.Server;
  let host = "";
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, Buffer>();
  const requests: string[] = [];
  const TOKEN = "t0ken-from-realm";
  const push = async (tag: string, entries: Entry[]) => {
    const layer = await tarGz(entries);
    const digest = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
    const config = Buffer.from("{}");
    blobs.set(digest(layer), layer);
    blobs.set(digest(config), config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.cncf.flux.config.v1+json", digest: digest(config), size: config.length },
        layers: [{ mediaType: FLUX_CONTENT_MEDIA_TYPE, digest: digest(layer), size: layer.length }],
      }),
    );
    manifests.set(tag, manifest);
    manifests.set(digest(manifest), manifest);
    return digest(manifest);
  };

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      requests.push(`${url.pathname} ${req.headers.authorization ?? "-"}`);
      if (url.pathname === "/token") {
        const ok = req.headers.authorization === `Basic ${Buffer.from("puller:s3cret").toString("base64")}`;
        assert.equal(url.searchParams.get("scope"), "repository:team/manifests:pull");
        res.writeHead(ok ? 200 : 401, { "content-type": "application/json" }).end(ok ? JSON.stringify({ token: TOKEN }) : "{}");
        return;
      }
      // A redirected blob is served as a presigned URL is: without a login.
      const moved = url.searchParams.get("moved") !== null;
      if (req.headers.authorization !== `Bearer ${TOKEN}` && !moved) {
        res
          .writeHead(401, {
            "www-authenticate": `Bearer realm="http://${host}/token",service="test",scope="repository:team/manifests:pull"`,
          })
          .end();
        return;
      }
      const m = /^\/v2\/team\/manifests\/(tags\/list|manifests\/(.+)|blobs\/(.+))$/.exec(url.pathname);
      if (m?.[1] === "tags/list")
        return void res.end(
          JSON.stringify({ name: "team/manifests", tags: [...manifests.keys()].filter((t) => !t.startsWith("sha256:")) }),
        );
      const body = m?.[2] !== undefined ? manifests.get(m[2]) : m?.[3] !== undefined ? blobs.get(m[3]) : undefined;
      if (!body) return void res.writeHead(404).end();
      // The blob lives elsewhere (as on S3): the login must not follow the redirect.
      if (m?.[3] !== undefined && !moved) {
        res.writeHead(307, { location: `http://localhost:${(server.address() as AddressInfo).port}${url.pathname}?moved=1` }).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    await push("1.0.0", [{ name: "apps/cm.yaml", body: "version: 1.0.0\n" }]);
    await push("1.2.0", [{ name: "apps/cm.yaml", body: "version: 1.2.0\n" }]);
    await push("2.0.0", [{ name: "apps/cm.yaml", body: "version: 2.0.0\n" }]);
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const guard = new OutboundGuard({ policy: sourcePolicy({ localAddresses: "allow" }), cluster: {}, log: silentLog() });
  const pull = (spec: Record<string, unknown>, auth?: { username: string; password: string }) =>
    pullOciArtifact(
      {
        unit: "Kustomization/apps/m",
        source: read({ url: `oci://${host}/team/manifests`, insecure: true, ...spec }),
        ...(auth ? { auth } : {}),
      },
      { outbound: guard, cacheDir: tempDir() },
    );

  it("pulls the highest tag in a semver range through the registry's token service, and unpacks it", async () => {
    requests.length = 0;
    const dir = await pull({ ref: { semver: "1.x" } }, { username: "puller", password: "s3cret" });
    assert.equal(fs.readFileSync(path.join(dir, "apps/cm.yaml"), "utf8"), "version: 1.2.0\n");
    assert.ok(
      requests.some((r) => r.startsWith("/token Basic ")),
      "the login went to the token realm",
    );
    assert.ok(
      requests.some((r) => /^\/v2\/team\/manifests\/blobs\/\S+ -$/.test(r)),
      "the redirected blob request carries no login (another host)",
    );
  });

  it("pulls by digest and refuses a digest the registry does not hold", async () => {
    const digest = await push("by-digest", [{ name: "cm.yaml", body: "pinned\n" }]);
    const dir = await pull({ ref: { digest } }, { username: "puller", password: "s3cret" });
    assert.equal(fs.readFileSync(path.join(dir, "cm.yaml"), "utf8"), "pinned\n");
    await assert.rejects(pull({ ref: { digest: DIGEST } }, { username: "puller", password: "s3cret" }), /has no artifact sha256:a{64}/);
  });

  it("refuses a pull without the login the registry asks for, naming the fix", async () => {
    await assert.rejects(
      pull({ ref: { tag: "1.0.0" } }),
      /registry's token service .* answered HTTP 401[\s\S]*fix: give the OCIRepository a `spec\.secretRef`/,
    );
    await assert.rejects(pull({ ref: { tag: "1.0.0" } }, { username: "puller", password: "wrong" }), /HTTP 401/);
  });

  it("reuses an unpacked layer without fetching it again, and removes a source's older layer no render used for an hour", async () => {
    const cacheDir = tempDir();
    const login = { username: "puller", password: "s3cret" };
    const pullInto = (tag: string) =>
      pullOciArtifact(
        { unit: "Kustomization/apps/m", source: read({ url: `oci://${host}/team/manifests`, insecure: true, ref: { tag } }), auth: login },
        { outbound: guard, cacheDir },
      );
    const old = await pullInto("1.0.0");
    requests.length = 0;
    assert.equal(await pullInto("1.0.0"), old);
    assert.ok(!requests.some((r) => r.includes("/blobs/")), requests.join("\n"));
    const hourAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    fs.utimesSync(old, hourAgo, hourAgo);
    const newer = await pullInto("2.0.0");
    assert.equal(fs.readFileSync(path.join(newer, "apps/cm.yaml"), "utf8"), "version: 2.0.0\n");
    assert.equal(fs.existsSync(old), false, "the older layer is gone");
  });

  it("refuses a layer over the size limit before fetching it, and a blob whose digest is not the manifest's", async () => {
    const login = { username: "puller", password: "s3cret" };
    const manifest = (layer: { digest: string; size: number }) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          layers: [{ mediaType: FLUX_CONTENT_MEDIA_TYPE, ...layer }],
        }),
      );
    manifests.set("huge", manifest({ digest: `sha256:${"c".repeat(64)}`, size: 65 * 1024 * 1024 }));
    requests.length = 0;
    await assert.rejects(
      pull({ ref: { tag: "huge" } }, login),
      /layer sha256:c{64} is 65 MiB, more than 64 MiB, ferry's limit for an artifact/,
    );
    assert.ok(!requests.some((r) => r.includes("/blobs/")), "the blob was never asked for");

    const tampered = await tarGz([{ name: "cm.yaml", body: "tampered\n" }]);
    const claimed = `sha256:${"d".repeat(64)}`;
    blobs.set(claimed, tampered);
    manifests.set("tampered", manifest({ digest: claimed, size: tampered.length }));
    await assert.rejects(pull({ ref: { tag: "tampered" } }, login), /layer sha256:d{64} arrived with digest sha256:[0-9a-f]{64} .*refused/);
  });

  it("sends nothing to a registry the stack's policy refuses", async () => {
    const refusing = new OutboundGuard({ policy: sourcePolicy({ localAddresses: "refuse" }), cluster: {}, log: silentLog() });
    requests.length = 0;
    await assert.rejects(
      pullOciArtifact(
        { unit: "Kustomization/apps/m", source: read({ url: `oci://${host}/team/manifests`, insecure: true }) },
        { outbound: refusing, cacheDir: tempDir() },
      ),
      /Kustomization\/apps\/m/,
    );
    assert.deepEqual(requests, []);
  });
});

describe("buildDesiredState with an OCIRepository source", () => {
  it("reads the Kustomization's path from the unpacked artifact, with the registry login of the source's docker-registry Secret", async () => {
    const repo = tempDir();
    const artifact = tempDir();
    writeFiles(artifact, {
      "deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-oci, namespace: apps}\ndata: {k: v}\n",
    });
    const dockerConfig = JSON.stringify({ auths: { "registry.example": { auth: Buffer.from("puller:oci-s3cret").toString("base64") } } });
    writeFiles(repo, {
      "c/source.yaml": [
        "apiVersion: v1",
        "kind: Secret",
        "metadata: {name: login, namespace: apps}",
        "type: kubernetes.io/dockerconfigjson",
        `stringData: {.dockerconfigjson: '${dockerConfig}'}`,
        "---",
        "apiVersion: source.toolkit.fluxcd.io/v1beta2",
        "kind: OCIRepository",
        "metadata: {name: manifests, namespace: apps}",
        "spec: {url: oci://registry.example/team/manifests, ref: {tag: v1}, secretRef: {name: login}}",
        "---",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1",
        "kind: Kustomization",
        "metadata: {name: apps, namespace: apps}",
        "spec: {path: ./deploy, prune: true, sourceRef: {kind: OCIRepository, name: manifests}}",
        "",
      ].join("\n"),
    });
    const tools = new FakeRenderTools();
    tools.ociArtifacts["oci://registry.example/team/manifests"] = artifact;
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    assert.deepEqual(tools.ociRequests[0]?.auth, { username: "puller", password: "oci-s3cret" });
    assert.equal(tools.ociRequests[0]?.unit, "Kustomization/apps/apps");
    const names = state.units.flatMap((u) => u.objects.map((o) => `${o.id.kind}/${o.id.name}`));
    assert.ok(names.includes("ConfigMap/from-oci"), names.join(", "));
    assert.ok(
      (state.sensitive ?? []).some((s) => s.includes("oci-s3cret")),
      "the registry password is masked",
    );
  });
});

function silentLog() {
  const noop = () => undefined;
  const log = { info: noop, warn: noop, error: noop, debug: noop, child: () => log };
  return log as unknown as ConstructorParameters<typeof OutboundGuard>[0]["log"];
}
