import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { contextNamespace } from "../../src/lib/kube-config";
import { tempDir } from "../helpers/temp-dir";

const kubeconfig = (namespace?: string) =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]",
    "users: [{name: u, user: {token: t}}]",
    `contexts: [{name: with, context: {cluster: c, user: u${namespace ? `, namespace: ${namespace}` : ""}}}, {name: without, context: {cluster: c, user: u}}]`,
    "current-context: with",
  ].join("\n");

describe("kubeconfig", () => {
  it("tells the namespace the context names, and nothing when it names none", () => {
    const dir = tempDir();
    const file = path.join(dir, "config");
    fs.writeFileSync(file, kubeconfig("team"));
    assert.equal(contextNamespace({ kubeconfig: file }), "team");
    assert.equal(contextNamespace({ kubeconfig: file, context: "without" }), undefined);
    assert.equal(contextNamespace({ kubeconfig: path.join(dir, "missing") }), undefined);
  });
});
