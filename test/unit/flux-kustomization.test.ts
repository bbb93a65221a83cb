import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFluxKustomization, parseFluxKustomization } from "../../src/desired-state/flux-kustomization";
import { SourceLocation } from "../../src/desired-state/manifest-error";
import { KubeObject } from "../../src/desired-state/object-id";
import { throwsManifestError as throwsAt } from "../helpers/assertions";

const at: SourceLocation = { file: "clusters/dev/flux.yaml", line: 7, document: 1 };

/** A Kustomization "apps"; `namespace: null` leaves metadata.namespace out. */
function kustomization(
  spec: Record<string, unknown>,
  apiVersion = "kustomize.toolkit.fluxcd.io/v1",
  namespace: string | null = "flux-system",
): KubeObject {
  return { apiVersion, kind: "Kustomization", metadata: namespace === null ? { name: "apps" } : { name: "apps", namespace }, spec };
}

function throwsManifestError(fn: () => unknown, message: RegExp): void {
  throwsAt(fn, at, message);
}

describe("isFluxKustomization", () => {
  it("recognises Flux Kustomizations, not kustomize's own kustomization.yaml", () => {
    for (const v of ["v1", "v1beta1", "v1beta2"])
      assert.equal(isFluxKustomization(kustomization({}, `kustomize.toolkit.fluxcd.io/${v}`)), true, v);
    assert.equal(
      isFluxKustomization({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", metadata: { name: "k" } }),
      false,
    );
  });
});

describe("parseFluxKustomization", () => {
  it("reads path, prune, targetNamespace, postBuild, sourceRef, suspend and dependsOn", () => {
    const spec = parseFluxKustomization(
      kustomization({
        path: "./apps/production/",
        prune: true,
        targetNamespace: "apps",
        sourceRef: { kind: "GitRepository", name: "flux-system" },
        postBuild: {
          substitute: { cluster_name: "prod", region: "eu-west-1\n" },
          substituteFrom: [
            { kind: "ConfigMap", name: "cluster-vars" },
            { kind: "Secret", name: "cluster-secrets", optional: true },
          ],
        },
        suspend: true,
        dependsOn: [{ name: "infra" }, { name: "crds", namespace: "platform" }],
      }),
      at,
    );
    assert.deepEqual(spec, {
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      name: "apps",
      namespace: "flux-system",
      path: "apps/production",
      prune: true,
      targetNamespace: "apps",
      substitute: { cluster_name: "prod", region: "eu-west-1" },
      substituteFrom: [
        { kind: "ConfigMap", name: "cluster-vars", namespace: "flux-system", optional: false },
        { kind: "Secret", name: "cluster-secrets", namespace: "flux-system", optional: true },
      ],
      sourceRef: { kind: "GitRepository", name: "flux-system", namespace: "flux-system" },
      suspend: true,
      dependsOn: [
        { name: "infra", namespace: "flux-system" },
        { name: "crds", namespace: "platform" },
      ],
      location: at,
    });
  });

  it("defaults prune and suspend to false, the path to the repository root, the namespace to default", () => {
    const spec = parseFluxKustomization(kustomization({}, "kustomize.toolkit.fluxcd.io/v1beta2", null), at);
    assert.deepEqual(
      [spec.namespace, spec.path, spec.prune, spec.suspend, spec.targetNamespace, spec.substitute, spec.dependsOn],
      ["default", ".", false, false, undefined, {}, []],
    );
    assert.equal(parseFluxKustomization(kustomization({ path: "./" }), at).path, ".");
    assert.equal(parseFluxKustomization(kustomization({ path: "clusters//dev/../prod" }), at).path, "clusters/prod");
  });

  it("refuses a path that leaves the checkout", () => {
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ path: "../other-repo" }), at),
      /^clusters\/dev\/flux\.yaml:7 \(document 2\): Kustomization\/flux-system\/apps: `spec\.path` "\.\.\/other-repo" leaves the checkout\n {2}fix: give the folder relative to the repository root/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ path: "apps/../../x" }), at),
      /`spec\.path` "apps\/\.\.\/\.\.\/x" leaves the checkout/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ path: "/apps" }), at),
      /`spec\.path` "\/apps" leaves the checkout: it is absolute/,
    );
  });

  it("explains invalid fields and refuses what ferry does not implement", () => {
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ prune: "yes" }), at),
      /`spec\.prune` must be true or false, not string "yes"/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ postBuild: { substitute: { replicas: 3 } } }), at),
      /`spec\.postBuild\.substitute\.replicas` must be a string, not number 3\n {2}fix: quote it, e\.g\. replicas: "3"/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ postBuild: { substitute: { "my-var": "x" } } }), at),
      /variable name "my-var"/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ patches: [{ patch: "x" }] }), at),
      /`spec\.patches` is not supported by ferry/,
    );
    // An empty list is as good as none.
    assert.equal(parseFluxKustomization(kustomization({ patches: [] }), at).path, ".");
  });
});

describe("parseFluxKustomization: messages name the field and say how to fix it", () => {
  it("names invalid entries of substituteFrom, sourceRef and dependsOn by their path", () => {
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ postBuild: { substituteFrom: [{ kind: "Bucket", name: "vars" }] } }), at),
      /Kustomization\/flux-system\/apps: `spec\.postBuild\.substituteFrom\[0\]\.kind` is "Bucket"; it must be ConfigMap or Secret\n {2}fix: each substituteFrom entry is/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ sourceRef: { kind: "GitRepository" } }), at),
      /`spec\.sourceRef\.name` is missing\n {2}fix: name the source/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ dependsOn: [{ namespace: "infra" }] }), at),
      /`spec\.dependsOn\[0\]\.name` is missing\n {2}fix: name the Kustomization this one waits for/,
    );
    throwsManifestError(
      () => parseFluxKustomization(kustomization({ decryption: { provider: "sops" } }), at),
      /`spec\.decryption` is not supported by ferry\n {2}fix: ferry cannot decrypt SOPS files/,
    );
  });

  it("treats empty strings and nulls as unset, and refuses a missing spec", () => {
    const spec = parseFluxKustomization(kustomization({ path: "", targetNamespace: "", prune: null, postBuild: null }), at);
    assert.deepEqual([spec.path, spec.targetNamespace, spec.prune, spec.substitute], [".", undefined, false, {}]);
    throwsManifestError(
      () => parseFluxKustomization({ apiVersion: "kustomize.toolkit.fluxcd.io/v1", kind: "Kustomization", metadata: { name: "apps" } }, at),
      /Kustomization\/default\/apps: `spec` is missing\n {2}fix: add a spec with at least `path` and `prune`/,
    );
  });

  it("keeps a substitute value's other characters and drops only its newlines", () => {
    const spec = parseFluxKustomization(kustomization({ postBuild: { substitute: { motd: "hello\nworld ${x}" } } }), at);
    assert.deepEqual(spec.substitute, { motd: "helloworld ${x}" });
  });
});
