import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HelmReleaseSpec, isFluxSource, isHelmRelease, parseHelmRelease, shortenReleaseName } from "../../src/desired-state/helm-release";
import { SourceLocation } from "../../src/desired-state/manifest-error";
import { KubeObject } from "../../src/desired-state/object-id";
import { throwsManifestError as throwsAt } from "../helpers/assertions";

const at: SourceLocation = { file: "clusters/dev/apps.yaml", line: 3, document: 0 };

function helmRelease(apiVersion: string, name: string, namespace: string | undefined, spec: Record<string, unknown>): KubeObject {
  return { apiVersion, kind: "HelmRelease", metadata: namespace === undefined ? { name } : { name, namespace }, spec };
}

function source(kind: string, name: string, namespace: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: "source.toolkit.fluxcd.io/v1", kind, metadata: { name, namespace }, spec };
}

const podinfoRepo = source("HelmRepository", "podinfo", "flux-system", { url: "https://stefanprodan.github.io/podinfo" });

function v2(
  name: string,
  namespace: string,
  spec: Record<string, unknown>,
  sources: readonly KubeObject[] = [podinfoRepo],
): HelmReleaseSpec {
  const chart = {
    spec: { chart: "podinfo", version: "6.5.0", sourceRef: { kind: "HelmRepository", name: "podinfo", namespace: "flux-system" } },
  };
  return parseHelmRelease(helmRelease("helm.toolkit.fluxcd.io/v2", name, namespace, { chart, ...spec }), at, sources);
}

function v1(name: string, namespace: string | undefined, spec: Record<string, unknown>): HelmReleaseSpec {
  const chart = { repository: "https://stefanprodan.github.io/podinfo/", name: "podinfo", version: "6.5.0" };
  return parseHelmRelease(helmRelease("helm.fluxcd.io/v1", name, namespace, { chart, ...spec }), at, []);
}

function throwsManifestError(fn: () => unknown, message: RegExp): void {
  throwsAt(fn, at, message);
}

describe("isHelmRelease and isFluxSource", () => {
  it("recognises the Flux v1 and v2 HelmRelease API versions and nothing else", () => {
    for (const apiVersion of [
      "flux.weave.works/v1beta1",
      "helm.fluxcd.io/v1",
      "helm.toolkit.fluxcd.io/v2",
      "helm.toolkit.fluxcd.io/v2beta1",
      "helm.toolkit.fluxcd.io/v2beta2",
    ]) {
      assert.equal(isHelmRelease(helmRelease(apiVersion, "a", "b", {})), true, apiVersion);
    }
    assert.equal(isHelmRelease(helmRelease("example.com/v1", "a", "b", {})), false);
    assert.equal(isHelmRelease({ apiVersion: "helm.toolkit.fluxcd.io/v2", kind: "HelmChart", metadata: { name: "a" } }), false);
  });

  it("recognises HelmRepository, GitRepository, OCIRepository and Bucket sources of any version", () => {
    assert.equal(isFluxSource(podinfoRepo), true);
    assert.equal(isFluxSource({ ...podinfoRepo, apiVersion: "source.toolkit.fluxcd.io/v1beta2", kind: "OCIRepository" }), true);
    assert.equal(isFluxSource({ ...podinfoRepo, kind: "GitRepository" }), true);
    assert.equal(isFluxSource({ ...podinfoRepo, kind: "Bucket" }), true);
    assert.equal(isFluxSource({ ...podinfoRepo, apiVersion: "example.com/v1" }), false);
  });
});

