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
      overlay: { patches: [], images: [], components: [], ignoreMissingComponents: false },
      location: at,
    });
  });

  it("reads patches, patchesStrategicMerge, patchesJson6902, images, components, namePrefix/Suffix and commonMetadata", () => {
    const spec = parseFluxKustomization(
      kustomization(
        {
          patches: [
            {
              patch: "- op: replace\n  path: /spec/acme/server\n  value: https://x\n",
              target: { kind: "ClusterIssuer", name: "letsencrypt" },
            },
            { patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n" },
          ],
          patchesStrategicMerge: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "b" } }],
          patchesJson6902: [{ target: { version: "v1", kind: "Service", name: "s" }, patch: [{ op: "remove", path: "/spec/ports/0" }] }],
          images: [
            { name: "nginx", newTag: "1.27" },
            { name: "app", newName: "registry.local/app", digest: "sha256:abc" },
          ],
          components: ["../components/monitoring"],
          ignoreMissingComponents: true,
          namePrefix: "prod-",
          nameSuffix: "-v1",
          commonMetadata: { labels: { team: "a" }, annotations: { owner: "b" } },
        },
        "kustomize.toolkit.fluxcd.io/v1beta2",
      ),
      at,
    );
    assert.deepEqual(spec.overlay, {
      patches: [
        { patch: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n" },
        { patch: "- op: remove\n  path: /spec/ports/0\n", target: { version: "v1", kind: "Service", name: "s" } },
        { patch: "- op: replace\n  path: /spec/acme/server\n  value: https://x\n", target: { kind: "ClusterIssuer", name: "letsencrypt" } },
        { patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n" },
      ],
      images: [
        { name: "nginx", newTag: "1.27" },
        { name: "app", newName: "registry.local/app", digest: "sha256:abc" },
      ],
      components: ["../components/monitoring"],
      ignoreMissingComponents: true,
      namePrefix: "prod-",
      nameSuffix: "-v1",
      commonMetadata: { labels: { team: "a" }, annotations: { owner: "b" } },
    });
  });

  it("accepts fields that only tune kustomize-controller, and refuses by name those ferry cannot honour or does not know", () => {
    const k = parseFluxKustomization(
      kustomization({
        interval: "10m",
        retryInterval: "1m",
        timeout: "5m",
        wait: true,
        force: false,
        healthChecks: [{ kind: "Deployment", name: "web" }],
        validation: "client",
        deletionPolicy: "MirrorPrune",
      }),
      at,
    );
    assert.equal(k.path, ".");
    const refusals: [Record<string, unknown>, RegExp][] = [
      [{ kubeConfig: { secretRef: { name: "x" } } }, /`spec\.kubeConfig` is not supported: ferry applies to its own cluster only/],
      [{ healthCheckExprs: [{ apiVersion: "v1", kind: "X", current: "true" }] }, /`spec\.healthCheckExprs` is not supported/],
      [
        { deletionPolicy: "Orphan" },
        /`spec\.deletionPolicy` is not supported[^]*fix: remove spec\.deletionPolicy or set it to MirrorPrune/,
      ],
      [{ pruen: true }, /`spec\.pruen` is not a field ferry knows for this kind\n {2}fix: check its spelling/],
      [{ commonMetadata: { label: { a: "b" } } }, /`spec\.commonMetadata\.label` is not a field ferry knows/],
      [
        { components: ["https://github.com/x/y//c"] },
        /`spec\.components\[0\]` "https:\/\/github\.com\/x\/y\/\/c" is not a folder of the repository/,
      ],
      [{ patches: [{ target: { kind: "X" } }] }, /`spec\.patches\[0\]\.patch` is missing/],
      [{ patchesJson6902: [{ patch: [{ op: "add", path: "/a", value: 1 }] }] }, /`spec\.patchesJson6902\[0\]\.target` is missing/],
    ];
    for (const [spec, message] of refusals) throwsManifestError(() => parseFluxKustomization(kustomization(spec), at), message);
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

  it("reads serviceAccountName as the account in the Kustomization's own namespace", () => {
    assert.deepEqual(parseFluxKustomization(kustomization({ serviceAccountName: "deployer", targetNamespace: "web" }), at).serviceAccount, {
      namespace: "flux-system",
      name: "deployer",
    });
    assert.equal(parseFluxKustomization(kustomization({}), at).serviceAccount, undefined);
    throwsManifestError(() => parseFluxKustomization(kustomization({ serviceAccountName: 3 }), at), /spec\.serviceAccountName/);
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
      /`spec\.decryption` is not supported: ferry cannot decrypt SOPS files\n {2}fix: keep Secrets out of Git/,
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
