import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  hostAllowed,
  localAddressKind,
  outboundRefusal,
  outboundTarget,
  redactCredentials,
  remoteGitUrlProblem,
} from "../../src/desired-state/outbound-policy";
import { sourcePolicy } from "../../src/desired-state/source-policy";

const unit = "HelmRelease/apps/web";

describe("localAddressKind", () => {
  it("finds IPv4 loopback, the unspecified network and link-local (the cloud metadata address among them)", () => {
    assert.equal(localAddressKind("127.0.0.1"), "loopback");
    assert.equal(localAddressKind("127.255.10.3"), "loopback");
    assert.equal(localAddressKind("0.0.0.0"), "loopback");
    assert.equal(localAddressKind("169.254.169.254"), "link-local");
    assert.equal(localAddressKind("169.254.0.1"), "link-local");
  });

  it("finds IPv6 loopback, the unspecified address and fe80::/10, with or without a zone or brackets", () => {
    assert.equal(localAddressKind("::1"), "loopback");
    assert.equal(localAddressKind("0:0:0:0:0:0:0:1"), "loopback");
    assert.equal(localAddressKind("[::1]"), "loopback");
    assert.equal(localAddressKind("::"), "loopback");
    assert.equal(localAddressKind("fe80::1"), "link-local");
    assert.equal(localAddressKind("fe80::1%eth0"), "link-local");
    assert.equal(localAddressKind("febf:ffff::1"), "link-local");
  });

  it("sees through IPv4 addresses carried in IPv6 (mapped, compatible, translated, NAT64)", () => {
    assert.equal(localAddressKind("::ffff:127.0.0.1"), "loopback");
    assert.equal(localAddressKind("::ffff:7f00:1"), "loopback");
    assert.equal(localAddressKind("::ffff:169.254.169.254"), "link-local");
    assert.equal(localAddressKind("::ffff:a9fe:a9fe"), "link-local");
    assert.equal(localAddressKind("::127.0.0.1"), "loopback");
    assert.equal(localAddressKind("::ffff:0:127.0.0.1"), "loopback");
    assert.equal(localAddressKind("64:ff9b::169.254.169.254"), "link-local");
  });

  it("leaves other addresses and non-addresses alone", () => {
    for (const a of [
      "10.0.0.1",
      "192.168.1.1",
      "8.8.8.8",
      "128.0.0.1",
      "169.253.1.1",
      "2001:db8::1",
      "fec0::1",
      "::ffff:8.8.8.8",
      "example.com",
      "",
    ]) {
      assert.equal(localAddressKind(a), undefined, a);
    }
  });
});

describe("outboundTarget", () => {
  it("reads scheme, host and port of the URLs repo content names, with the scheme's default port", () => {
    assert.deepEqual(outboundTarget("https://Charts.Example.com./stable"), { scheme: "https", host: "charts.example.com", port: 443 });
    assert.deepEqual(outboundTarget("http://127.0.0.1:8879/"), { scheme: "http", host: "127.0.0.1", port: 8879 });
    assert.deepEqual(outboundTarget("oci://ghcr.io/org/chart"), { scheme: "oci", host: "ghcr.io", port: 443 });
    assert.deepEqual(outboundTarget("ssh://git@[::1]:2222/org/repo"), { scheme: "ssh", host: "::1", port: 2222 });
    assert.deepEqual(outboundTarget("git@github.com:org/repo.git"), { scheme: "ssh", host: "github.com", port: 22 });
    assert.deepEqual(outboundTarget("git://example.com/repo"), { scheme: "git", host: "example.com", port: 9418 });
  });

  it("reads the host a URL really names, not one hidden in its user part; normalizes numeric IPv4 forms", () => {
    assert.equal(outboundTarget("https://allowed.example.com@evil.example.net/x")?.host, "evil.example.net");
    assert.equal(outboundTarget("http://2130706433/")?.host, "127.0.0.1");
    assert.equal(outboundTarget("http://0x7f.1/")?.host, "127.0.0.1");
  });

  it("knows no target for local paths and other schemes", () => {
    for (const u of ["/srv/charts", "./charts", "file:///etc", "ext::sh -c id", "ftp://example.com/x", "not a url"]) {
      assert.equal(outboundTarget(u), undefined, u);
    }
  });
});