describe("parseHelmRelease", () => {
  it("reads the same release written for helm-operator v1beta1, helm-operator v1 and Flux v2 alike", () => {
    const v1Chart = { repository: "https://stefanprodan.github.io/podinfo/", name: "podinfo", version: "6.5.0" };
    const specs = [
      parseHelmRelease(helmRelease("flux.weave.works/v1beta1", "podinfo", "apps", { chart: v1Chart }), at, []),
      parseHelmRelease(helmRelease("helm.fluxcd.io/v1", "podinfo", "apps", { chart: v1Chart }), at, []),
      // Flux v2 names the release "<targetNamespace>-<name>", so this keeps helm-operator's release.
      v2("podinfo", "apps", { targetNamespace: "apps" }),
    ];
    for (const spec of specs) {
      assert.deepEqual(
        { chart: spec.chart, releaseName: spec.releaseName, targetNamespace: spec.targetNamespace },
        {
          chart: { type: "helm-repository", url: "https://stefanprodan.github.io/podinfo", chart: "podinfo", version: "6.5.0" },
          releaseName: "apps-podinfo",
          targetNamespace: "apps",
        },
        spec.apiVersion,
      );
      assert.deepEqual(spec.location, at);
    }
  });

  it("defaults the Flux v1 release name to <namespace>-<name>, or <namespace>-<targetNamespace>-<name> when they differ", () => {
    assert.equal(v1("web", "apps", {}).releaseName, "apps-web");
    assert.equal(v1("web", "apps", { targetNamespace: "apps" }).releaseName, "apps-web");
    const other = v1("web", "apps", { targetNamespace: "frontend" });
    assert.equal(other.releaseName, "apps-frontend-web");
    assert.equal(other.targetNamespace, "frontend");
    const unnamespaced = v1("web", undefined, {});
    assert.deepEqual(
      [unnamespaced.namespace, unnamespaced.targetNamespace, unnamespaced.releaseName],
      ["default", "default", "default-web"],
    );
    assert.equal(v1("web", "apps", { releaseName: "mine" }).releaseName, "mine");
  });

  it("refuses a Flux v1 release name longer than Helm allows, since helm-operator never shortened it", () => {
    throwsManifestError(
      () => v1("a-very-long-release-name-that-does-not-fit", "a-rather-long-namespace", {}),
      /HelmRelease\/a-rather-long-namespace\/a-very-long-release-name-that-does-not-fit: release name ".*" has 66 characters; Helm allows at most 53\n {2}fix: set a shorter `spec.releaseName`/,
    );
  });

  it("defaults the Flux v2 release name to <name>, or <targetNamespace>-<name>", () => {
    const plain = v2("web", "apps", {});
    assert.deepEqual([plain.releaseName, plain.targetNamespace], ["web", "apps"]);
    const targeted = v2("web", "apps", { targetNamespace: "frontend" });
    assert.deepEqual([targeted.releaseName, targeted.targetNamespace], ["frontend-web", "frontend"]);
    assert.equal(v2("web", "apps", { targetNamespace: "frontend", releaseName: "mine" }).releaseName, "mine");
  });

  it("shortens a Flux v2 release name over 53 characters exactly as helm-controller does", () => {
    // The expected names are helm-controller's own test vectors (internal/release/name_test.go).
    const spec = v2("name-with-very-long-name-which-is-longer-than-53-characters", "apps", { targetNamespace: "release" });
    assert.equal(spec.releaseName, "release-name-with-very-long-name-which-i-788ca0d0d7b0");
    assert.equal(
      shortenReleaseName("another-release-name-with-very-long-name-which-is-longer-than-53-characters"),
      "another-release-name-with-very-long-name-7e72150d5a36",
    );
    assert.equal(shortenReleaseName("release-name"), "release-name");
    assert.equal(shortenReleaseName("x".repeat(53)), "x".repeat(53));
  });

  it("keeps Flux v1 valuesFrom in order, valueFileSecrets first, with helm-operator's defaults", () => {
    const spec = parseHelmRelease(
      helmRelease("helm.fluxcd.io/v1", "web", "apps", {
        chart: { git: "git@github.com:org/charts", path: "./charts/web/" },
        valueFileSecrets: [{ name: "legacy" }],
        valuesFrom: [
          { configMapKeyRef: { name: "common" } },
          { secretKeyRef: { name: "creds", namespace: "shared", key: "prod.yaml", optional: true } },
          { externalSourceRef: { url: "https://example.com/values.yaml" } },
          { chartFileRef: { path: "overrides/prod.yaml", optional: true } },
        ],
        values: { replicas: 2 },
        skipCRDs: true,
      }),
      at,
      [],
    );
    // helm-operator's default ref is the master branch.
    assert.deepEqual(spec.chart, {
      type: "git",
      url: "git@github.com:org/charts",
      ref: { kind: "branch", branch: "master" },
      path: "charts/web",
    });
    assert.deepEqual(spec.valuesFrom, [
      { kind: "Secret", name: "legacy", namespace: "apps", key: "values.yaml", optional: false },
      { kind: "ConfigMap", name: "common", namespace: "apps", key: "values.yaml", optional: false },
      { kind: "Secret", name: "creds", namespace: "shared", key: "prod.yaml", optional: true },
      { kind: "ExternalURL", url: "https://example.com/values.yaml", optional: false },
      { kind: "ChartFile", path: "overrides/prod.yaml", optional: true },
    ]);
    assert.deepEqual(spec.values, { replicas: 2 });
    assert.deepEqual([spec.skipCRDs, spec.suspend, spec.dependsOn], [true, false, []]);
  });

  it("reads Flux v2 valuesFrom, suspend, dependsOn and skipCRDs with Flux's defaults", () => {
    const spec = v2("web", "apps", {
      valuesFrom: [
        { kind: "ConfigMap", name: "common" },
        { kind: "Secret", name: "creds", valuesKey: "password", targetPath: "auth.password", optional: true },
      ],
      suspend: true,
      dependsOn: [{ name: "database" }, { name: "cert-manager", namespace: "infra" }],
      install: { crds: "Skip" },
    });
    assert.deepEqual(spec.valuesFrom, [
      { kind: "ConfigMap", name: "common", namespace: "apps", key: "values.yaml", optional: false },
      { kind: "Secret", name: "creds", namespace: "apps", key: "password", optional: true, targetPath: "auth.password" },
    ]);
    assert.deepEqual(spec.values, {});
    assert.deepEqual(spec.dependsOn, [
      { name: "database", namespace: "apps" },
      { name: "cert-manager", namespace: "infra" },
    ]);
    assert.deepEqual([spec.suspend, spec.skipCRDs], [true, true]);
    assert.equal(v2("web", "apps", { install: { skipCRDs: true } }).skipCRDs, true);
    assert.equal(v2("web", "apps", { skipCRDs: true }).skipCRDs, true);
    assert.equal(v2("web", "apps", { install: { crds: "CreateReplace" } }).skipCRDs, false);
  });

  it("reads serviceAccountName as the account in the release's own namespace, not its targetNamespace", () => {
    assert.deepEqual(v2("web", "apps", { serviceAccountName: "deployer", targetNamespace: "web" }).serviceAccount, {
      namespace: "apps",
      name: "deployer",
    });
    assert.equal(v2("web", "apps", {}).serviceAccount, undefined);
  });

  it("resolves Flux v2 charts from GitRepository, OCI HelmRepository and OCIRepository sources", () => {
    const git = source("GitRepository", "charts", "apps", { url: "https://github.com/org/charts", ref: { branch: "main", tag: "v1.2.0" } });
    const spec = parseHelmRelease(
      helmRelease("helm.toolkit.fluxcd.io/v2beta1", "web", "apps", {
        chart: { spec: { chart: "./charts/web", version: "ignored", sourceRef: { kind: "GitRepository", name: "charts" } } },
      }),
      at,
      [git],
    );
    // source-controller: a tag takes precedence over a branch.
    assert.deepEqual(spec.chart, {
      type: "git",
      url: "https://github.com/org/charts",
      ref: { kind: "tag", tag: "v1.2.0" },
      path: "charts/web",
    });

    const bare = source("GitRepository", "charts", "apps", { url: "https://github.com/org/charts" });
    const onMaster = parseHelmRelease(
      helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", {
        chart: { spec: { chart: "web", sourceRef: { kind: "GitRepository", name: "charts" } } },
      }),
      at,
      [bare],
    );
    assert.deepEqual(onMaster.chart, {
      type: "git",
      url: "https://github.com/org/charts",
      ref: { kind: "branch", branch: "master" },
      path: "web",
    });

    const ociRepo = source("HelmRepository", "podinfo", "flux-system", { type: "oci", url: "oci://ghcr.io/stefanprodan/charts/" });
    assert.deepEqual(v2("web", "apps", {}, [ociRepo]).chart, {
      type: "oci",
      url: "oci://ghcr.io/stefanprodan/charts/podinfo",
      version: "6.5.0",
    });

    const artifact = source("OCIRepository", "podinfo", "apps", {
      url: "oci://ghcr.io/stefanprodan/charts/podinfo",
      ref: { semver: ">=6.0.0 <7.0.0" },
    });
    const fromRef = parseHelmRelease(
      helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", { chartRef: { kind: "OCIRepository", name: "podinfo" } }),
      at,
      [artifact],
    );
    assert.deepEqual(fromRef.chart, { type: "oci", url: "oci://ghcr.io/stefanprodan/charts/podinfo", version: ">=6.0.0 <7.0.0" });
  });

  it("keeps a semver range as the chart version, and no version as undefined (the newest)", () => {
    assert.equal(
      v2("web", "apps", {
        chart: {
          spec: {
            chart: "podinfo",
            version: ">=1.0.0 <2.0.0",
            sourceRef: { kind: "HelmRepository", name: "podinfo", namespace: "flux-system" },
          },
        },
      }).chart.type,
      "helm-repository",
    );
    const ranged = v2("web", "apps", {
      chart: {
        spec: { chart: "podinfo", version: "1.x", sourceRef: { kind: "HelmRepository", name: "podinfo", namespace: "flux-system" } },
      },
    });
    assert.equal(ranged.chart.type === "helm-repository" && ranged.chart.version, "1.x");
    const newest = v2("web", "apps", {
      chart: { spec: { chart: "podinfo", sourceRef: { kind: "HelmRepository", name: "podinfo", namespace: "flux-system" } } },
    });
    assert.equal(newest.chart.type === "helm-repository" && newest.chart.version, undefined);
  });

  it("refuses a chartFileRef for a chart from a Helm repository", () => {
    throwsManifestError(
      () => v1("web", "apps", { valuesFrom: [{ chartFileRef: { path: "values-prod.yaml" } }] }),
      /^clusters\/dev\/apps\.yaml:3 \(document 1\): HelmRelease\/apps\/web: `spec\.valuesFrom\[0\]\.chartFileRef` reads a file of the chart's git folder, but this release's chart comes from a Helm repository\n {2}fix: move those values into `spec\.values`/,
    );
  });

  it("names a missing HelmRepository and says to add it to the repository", () => {
    throwsManifestError(
      () => v2("web", "apps", {}, []),
      /HelmRelease\/apps\/web: `spec\.chart\.spec\.sourceRef` names HelmRepository\/flux-system\/podinfo, which is not in the repository\n {2}fix: add the HelmRepository "podinfo" \(namespace flux-system\) to the repository/,
    );
    // The source's namespace defaults to the HelmRelease's, not to the source's actual namespace.
    throwsManifestError(
      () =>
        parseHelmRelease(
          helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", {
            chart: { spec: { chart: "podinfo", sourceRef: { kind: "HelmRepository", name: "podinfo" } } },
          }),
          at,
          [podinfoRepo],
        ),
      /names HelmRepository\/apps\/podinfo, which is not in the repository/,
    );
  });

  it("explains invalid fields, and refuses what ferry cannot render faithfully", () => {
    throwsManifestError(
      () =>
        v2("web", "apps", { chart: { spec: { chart: "podinfo", version: 1.1, sourceRef: { kind: "HelmRepository", name: "podinfo" } } } }),
      /`spec\.chart\.spec\.version` must be a string, not number 1\.1\n {2}fix: quote it, e\.g\. version: "1\.1"/,
    );
    throwsManifestError(
      () => v2("web", "apps", { valuesFrom: [{ kind: "Bucket", name: "x" }] }),
      /`spec\.valuesFrom\[0\]\.kind` is "Bucket"; it must be ConfigMap or Secret/,
    );
    throwsManifestError(
      () => v2("web", "apps", { postRenderers: [{ kustomize: { patches: [{ target: { kind: "X" } }] } }] }),
      /`spec\.postRenderers\[0\]\.kustomize\.patches\[0\]\.patch` is missing/,
    );
    throwsManifestError(() => v2("web", "apps", { chart: undefined }), /has neither `spec\.chart` nor `spec\.chartRef`/);
    throwsManifestError(
      () => v1("web", "apps", { chart: { git: "g", repository: "r" } }),
      /`spec\.chart` sets both `repository` and `git`/,
    );
    throwsManifestError(
      () => v1("web", "apps", { valuesFrom: [{ configMapKeyRef: { name: "a" }, secretKeyRef: { name: "b" } }] }),
      /must set exactly one of/,
    );
    throwsManifestError(
      () => parseHelmRelease(helmRelease("helm.fluxcd.io/v1", "web", "apps", { chart: { git: "g", path: "../outside" } }), at, []),
      /`spec\.chart\.path` "\.\.\/outside" leaves the repository/,
    );
  });
});

