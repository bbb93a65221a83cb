import { ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import * as tar from "tar-stream";
import { run, runChecked } from "../../src/lib/exec";
import { freePort, pollUntil } from "../../src/lib/net";
import { ferryRoot } from "../../src/lib/paths";

/** A real OCI registry (CNCF Distribution, from the toolchain) on loopback, plain HTTP, storage in a temp dir. */
export interface OciRegistry {
  /** `127.0.0.1:<port>`: what `oci://` URLs name. */
  readonly host: string;
  /** Pushes a fixture chart (test/fixtures/charts/<name>) to `oci://<host>/<repository>/<name>`; returns the manifest digest. */
  push(chart: { name: string; version?: string }, repository?: string): Promise<string>;
  /**
   * Pushes a Flux artifact as `flux push artifact` does (one tar.gz layer of the files, Flux's media
   * types) to `oci://<host>/<repository>:<tag>` with plain distribution API calls; returns the manifest digest.
   */
  pushArtifact(repository: string, tag: string, files: Readonly<Record<string, string>>): Promise<string>;
  close(): Promise<void>;
}

/** The media types `flux push artifact` writes. */
const FLUX_CONFIG_TYPE = "application/vnd.cncf.flux.config.v1+json";
const FLUX_CONTENT_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip";

const sha256 = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A tar.gz of files (with their folders), as Flux packs a folder. */
async function tarGz(files: Readonly<Record<string, string>>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  const dirs = new Set<string>();
  for (const name of Object.keys(files).sort()) {
    for (let d = path.posix.dirname(name); d !== "."; d = path.posix.dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort()) pack.entry({ name: `${d}/`, type: "directory", mode: 0o755 });
  for (const [name, text] of Object.entries(files).sort()) pack.entry({ name, mode: 0o644 }, text);
  pack.finalize();
  await done;
  return zlib.gzipSync(Buffer.concat(chunks));
}

/** Credentials the registry asks for (htpasswd basic auth); none means anonymous pushes and pulls. */
export interface OciRegistryAuth {
  readonly username: string;
  readonly password: string;
}

/**
 * Starts the toolchain's `registry` binary on 127.0.0.1 with a generated config.yml (filesystem
 * storage in a temp dir, optional htpasswd auth) and waits until it answers `/v2/`.
 */
export async function startOciRegistry(registry: string, helm: string, auth?: OciRegistryAuth): Promise<OciRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-oci-"));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(path.join(dir, "storage"))}`,
    "http:",
    `  addr: ${host}`,
    "  secret: ferry-test-registry",
  ];
  if (auth) {
    const line = (await runChecked(registry, ["htpasswd", auth.username], { input: `${auth.password}\n` })).stdout;
    fs.writeFileSync(path.join(dir, "htpasswd"), line);
    lines.push("auth:", "  htpasswd:", "    realm: ferry-test", `    path: ${JSON.stringify(path.join(dir, "htpasswd"))}`);
  }
  fs.writeFileSync(path.join(dir, "config.yml"), `${lines.join("\n")}\n`);
  const log = fs.openSync(path.join(dir, "registry.log"), "a");
  // OTEL_TRACES_EXPORTER=none: the registry would otherwise export traces to an OTLP collector.
  const child: ChildProcess = spawn(registry, ["serve", path.join(dir, "config.yml")], {
    env: { ...process.env, OTEL_TRACES_EXPORTER: "none" },
    stdio: ["ignore", log, log],
  });
  fs.closeSync(log);
  let exited = false;
  child.on("exit", () => (exited = true));
  const close = async (): Promise<void> => {
    if (!exited) {
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (!exited) child.kill("SIGKILL");
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await pollUntil(
      `the OCI registry on ${host}`,
      async () => {
        if (exited) throw new Error(`the registry exited: ${fs.readFileSync(path.join(dir, "registry.log"), "utf8")}`);
        const res = await fetch(`http://${host}/v2/`).catch(() => undefined);
        return res && (res.status === 200 || res.status === 401) ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  } catch (err) {
    await close();
    throw err;
  }
  const helmEnv = {
    ...process.env,
    HELM_CACHE_HOME: path.join(dir, "helm", "cache"),
    HELM_CONFIG_HOME: path.join(dir, "helm", "config"),
    HELM_REGISTRY_CONFIG: path.join(dir, "helm", "registry.json"),
    DOCKER_CONFIG: path.join(dir, "docker"),
  };
  const authArgs = auth ? ["--username", auth.username, "--password", auth.password] : [];
  return {
    host,
    async push(chart, repository = "charts") {
      const out = path.join(dir, "packages", `${chart.name}-${chart.version ?? "default"}`);
      fs.mkdirSync(out, { recursive: true });
      const args = ["package", path.join(ferryRoot(), "test", "fixtures", "charts", chart.name), "--destination", out];
      if (chart.version) args.push("--version", chart.version);
      await runChecked(helm, args, { env: helmEnv });
      const tgz = path.join(
        out,
        fs.readdirSync(out).find((f) => f.endsWith(".tgz"))!,
      );
      const pushed = await run(helm, ["push", tgz, `oci://${host}/${repository}`, "--plain-http", ...authArgs], { env: helmEnv });
      if (pushed.code !== 0) throw new Error(`helm push ${chart.name}: ${pushed.stderr}`);
      const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(`${pushed.stdout}\n${pushed.stderr}`)?.[1];
      if (!digest) throw new Error(`helm push ${chart.name}: no digest in its output: ${pushed.stdout}${pushed.stderr}`);
      return digest;
    },
    async pushArtifact(repository, tag, files) {
      const headers: Record<string, string> = auth
        ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}` }
        : {};
      const base = `http://${host}/v2/${repository}`;
      const upload = async (blob: Buffer): Promise<{ digest: string; size: number }> => {
        const digest = sha256(blob);
        const started = await fetch(`${base}/blobs/uploads/`, { method: "POST", headers });
        const location = started.headers.get("location");
        if (started.status !== 202 || !location) throw new Error(`blob upload to ${base}: HTTP ${started.status}`);
        const url = new URL(location, `http://${host}`);
        url.searchParams.set("digest", digest);
        const put = await fetch(url, {
          method: "PUT",
          headers: { ...headers, "content-type": "application/octet-stream" },
          body: blob,
        });
        if (put.status !== 201) throw new Error(`blob upload to ${base}: HTTP ${put.status} ${await put.text()}`);
        return { digest, size: blob.length };
      };
      const config = await upload(Buffer.from("{}"));
      const layer = await upload(await tarGz(files));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: FLUX_CONFIG_TYPE, ...config },
          layers: [{ mediaType: FLUX_CONTENT_TYPE, ...layer }],
          annotations: {
            "org.opencontainers.image.source": "https://example.invalid/ferry-test",
            "org.opencontainers.image.revision": tag,
          },
        }),
      );
      const put = await fetch(`${base}/manifests/${tag}`, {
        method: "PUT",
        headers: { ...headers, "content-type": "application/vnd.oci.image.manifest.v1+json" },
        body: manifest,
      });
      if (put.status !== 201) throw new Error(`manifest put to ${base}: HTTP ${put.status} ${await put.text()}`);
      return sha256(manifest);
    },
    close,
  };
}
