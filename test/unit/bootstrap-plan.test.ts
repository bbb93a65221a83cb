import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import {
  chartValues,
  defaultBootstrapOptions,
  deployKeySecret,
  imageValues,
  passphraseSecret,
  secretNamesOf,
  stackObject,
  validateBootstrapOptions,
} from "../../src/install/bootstrap-plan";
import { generateDeployKey, publicKeyOf } from "../../src/install/deploy-key";
import { ferryRoot } from "../../src/lib/paths";

const base = defaultBootstrapOptions({ repo: "git@github.com:acme/fleet.git", path: "clusters/prod" });

describe("ferry bootstrap: what it installs", () => {
  it("defaults to Stack cluster in ferry-system following main", () => {
    assert.equal(base.name, "cluster");
    assert.equal(base.namespace, "ferry-system");
    assert.equal(base.ref, "main");
  });

  it("lets the agent read exactly the Secrets it makes, added to the user's secretNames", () => {
    assert.deepEqual(chartValues(base).secretNames, ["cluster-git", "cluster-passphrase"]);
    const withUser = chartValues({ ...base, values: { secretNames: ["other", "cluster-git"], replicas: 5 } });
    assert.deepEqual(withUser.secretNames, ["other", "cluster-git", "cluster-passphrase"]);
    assert.equal(withUser.replicas, 5, "the user's values are kept when no flag overrides them");
  });

  it("puts the flags over the user's values", () => {
    const values = chartValues({
      ...base,
      replicas: 3,
      backendUrl: "s3://state/ferry",
      image: "localhost:5000/ferry:dev",
      values: { backend: { envSecret: "aws" }, image: { pullPolicy: "Always" }, replicas: 9 },
    });
    assert.equal(values.replicas, 3);
    assert.deepEqual(values.backend, { envSecret: "aws", url: "s3://state/ferry" });
    assert.deepEqual(values.image, { pullPolicy: "Always", repository: "localhost:5000/ferry", tag: "dev" });
  });

  it("reads image references with a registry port, a tag or a digest", () => {
    assert.deepEqual(imageValues("localhost:5000/ferry"), { repository: "localhost:5000/ferry" });
    assert.deepEqual(imageValues("ghcr.io/acme/ferry:1.2"), { repository: "ghcr.io/acme/ferry", tag: "1.2" });
    assert.deepEqual(imageValues("ghcr.io/acme/ferry@sha256:abc"), { repository: "ghcr.io/acme/ferry", tag: "sha256:abc" });
  });

  it("refuses an HTTPS repository, a bad namespace or replica count, with the fix", () => {
    assert.throws(() => validateBootstrapOptions({ ...base, repo: "https://github.com/acme/fleet" }), /SSH URL/);
    assert.throws(() => validateBootstrapOptions({ ...base, namespace: "Ferry_System" }), /--namespace/);
    assert.throws(() => validateBootstrapOptions({ ...base, replicas: 0 }), /--replicas/);
    validateBootstrapOptions({ ...base, repo: "ssh://git@git.example.com:2222/acme/fleet.git" });
    validateBootstrapOptions(base);
  });

  it("points the Stack at the repository's folder and at the two Secrets", () => {
    const stack = stackObject({ ...base, ref: "release" });
    assert.equal(stack.apiVersion, "ferry.dev/v1alpha1");
    assert.equal(stack.kind, "Stack");
    assert.deepEqual(stack.metadata.namespace, "ferry-system");
    assert.deepEqual(stack.spec, {
      repo: "git@github.com:acme/fleet.git",
      ref: "release",
      path: "clusters/prod",
      gitSecretRef: { name: secretNamesOf(base).git },
      passphraseSecretRef: { name: secretNamesOf(base).passphrase },
    });
  });

  it("stores the deploy key under Flux's key names, known_hosts only when given", () => {
    const key = { privateKey: "PRIVATE", publicKey: "ssh-ed25519 AAAA c" };
    const plain = deployKeySecret(base, key);
    assert.deepEqual(plain.stringData, { identity: "PRIVATE", "identity.pub": "ssh-ed25519 AAAA c\n" });
    const withHosts = deployKeySecret({ ...base, knownHosts: "github.com ssh-ed25519 AAAAx\n" }, key);
    assert.equal((withHosts.stringData as Record<string, string>).known_hosts, "github.com ssh-ed25519 AAAAx\n");
    assert.deepEqual(passphraseSecret(base, "p").stringData, { passphrase: "p" });
    assert.equal(passphraseSecret(base, "p").metadata.name, "cluster-passphrase");
  });

  it("installs the chart whose appVersion is ferry's version", () => {
    const chart = yaml.load(fs.readFileSync(path.join(ferryRoot(), "charts", "ferry", "Chart.yaml"), "utf8")) as { appVersion: string };
    const pkg = JSON.parse(fs.readFileSync(path.join(ferryRoot(), "package.json"), "utf8")) as { version: string };
    assert.equal(chart.appVersion, pkg.version);
  });
});

describe("deploy key", () => {
  it("is an ed25519 OpenSSH key whose public half the private key reproduces", () => {
    const key = generateDeployKey("ferry@ferry-system/cluster");
    assert.match(key.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    assert.match(key.publicKey, /^ssh-ed25519 AAAA[\w+/=]+ ferry@ferry-system\/cluster$/);
    assert.equal(publicKeyOf(key.privateKey, "ferry@ferry-system/cluster"), key.publicKey);
    assert.notEqual(generateDeployKey("x").publicKey.split(" ")[1], key.publicKey.split(" ")[1], "each key is new");
  });

  it("says how to recover from a Secret that holds no key, without quoting it", () => {
    assert.throws(
      () => publicKeyOf("not-a-key-SECRETVALUE"),
      (err: Error) => /delete the Secret/.test(err.message) && !err.message.includes("SECRETVALUE"),
    );
  });
});