describe("parseHelmRelease: Flux sources and git refs", () => {
  function fromGit(ref: Record<string, unknown> | undefined): unknown {
    const repo = source("GitRepository", "charts", "apps", { url: "https://github.com/org/charts", ...(ref ? { ref } : {}) });
    return parseHelmRelease(
      helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", {
        chart: { spec: { chart: "charts/web", sourceRef: { kind: "GitRepository", name: "charts" } } },
      }),
      at,
      [repo],
    ).chart;
  }
  const sha = "0123456789abcdef0123456789abcdef01234567";

  it("carries a GitRepository's ref as a typed git ref, with source-controller's precedence", () => {
    const all = { branch: "main", tag: "v1.0.0", semver: "1.x", name: "refs/pull/1/head", commit: sha };
    const refOf = (ref: Record<string, unknown> | undefined): unknown => (fromGit(ref) as { ref: unknown }).ref;
    assert.deepEqual(refOf(all), { kind: "commit", sha });
    assert.deepEqual(refOf({ ...all, commit: "" }), { kind: "name", name: "refs/pull/1/head" });
    assert.deepEqual(refOf({ branch: "main", tag: "v1.0.0", semver: "1.x" }), { kind: "semver", range: "1.x" });
    assert.deepEqual(refOf({ branch: "main", tag: "v1.0.0" }), { kind: "tag", tag: "v1.0.0" });
    assert.deepEqual(refOf({ branch: "release/1.x" }), { kind: "branch", branch: "release/1.x" });
    assert.deepEqual(refOf({}), { kind: "branch", branch: "master" });
    assert.deepEqual(refOf(undefined), { kind: "branch", branch: "master" });
  });

  it("keeps helm-operator's spec.chart.ref as a name to resolve as a branch, tag or commit", () => {
    const spec = v1("web", "apps", { chart: { git: "ssh://git@example.com/charts", ref: "v1.4.0", path: "web" } });
    assert.deepEqual(spec.chart, { type: "git", url: "ssh://git@example.com/charts", ref: { kind: "auto", ref: "v1.4.0" }, path: "web" });
  });

  it("reads an OCIRepository's digest, then semver, then tag (a chart version), and refuses a tag helm cannot select", () => {
    const chartOf = (ref: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}): unknown =>
      parseHelmRelease(
        helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", { chartRef: { kind: "OCIRepository", name: "podinfo" } }),
        at,
        [
          source("OCIRepository", "podinfo", "apps", {
            url: "oci://ghcr.io/stefanprodan/charts/podinfo/",
            ...(ref ? { ref } : {}),
            ...extra,
          }),
        ],
      ).chart;
    const url = "oci://ghcr.io/stefanprodan/charts/podinfo";
    const digest = `sha256:${"a".repeat(64)}`;
    assert.deepEqual(chartOf({ tag: "6.5.0", semver: "6.x" }), { type: "oci", url, version: "6.x" });
    assert.deepEqual(chartOf({ tag: "6.5.0" }), { type: "oci", url, version: "6.5.0" });
    assert.deepEqual(chartOf({ tag: "1.0.0_build.1" }), { type: "oci", url, version: "1.0.0+build.1" }, "helm writes + as _ in tags");
    assert.deepEqual(chartOf({ digest, semver: "6.x" }), { type: "oci", url: `${url}@${digest}` });
    assert.deepEqual(
      chartOf(
        { tag: "6.5.0" },
        { insecure: true, layerSelector: { mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", operation: "copy" } },
      ),
      { type: "oci", url, version: "6.5.0", insecure: true },
    );
    throwsManifestError(
      () => chartOf(undefined),
      /^clusters\/dev\/apps\.yaml:3 \(document 1\): HelmRelease\/apps\/web: OCIRepository\/apps\/podinfo: `spec\.ref` is not set, so Flux would take the `latest` tag, which is not a chart version; .*\n {2}fix: pin the chart with `spec\.ref\.tag: <chart version>`/,
    );
    throwsManifestError(() => chartOf({ tag: "main" }), /`spec\.ref\.tag` is "main", which is not a chart version/);
    throwsManifestError(() => chartOf({ digest: "sha256:abc" }), /`spec\.ref\.digest` is "sha256:abc", not a sha256 digest/);
    throwsManifestError(
      () => chartOf({ tag: "1.0.0" }, { layerSelector: { mediaType: "application/vnd.cncf.flux.content.v1.tar+gzip" } }),
      /`spec\.layerSelector\.mediaType` is "application\/vnd\.cncf\.flux\.content\.v1\.tar\+gzip"; it must be application\/vnd\.cncf\.helm\.chart\.content\.v1\.tar\+gzip/,
    );
    throwsManifestError(
      () => chartOf({ tag: "1.0.0" }, { verify: { provider: "cosign" } }),
      /`spec\.verify` is not supported: ferry does not verify OCI signatures/,
    );
    throwsManifestError(() => chartOf({ tag: "1.0.0" }, { provider: "aws" }), /`spec\.provider` is "aws"; it must be generic/);
    throwsManifestError(() => chartOf({ semver: "1.x", semverFilter: ".*-rc.*" }), /`spec\.ref\.semverFilter` is not supported/);
    throwsManifestError(() => chartOf({ tag: "1.0.0" }, { serviceAccountName: "puller" }), /`spec\.serviceAccountName` is not supported/);
    throwsManifestError(() => chartOf({ tag: "1.0.0" }, { certSecretRef: { name: "ca" } }), /`spec\.certSecretRef` is not supported/);
    throwsManifestError(
      () =>
        parseHelmRelease(
          helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", { chartRef: { kind: "OCIRepository", name: "podinfo" } }),
          at,
          [source("OCIRepository", "podinfo", "apps", { url: "https://ghcr.io/charts/podinfo", ref: { tag: "1.0.0" } })],
        ),
      /`spec\.url` is "https:\/\/ghcr\.io\/charts\/podinfo", not an oci:\/\/ URL/,
    );
  });

  it("reads a HelmRepository of type oci with insecure (plain HTTP), and refuses what it cannot honour by name", () => {
    const chartOf = (spec: Record<string, unknown>): unknown =>
      parseHelmRelease(
        helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", {
          chart: { spec: { chart: "webapp", version: "1.0.0", sourceRef: { kind: "HelmRepository", name: "registry" } } },
        }),
        at,
        [source("HelmRepository", "registry", "apps", spec)],
      ).chart;
    assert.deepEqual(chartOf({ type: "oci", url: "oci://127.0.0.1:5000/charts/", insecure: true }), {
      type: "oci",
      url: "oci://127.0.0.1:5000/charts/webapp",
      version: "1.0.0",
      insecure: true,
    });
    assert.deepEqual(chartOf({ type: "oci", url: "oci://ghcr.io/charts", insecure: false, passCredentials: false }), {
      type: "oci",
      url: "oci://ghcr.io/charts/webapp",
      version: "1.0.0",
    });
    // Flux reads `insecure` for OCI only; an http(s) repository's URL says how to reach it.
    assert.deepEqual(chartOf({ url: "http://charts.example.com", insecure: true }), {
      type: "helm-repository",
      url: "http://charts.example.com",
      chart: "webapp",
      version: "1.0.0",
    });
    throwsManifestError(
      () => chartOf({ type: "oci", url: "https://ghcr.io/charts" }),
      /`spec\.url` is "https:\/\/ghcr\.io\/charts", but `type: oci` needs an oci:\/\/ URL/,
    );
    throwsManifestError(() => chartOf({ type: "git", url: "https://x" }), /`spec\.type` is "git"; it must be default or oci/);
    throwsManifestError(() => chartOf({ url: "https://x", passCredentials: true }), /`spec\.passCredentials` is not supported/);
    throwsManifestError(
      () => chartOf({ type: "oci", url: "oci://x/y", provider: "azure" }),
      /`spec\.provider` is "azure"; it must be generic/,
    );
  });

  it("reports a source's own invalid field at the HelmRelease, naming both objects", () => {
    throwsManifestError(
      () => fromGit({ tag: 1.2 }),
      /HelmRelease\/apps\/web: GitRepository\/apps\/charts: `spec\.ref\.tag` must be a string, not number 1\.2\n {2}fix: quote it, e\.g\. tag: "1\.2"/,
    );
    throwsManifestError(
      () => v2("web", "apps", {}, [source("HelmRepository", "podinfo", "flux-system", {})]),
      /HelmRelease\/apps\/web: HelmRepository\/flux-system\/podinfo: `spec\.url` is missing\n {2}fix: give the repository URL/,
    );
  });

  it("refuses a chart path in a GitRepository that leaves the repository", () => {
    const repo = source("GitRepository", "charts", "apps", { url: "https://github.com/org/charts" });
    throwsManifestError(
      () =>
        parseHelmRelease(
          helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", {
            chart: { spec: { chart: "/etc/charts", sourceRef: { kind: "GitRepository", name: "charts" } } },
          }),
          at,
          [repo],
        ),
      /`spec\.chart\.spec\.chart` "\/etc\/charts" leaves the repository\n {2}fix: give the chart's folder relative to the repository root/,
    );
  });
});

