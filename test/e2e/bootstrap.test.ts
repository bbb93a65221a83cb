// End to end: `ferry bootstrap` on an empty control plane installs the chart's objects, makes a deploy
// key (the private half only in its Secret, never in the output), the passphrase Secret and the first
// Stack; a second run keeps the key.
import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import { publicKeyOf } from "../../src/install/deploy-key";
import { ConfigRepo } from "../helpers/config-repo";
import { eventually, useE2E } from "../helpers/e2e";
import { startAgent } from "../helpers/runner-process";
import { serviceAccountKubeconfig } from "../helpers/service-account";

const NS = "ferry-system";
const REPO = "git@github.com:acme/fleet.git";

interface SecretJson {
  data: Record<string, string>;
}

describe("ferry bootstrap", () => {
  const env = useE2E();
  const args = () => ["bootstrap", "--repo", REPO, "--path", "clusters/prod", "--kubeconfig", env().cluster.kubeconfig, "--replicas", "2"];
  const decoded = (s: SecretJson, key: string) => Buffer.from(s.data[key] ?? "", "base64").toString("utf8");
  let publicKey = "";

  it("installs ferry, stores a new deploy key in a Secret and prints only its public half", async () => {
    const e = env();
    const r = await e.ferry(args());
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const printed = /^ssh-ed25519 AAAA[\w+/=]+ \S+$/m.exec(r.stdout)?.[0];
    assert.ok(printed, `an ssh-ed25519 public key is printed:\n${r.stdout}`);
    assert.match(r.stdout, /read-only deploy key of git@github\.com:acme\/fleet\.git/);
    publicKey = printed;

    const secret = await e.getJson<SecretJson>("secret", "cluster-git", "-n", NS);
    const identity = decoded(secret, "identity");
    assert.match(identity, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    assert.equal(publicKeyOf(identity).split(" ")[1], printed.split(" ")[1], "the Secret's private key matches the printed public key");
    assert.equal(decoded(secret, "identity.pub").trim(), printed);
    // No line of the private key (nor the passphrase) appears in what bootstrap printed.
    const passphrase = decoded(await e.getJson<SecretJson>("secret", "cluster-passphrase", "-n", NS), "passphrase");
    assert.ok(passphrase.length >= 32);
    const output = `${r.stdout}\n${r.stderr}`;
    for (const line of identity.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----")))
      assert.ok(!output.includes(line), "the private key is not in the output");
    assert.ok(!output.includes(passphrase), "the passphrase is not in the output");
    assert.ok(!output.includes(secret.data.identity!), "the encoded private key is not in the output");
  });

  it("leaves the Deployment Available, the first Stack and RBAC for its Secrets", async () => {
    const e = env();
    await eventually(
      "the ferry Deployment is Available",
      async () => {
        const d = await e.getJson<{ status?: { conditions?: { type: string; status: string }[] } }>("deployment", "ferry", "-n", NS);
        return d.status?.conditions?.some((c) => c.type === "Available" && c.status === "True") ?? false;
      },
      60_000,
    );
    const stack = await e.getJson<{ spec: Record<string, unknown> }>("stack", "cluster", "-n", NS);
    assert.deepEqual(
      {
        repo: stack.spec.repo,
        path: stack.spec.path,
        ref: stack.spec.ref,
        git: stack.spec.gitSecretRef,
        pass: stack.spec.passphraseSecretRef,
      },
      {
        repo: REPO,
        path: "clusters/prod",
        ref: "main",
        git: { name: "cluster-git" },
        pass: { name: "cluster-passphrase", key: "passphrase" },
      },
    );
    for (const name of ["cluster-git", "cluster-passphrase"]) {
      const can = await e.kubectl("auth", "can-i", "get", `secret/${name}`, "-n", NS, "--as", `system:serviceaccount:${NS}:ferry`);
      assert.equal(can.trim(), "yes", `ferry may read Secret ${name}`);
    }
  });

  it("is idempotent: a second run keeps the key and the passphrase", async () => {
    const e = env();
    const before = await e.getJson<SecretJson>("secret", "cluster-passphrase", "-n", NS);
    const r = await e.ferry([...args(), "-o", "json"]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const result = JSON.parse(r.stdout) as Record<string, string>;
    assert.deepEqual(result, { namespace: NS, stack: "cluster", publicKey, secret: "cluster-git" });
    const after = await e.getJson<SecretJson>("secret", "cluster-passphrase", "-n", NS);
    assert.equal(after.data.passphrase, before.data.passphrase);
  });

  it("is a running setup: an agent with the chart's ServiceAccount reads the Stack's Secrets and reconciles it; no key in its logs", async () => {
    const e = env();
    // The fake nodes run no containers: the agent runs here, authenticated as the pod would be.
    // The Stack is pointed at a local repository (this machine reaches no git host over SSH).
    const repo = await ConfigRepo.create(path.join(e.dir, "fleet"), "foundation");
    repo.edit({
      "clusters/prod/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello, namespace: default}\ndata: {from: bootstrap}\n",
    });
    const head = await repo.commitAll("First cluster");
    await e.kubectl(
      "patch",
      "stack",
      "cluster",
      "-n",
      NS,
      "--type",
      "merge",
      "-p",
      JSON.stringify({ spec: { repo: repo.dir, interval: "5s" } }),
    );
    const kubeconfig = await serviceAccountKubeconfig(e, "ferry", NS, e.dir);
    const agent = await startAgent(
      ["operator", "--namespace", NS, "--identity", "ferry-0", "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0"],
      {
        ...e.env,
        PULUMI_CONFIG_PASSPHRASE: undefined,
        PULUMI_BACKEND_URL: `file://${path.join(e.dir, "state", "backend")}`,
      },
    );
    try {
      await eventually(
        "the bootstrapped Stack is Ready",
        async () => {
          const st = await e.getJson<{ status?: { lastAppliedRevision?: string; conditions?: { type: string; status: string }[] } }>(
            "stack",
            "cluster",
            "-n",
            NS,
          );
          return (
            st.status?.lastAppliedRevision === head &&
            (st.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false)
          );
        },
        120_000,
      );
      assert.equal((await e.getJson<{ data: Record<string, string> }>("configmap", "hello", "-n", "default")).data.from, "bootstrap");
      const identity = decoded(await e.getJson<SecretJson>("secret", "cluster-git", "-n", NS), "identity");
      for (const line of identity.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----")))
        assert.ok(!agent.output().includes(line), "the private key is not in the agent's logs");
    } finally {
      await agent.stop();
    }
  });
});
