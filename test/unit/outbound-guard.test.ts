import assert from "node:assert/strict";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as path from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { SourcePolicy, sourcePolicy } from "../../src/desired-state/source-policy";
import { OutboundGuard, OutboundRefusedError } from "../../src/render/outbound";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const unit = "HelmRelease/apps/web";

/** A kubeconfig whose one context's API server is at `server`. */
function kubeconfig(server: string): string {
  const dir = tempDir();
  writeFiles(dir, {
    config: [
      "apiVersion: v1",
      "kind: Config",
      "clusters: [{name: c, cluster: {server: '" + server + "'}}]",
      "users: [{name: u, user: {token: t}}]",
      "contexts: [{name: x, context: {cluster: c, user: u}}]",
      "current-context: x",
      "",
    ].join("\n"),
  });
  return path.join(dir, "config");
}

function guard(policy: Partial<SourcePolicy>, server: string, resolve?: (host: string) => Promise<string[]>) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const g = new OutboundGuard({
    policy: sourcePolicy(policy),
    cluster: { kubeconfig: kubeconfig(server) },
    log: pino(sink),
    stack: "dev",
    resolve,
  });
  return { g, lines };
}

describe("OutboundGuard", () => {
  let server: http.Server;
  let base = "";
  const seen: string[] = [];
  before(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.url} ${req.headers.authorization ?? ""}`);
      if (req.url === "/values.yaml") res.writeHead(200).end("a: 1\n");
      else if (req.url === "/to-metadata") res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end();
      else if (req.url === "/to-other-host") res.writeHead(302, { location: "http://localhost.localdomain.invalid/x" }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it("allows loopback under local-cluster when the cluster's API server is on loopback, and logs the fetch with stack and unit", async () => {
    const { g, lines } = guard({}, "https://127.0.0.1:6443");
    assert.equal(await g.clusterOnLoopback(), true);
    assert.equal(await g.fetchText(`${base}/values.yaml`, unit), "a: 1\n");
    assert.deepEqual(
      lines.map((l) => [l.msg, l.stack, l.unit, l.kind]),
      [["outbound fetch", "dev", unit, "values-url"]],
    );
  });

  it("refuses loopback under local-cluster when the cluster is remote, before any request", async () => {
    const { g, lines } = guard({}, "https://10.20.30.40:6443");
    const before = seen.length;
    await assert.rejects(g.fetchText(`${base}/values.yaml`, unit), (err: unknown) => {
      assert.ok(err instanceof OutboundRefusedError);
      assert.match(err.message, /^HelmRelease\/apps\/web: http:\/\/127\.0\.0\.1:\d+\/values\.yaml reaches 127\.0\.0\.1 \(loopback\)/);
      return true;
    });
    assert.equal(seen.length, before);
    assert.equal(lines[0]?.msg, "outbound fetch refused by policy");
  });

  it("checks every address a host resolves to, and the address the connection really uses", async () => {
    const resolve = (host: string) => Promise.resolve(host === "twofaced.test" ? ["93.184.216.34", "::1"] : ["93.184.216.34"]);
    const { g } = guard({ localAddresses: "refuse" }, "https://10.20.30.40:6443", resolve);
    await assert.rejects(g.check("https://twofaced.test/charts", unit, "chart-repository"), /reaches ::1 \(loopback\)/);
    // DNS rebinding: the check saw a public address, the connection's own lookup gets loopback.
    const before = seen.length;
    await assert.rejects(
      g.fetchText(`${base.replace("127.0.0.1", "localhost")}/values.yaml`, unit),
      /reaches (127\.0\.0\.1|::1) \(loopback\)/,
    );
    assert.equal(seen.length, before);
  });

  it("checks each redirect before following it", async () => {
    const { g } = guard({ localAddresses: "allow", allowedHosts: ["127.0.0.1"] }, "https://127.0.0.1:6443");
    await assert.rejects(
      g.fetchText(`${base}/to-other-host`, unit),
      /names host localhost\.localdomain\.invalid, which ferry:allowedHosts \(127\.0\.0\.1\)/,
    );
    const { g: local } = guard({}, "https://127.0.0.1:6443", () => Promise.resolve(["169.254.169.254"]));
    await assert.rejects(local.fetchText(`${base}/to-metadata`, unit), (err: unknown) => {
      assert.ok(err instanceof OutboundRefusedError);
      return /169\.254\.169\.254/.test(err.message);
    });
  });

  it("refuses a host outside allowedHosts without resolving it", async () => {
    const { g } = guard({ allowedHosts: ["charts.example.com"] }, "https://10.20.30.40:6443", (host) =>
      host === "ghcr.io" ? Promise.reject(new Error("must not resolve")) : Promise.resolve(["93.184.216.34"]),
    );
    await assert.rejects(
      g.check("oci://ghcr.io/org/chart", unit, "oci"),
      /names host ghcr\.io, which ferry:allowedHosts \(charts\.example\.com\) does not list/,
    );
    await g.check("https://charts.example.com/stable", unit, "chart-repository");
  });
});
