import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { credentialsFor, isConfigRepoUrl } from "../../src/source/credentials";

const token = { token: "s3cret" };

describe("credentialsFor", () => {
  const https = { url: "https://github.com/acme/platform-config", auth: token };

  it("gives the config repo's credentials to its own URL, with or without .git or a trailing slash, and below its path", () => {
    for (const url of [
      "https://github.com/acme/platform-config",
      "https://github.com/acme/platform-config.git",
      "https://GitHub.com/acme/platform-config/",
      "https://github.com:443/acme/platform-config",
      "https://github.com/acme/platform-config/charts",
    ]) {
      assert.equal(credentialsFor(url, https), token, url);
    }
  });

  it("gives nothing to another host, scheme, port, repository or a look-alike", () => {
    for (const url of [
      "https://evil.example.net/acme/platform-config",
      "https://github.com.evil.example.net/acme/platform-config",
      "https://github.com@evil.example.net/acme/platform-config",
      "http://github.com/acme/platform-config",
      "https://github.com:8443/acme/platform-config",
      "https://github.com/acme/platform-config-evil",
      "https://github.com/acme/other",
      "https://github.com/acme",
      "https://github.com/acme/platform-config/../other",
      "https://github.com/acme/platform-config/%2e%2e/other",
      "https://github.com/acme/platform-config%2f..%2fother",
      "ssh://git@github.com/acme/platform-config",
      "/srv/git/acme/platform-config",
      "file:///srv/git/acme/platform-config",
    ]) {
      assert.equal(credentialsFor(url, https), undefined, url);
    }
  });

  it("treats scp-like and ssh:// URLs of the same repository alike", () => {
    const ssh = { url: "git@github.com:acme/platform-config.git", auth: { sshKeyFile: "/keys/deploy" } };
    assert.equal(credentialsFor("ssh://git@github.com/acme/platform-config", ssh), ssh.auth);
    assert.equal(credentialsFor("git@github.com:acme/platform-config", ssh), ssh.auth);
    assert.equal(credentialsFor("git@evil.example.net:acme/platform-config", ssh), undefined);
    assert.equal(credentialsFor("ssh://git@github.com:2222/acme/platform-config", ssh), undefined);
  });

  it("gives nothing when the config repo is a local path or has no credentials", () => {
    assert.equal(credentialsFor("https://github.com/acme/platform-config", { url: "https://github.com/acme/platform-config" }), undefined);
    assert.equal(isConfigRepoUrl("/srv/config", "/srv/config"), false);
    assert.equal(isConfigRepoUrl("https://github.com/acme/platform-config", "./config"), false);
  });
});