describe("parseHelmRelease: messages name the field and say how to fix it", () => {
  it("names a missing or unsupported sourceRef field by its full path", () => {
    throwsManifestError(
      () => v2("web", "apps", { chart: { spec: { chart: "podinfo", sourceRef: { name: "podinfo" } } } }),
      /HelmRelease\/apps\/web: `spec\.chart\.spec\.sourceRef\.kind` is missing\n {2}fix: point `sourceRef` at a HelmRepository or a GitRepository/,
    );
    throwsManifestError(
      () => v2("web", "apps", { chart: { spec: { chart: "podinfo", sourceRef: { kind: "Bucket", name: "podinfo" } } } }),
      /`spec\.chart\.spec\.sourceRef\.kind` is "Bucket"; it must be HelmRepository or GitRepository\n {2}fix: point `sourceRef`/,
    );
    throwsManifestError(
      () =>
        parseHelmRelease(helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", { chartRef: { kind: "HelmChart", name: "x" } }), at, []),
      /`spec\.chartRef\.kind` is "HelmChart"; it must be OCIRepository\n {2}fix: point `spec\.chartRef` at an OCIRepository/,
    );
  });

  it("names the entry of a list by its index", () => {
    throwsManifestError(
      () => v2("web", "apps", { valuesFrom: [{ kind: "ConfigMap", name: "a" }, { kind: "Secret" }] }),
      /`spec\.valuesFrom\[1\]\.name` is missing\n {2}fix: each valuesFrom entry is `\{kind: ConfigMap\|Secret, name/,
    );
    throwsManifestError(
      () => v2("web", "apps", { dependsOn: ["database"] }),
      /`spec\.dependsOn\[0\]` must be a mapping, not string "database"/,
    );
    throwsManifestError(() => v1("web", "apps", { valueFileSecrets: [{ name: "" }] }), /`spec\.valueFileSecrets\[0\]\.name` is missing/);
  });

  it("refuses the other fields Flux applies and ferry does not, by name", () => {
    throwsManifestError(
      () => v2("web", "apps", { kubeConfig: { secretRef: { name: "remote" } } }),
      /`spec\.kubeConfig` is not supported: ferry applies to its own cluster only\n {2}fix: remove spec\.kubeConfig/,
    );
    throwsManifestError(
      () =>
        v2("web", "apps", {
          chart: {
            spec: {
              chart: "podinfo",
              valuesFiles: ["values-prod.yaml"],
              sourceRef: { kind: "HelmRepository", name: "podinfo", namespace: "flux-system" },
            },
          },
        }),
      /`spec\.chart\.spec\.valuesFiles` reads files inside the chart archive of a Helm or OCI repository/,
    );
    const refusals: [Record<string, unknown>, RegExp][] = [
      [{ test: { enable: true } }, /`spec\.test\.enable` is not supported: ferry does not run Helm tests/],
      [{ install: { createNamespace: true } }, /`spec\.install\.createNamespace` is not supported[^]*fix: declare the Namespace/],
      [{ upgrade: { preserveValues: true } }, /`spec\.upgrade\.preserveValues` is not supported/],
      [{ install: { disableHooks: true } }, /`spec\.install\.disableHooks` is not supported/],
      [{ driftDetection: { mode: "enabled", ignore: [{ paths: ["/spec/replicas"] }] } }, /`spec\.driftDetection\.ignore` is not supported/],
      [{ upgrade: { disableSchemaValidation: true } }, /`spec\.upgrade\.disableSchemaValidation` is not supported/],
      [{ valuesFilez: ["x"] }, /`spec\.valuesFilez` is not a field ferry knows for this kind\n {2}fix: check its spelling/],
      [{ install: { remediaton: { retries: 3 } } }, /`spec\.install\.remediaton` is not a field ferry knows/],
    ];
    for (const [spec, message] of refusals) throwsManifestError(() => v2("web", "apps", spec), message);
    // Empty is as good as unset.
    assert.equal(v2("web", "apps", { postRenderers: [], kubeConfig: null }).name, "web");
  });

  it("accepts the fields that only tune helm-controller, as the Flux example repositories set them", () => {
    const spec = v2("web", "apps", {
      interval: "50m",
      timeout: "5m",
      maxHistory: 3,
      storageNamespace: "flux-system",
      persistentClient: true,
      install: { remediation: { retries: 3 }, crds: "CreateReplace", disableWait: false },
      upgrade: { remediation: { retries: 3, remediateLastFailure: true }, cleanupOnFail: true, force: true, crds: "CreateReplace" },
      test: { enable: false },
      rollback: { recreate: true },
      uninstall: { keepHistory: false },
      driftDetection: { mode: "enabled" },
    });
    assert.equal(spec.skipCRDs, false);
  });

  it("reads postRenderers (then commonMetadata) as Kustomize overlays in order", () => {
    const spec = v2("web", "apps", {
      postRenderers: [
        {
          kustomize: {
            patches: [{ patch: "$patch: delete\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n" }],
            images: [{ name: "nginx", newTag: "1.27" }],
          },
        },
        {
          kustomize: {
            patchesJson6902: [{ target: { kind: "Deployment", name: "web" }, patch: [{ op: "add", path: "/spec/paused", value: true }] }],
          },
        },
      ],
      commonMetadata: { labels: { team: "a" } },
    });
    assert.deepEqual(spec.postRenderers, [
      {
        patches: [{ patch: "$patch: delete\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n" }],
        images: [{ name: "nginx", newTag: "1.27" }],
        components: [],
        ignoreMissingComponents: false,
      },
      {
        patches: [{ patch: "- op: add\n  path: /spec/paused\n  value: true\n", target: { kind: "Deployment", name: "web" } }],
        images: [],
        components: [],
        ignoreMissingComponents: false,
      },
      {
        patches: [],
        images: [],
        components: [],
        ignoreMissingComponents: false,
        commonMetadata: { labels: { team: "a" }, annotations: {} },
      },
    ]);
  });

  it("checks install.crds and the choice between chart and chartRef", () => {
    throwsManifestError(
      () => v2("web", "apps", { install: { crds: "Always" } }),
      /`spec\.install\.crds` is "Always"; it must be Skip, Create or CreateReplace/,
    );
    throwsManifestError(
      () => v2("web", "apps", { chartRef: { kind: "OCIRepository", name: "podinfo" } }),
      /HelmRelease\/apps\/web: sets both `spec\.chart` and `spec\.chartRef`\n {2}fix: keep one of them/,
    );
    throwsManifestError(
      () => parseHelmRelease(helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", undefined as never), at, []),
      /HelmRelease\/apps\/web: `spec` is missing\n {2}fix: add a spec with at least the chart to install/,
    );
  });

  it("treats empty strings and nulls as unset, as Flux's omitempty does", () => {
    const spec = v2("web", "apps", { releaseName: "", targetNamespace: null, suspend: null, valuesFrom: null, values: null });
    assert.deepEqual([spec.releaseName, spec.targetNamespace, spec.suspend, spec.valuesFrom, spec.values], ["web", "apps", false, [], {}]);
    assert.equal(v1("web", "apps", { releaseName: "", targetNamespace: "" }).releaseName, "apps-web");
  });

  it("keeps inline values as written, a __proto__ key included, and refuses values that are not a mapping", () => {
    const values = JSON.parse('{"__proto__": {"polluted": true}, "image": {"tag": "v1"}}') as Record<string, unknown>;
    const spec = v2("web", "apps", { values });
    assert.deepEqual(Object.keys(spec.values), ["__proto__", "image"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    throwsManifestError(() => v2("web", "apps", { values: ["a"] }), /`spec\.values` must be a mapping, not a list/);
  });
});

describe("chart sources from untrusted content", () => {
  const fromGit = (url: string) =>
    parseHelmRelease(
      helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", {
        chart: { spec: { chart: "charts/web", sourceRef: { kind: "GitRepository", name: "charts" } } },
      }),
      at,
      [source("GitRepository", "charts", "apps", { url })],
    );

  it("refuses a local path, a relative path or a file:// URL as a git chart's repository, naming it", () => {
    for (const [git, shown] of [
      ["/home/alice/charts", /"\/home\/alice\/charts" is a local path/],
      ["../other-stack/checkout", /"\.\.\/other-stack\/checkout" is a local path/],
      ["file:///srv/git/charts", /"file:\/\/\/srv\/git\/charts" is a file:\/\/ URL/],
    ] as const) {
      throwsManifestError(
        () => parseHelmRelease(helmRelease("helm.fluxcd.io/v1", "web", "apps", { chart: { git, path: "charts/web" } }), at, []),
        new RegExp(`HelmRelease/apps/web: \`spec\\.chart\\.git\` ${shown.source}.*\n  fix: use the repository's remote URL`),
      );
      throwsManifestError(
        () => fromGit(git),
        new RegExp(
          `HelmRelease/apps/web: GitRepository/apps/charts: \`spec\\.url\` ${shown.source}.*\n  fix: use the repository's remote URL`,
        ),
      );
    }
  });

  it("carries each source's own secretRef, in the source's namespace unless it names another", () => {
    const git = source("GitRepository", "charts", "apps", { url: "https://git.example.com/charts", secretRef: { name: "git-creds" } });
    const spec = parseHelmRelease(
      helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", {
        chart: { spec: { chart: "web", sourceRef: { kind: "GitRepository", name: "charts" } } },
      }),
      at,
      [git],
    );
    assert.deepEqual(spec.chart.secretRef, { source: "GitRepository/apps/charts", name: "git-creds", namespace: "apps" });

    const repo = source("HelmRepository", "podinfo", "flux-system", {
      url: "https://charts.example.com",
      secretRef: { name: "repo-creds" },
    });
    assert.deepEqual(v2("web", "apps", {}, [repo]).chart.secretRef, {
      source: "HelmRepository/flux-system/podinfo",
      name: "repo-creds",
      namespace: "flux-system",
    });
    const oci = source("OCIRepository", "podinfo", "apps", {
      url: "oci://ghcr.io/org/podinfo",
      ref: { tag: "6.5.0" },
      secretRef: { name: "ghcr", namespace: "other" },
    });
    const fromOci = parseHelmRelease(
      helmRelease("helm.toolkit.fluxcd.io/v2", "web", "apps", { chartRef: { kind: "OCIRepository", name: "podinfo" } }),
      at,
      [oci],
    );
    assert.deepEqual(fromOci.chart.secretRef, { source: "OCIRepository/apps/podinfo", name: "ghcr", namespace: "other" });
    assert.equal(v2("web", "apps", {}).chart.secretRef, undefined);
  });
});