describe("remoteGitUrlProblem", () => {
  it("accepts remote git URLs", () => {
    for (const u of [
      "https://github.com/org/charts",
      "http://127.0.0.1:3000/charts.git",
      "ssh://git@example.com/charts",
      "git@github.com:org/charts",
    ]) {
      assert.equal(remoteGitUrlProblem(u), undefined, u);
    }
  });

  it("refuses local paths, relative paths, file:// and other transports, naming the path", () => {
    assert.match(remoteGitUrlProblem("/home/alice/charts") ?? "", /"\/home\/alice\/charts" is a local path/);
    assert.match(remoteGitUrlProblem("../other-stack") ?? "", /"\.\.\/other-stack" is a local path/);
    assert.match(remoteGitUrlProblem("charts") ?? "", /"charts" is a local path/);
    assert.match(remoteGitUrlProblem("file:///srv/git/charts") ?? "", /"file:\/\/\/srv\/git\/charts" is a file:\/\/ URL/);
    assert.match(remoteGitUrlProblem("ext::sh -c touch% /tmp/pwned") ?? "", /is not an https:\/\/, http:\/\/, ssh:\/\/ or git:\/\/ URL/);
    assert.match(remoteGitUrlProblem("oci://ghcr.io/org/chart") ?? "", /is not an https:\/\//);
  });
});

describe("hostAllowed", () => {
  const target = (url: string) => outboundTarget(url)!;

  it("allows any host when the list is empty", () => {
    assert.equal(hostAllowed(target("https://anything.example.net"), []), true);
  });

  it("matches hosts exactly and case-insensitively; *.domain matches its subdomains, not the domain or look-alikes", () => {
    const list = ["Charts.Example.com", "*.corp.example"];
    assert.equal(hostAllowed(target("https://charts.example.com/x"), list), true);
    assert.equal(hostAllowed(target("https://charts.example.com.evil.net/x"), list), false);
    assert.equal(hostAllowed(target("https://a.corp.example/x"), list), true);
    assert.equal(hostAllowed(target("https://a.b.corp.example/x"), list), true);
    assert.equal(hostAllowed(target("https://corp.example/x"), list), false);
    assert.equal(hostAllowed(target("https://evilcorp.example/x"), list), false);
    assert.equal(hostAllowed(target("https://allowed@evil.net/x"), ["allowed"]), false);
  });

  it("limits an entry with a port to that port (the scheme's default when the URL names none)", () => {
    assert.equal(hostAllowed(target("https://charts.example.com/x"), ["charts.example.com:443"]), true);
    assert.equal(hostAllowed(target("https://charts.example.com:8443/x"), ["charts.example.com:443"]), false);
    assert.equal(hostAllowed(target("https://charts.example.com:8443/x"), ["charts.example.com"]), true);
    assert.equal(hostAllowed(target("http://[::1]:8080/x"), ["[::1]:8080"]), true);
    assert.equal(hostAllowed(target("http://[::1]:8081/x"), ["[::1]:8080"]), false);
    assert.equal(hostAllowed(target("http://[::1]:8081/x"), ["::1"]), true);
  });
});

describe("outboundRefusal", () => {
  const request = (url: string, addresses: string[], overrides: Parameters<typeof sourcePolicy>[0] = {}, clusterOnLoopback = false) =>
    outboundRefusal({ unit, url, addresses, policy: sourcePolicy(overrides), clusterOnLoopback });

  it("allows a public host by default", () => {
    assert.equal(request("https://charts.example.com", ["93.184.216.34"]), undefined);
  });

  it("refuses a host not in allowedHosts, naming the unit, the URL without credentials and the setting", () => {
    const refusal = request("https://user:s3cret@evil.example.net/charts", ["93.184.216.34"], { allowedHosts: ["charts.example.com"] });
    assert.match(refusal ?? "", /^HelmRelease\/apps\/web: https:\/\/\*\*\*@evil\.example\.net\/charts names host evil\.example\.net/);
    assert.match(refusal ?? "", /ferry:allowedHosts \(charts\.example\.com\) does not list; no request was made/);
    assert.match(refusal ?? "", /fix: add "evil\.example\.net" to ferry:allowedHosts .*--allowed-host evil\.example\.net/);
    assert.doesNotMatch(refusal ?? "", /s3cret/);
  });

  it("refuses a host that resolves to loopback or link-local when the policy refuses local addresses, checking every address", () => {
    const refusal = request("http://rebind.example.net/x", ["93.184.216.34", "169.254.169.254"], { localAddresses: "refuse" });
    assert.match(refusal ?? "", /reaches 169\.254\.169\.254 \(link-local\), which is refused because ferry:localAddresses is refuse/);
    assert.match(refusal ?? "", /fix: .*ferry:localAddresses: allow .*--local-addresses allow/);
    assert.match(request("http://localhost:8879", ["::1"], { localAddresses: "refuse" }) ?? "", /reaches ::1 \(loopback\)/);
    assert.match(request("http://x.test", ["::ffff:127.0.0.1"], { localAddresses: "refuse" }) ?? "", /\(loopback\)/);
    assert.match(request("http://[fe80::1]/", ["fe80::1"], { localAddresses: "refuse" }) ?? "", /\(link-local\)/);
  });

  it("allows local addresses under local-cluster only when the cluster's API server is itself on loopback", () => {
    assert.match(request("http://127.0.0.1:8879", ["127.0.0.1"], {}, false) ?? "", /cluster's API server is not on loopback/);
    assert.equal(request("http://127.0.0.1:8879", ["127.0.0.1"], {}, true), undefined);
    assert.match(request("http://127.0.0.1:8879", ["127.0.0.1"], { localAddresses: "refuse" }, true) ?? "", /localAddresses is refuse/);
    assert.equal(request("http://169.254.169.254/latest", ["169.254.169.254"], { localAddresses: "allow" }, false), undefined);
  });

  it("checks allowedHosts even for local addresses that are allowed", () => {
    assert.match(
      request("http://127.0.0.1:8879", ["127.0.0.1"], { allowedHosts: ["charts.example.com"], localAddresses: "allow" }) ?? "",
      /names host 127\.0\.0\.1, which ferry:allowedHosts/,
    );
  });

  it("refuses URLs with no host it can check", () => {
    assert.match(request("file:///etc/passwd", []) ?? "", /is not an http\(s\), oci, ssh or git URL with a host/);
  });
});

describe("redactCredentials", () => {
  it("hides the user part of a URL", () => {
    assert.equal(redactCredentials("https://x-access-token:abc@github.com/org/repo"), "https://***@github.com/org/repo");
    assert.equal(redactCredentials("https://github.com/org/repo"), "https://github.com/org/repo");
  });
});
