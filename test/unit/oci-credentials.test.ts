import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sourcePolicy } from "../../src/desired-state/source-policy";
import { dockerConfigAuth, ociRegistryHost, sourceCredentials } from "../../src/render/source-credentials";

const config = (auths: Record<string, unknown>): string => JSON.stringify({ auths });
const ref = { source: "OCIRepository/apps/charts", name: "pull", namespace: "apps" };

describe("OCI registry credentials", () => {
  it("takes the registry host of an oci:// URL", () => {
    assert.equal(ociRegistryHost("oci://127.0.0.1:5000/charts/web@sha256:abc"), "127.0.0.1:5000");
    assert.equal(ociRegistryHost("oci://ghcr.io/org/chart"), "ghcr.io");
  });

  it("reads a .dockerconfigjson entry for the host: username/password or the base64 auth pair, keys with or without a scheme", () => {
    assert.deepEqual(dockerConfigAuth(config({ "ghcr.io": { username: "u", password: "p" } }), "ghcr.io", "x"), {
      username: "u",
      password: "p",
    });
    const auth = Buffer.from("bot:pa:ss").toString("base64");
    assert.deepEqual(dockerConfigAuth(config({ "https://ghcr.io/v2/": { auth } }), "ghcr.io", "x"), { username: "bot", password: "pa:ss" });
    assert.throws(
      () => dockerConfigAuth(config({ "docker.io": { auth } }), "ghcr.io", "HelmRelease/apps/web: Secret/apps/pull"),
      /^Error: HelmRelease\/apps\/web: Secret\/apps\/pull: `\.dockerconfigjson` has no `auths` entry for ghcr\.io\n {2}fix: /,
    );
    assert.throws(() => dockerConfigAuth("{not json", "ghcr.io", "x"), /is not JSON/);
    assert.throws(
      () => dockerConfigAuth(config({ "ghcr.io": { auth: Buffer.from("secret-without-colon").toString("base64") } }), "ghcr.io", "x"),
      (err: Error) => {
        assert.doesNotMatch(err.message, /secret-without-colon/);
        return /neither `username`\/`password` nor `auth`/.test(err.message);
      },
    );
  });

  it("uses a docker-registry Secret for an OCI source, and username/password first when both are there", async () => {
    const secret = (stringData: Record<string, string>) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "pull", namespace: "apps" },
      stringData,
    });
    const lookup = (s: ReturnType<typeof secret>) => ({ declared: () => s, live: async () => undefined });
    const docker = secret({ ".dockerconfigjson": config({ "127.0.0.1:5000": { username: "d", password: "dp" } }) });
    assert.deepEqual(await sourceCredentials(ref, "u", lookup(docker), sourcePolicy(), "127.0.0.1:5000"), {
      username: "d",
      password: "dp",
    });
    const both = secret({ username: "b", password: "bp", ".dockerconfigjson": "{}" });
    assert.deepEqual((await sourceCredentials(ref, "u", lookup(both), sourcePolicy(), "127.0.0.1:5000"))?.username, "b");
  });
});
