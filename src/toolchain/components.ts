/**
 * The pinned toolchain: what ferry needs to run Pulumi and a local control plane, and how
 * each piece is built from its Go modules. Versions here must match toolchain/modules/<name>/go.mod
 * and the npm dependencies in package.json (`@pulumi/pulumi`, `@pulumi/kubernetes`).
 */
import * as semver from "semver";

/** How to ask a binary on PATH for its version, and what the answer must contain. */
export interface VersionProbe {
  readonly args: readonly string[];
  /** The version string that must appear in the output (e.g. "v3.184.0"). */
  readonly expect: string;
  /**
   * When set, any release from this version on within its major is accepted too (the output's first
   * `vX.Y.Z`, compared by semver); see {@link probeAccepts}.
   */
  readonly minimum?: { readonly version: string; readonly why: string };
}

/** The first `vX.Y.Z[-prerelease][+build]` in a version probe's output, without the "v", if any. Pure. */
export function probedVersion(output: string): string | undefined {
  const found = /(?:^|[^\w.])v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)/.exec(output)?.[1];
  return found && semver.valid(found) ? found : undefined;
}

/**
 * Whether a binary's version output satisfies its probe: it contains `expect`, or (with `minimum`, which
 * then decides alone) its version is at least the minimum and has the same major. Prereleases and dev builds count by semver
 * precedence: `3.190.0-alpha.x` comes after 3.184.0 and is accepted, `3.184.0-rc.1` comes before it and is not. Pure.
 */
export function probeAccepts(output: string, probe: VersionProbe): boolean {
  if (!probe.minimum) return output.includes(probe.expect);
  // By version only: "v3.184.0-rc.1" contains "v3.184.0" but comes before it.
  const version = probedVersion(output);
  const minimum = probe.minimum.version;
  return version !== undefined && semver.major(version) === semver.major(minimum) && semver.gte(version, minimum);
}

/** One binary a component provides. */
export interface ToolBinary {
  /** File name of the executable. */
  readonly name: string;
  /** Go package whose main is this binary. */
  readonly goPackage: string;
  /** How to recognise a matching binary already on PATH; none means never taken from PATH. */
  readonly probe?: VersionProbe;
}

/** A set of binaries built from one wrapper module under toolchain/modules/. */
export interface ToolComponent {
  readonly name: string;
  readonly version: string;
  /** Folder under toolchain/modules/ with go.mod, go.sum (and sources) of the wrapper module. */
  readonly module: string;
  readonly binaries: readonly ToolBinary[];
  readonly ldflags: readonly string[];
  readonly tags?: readonly string[];
  /** Extra build step: generated files the wrapper module needs (see kubernetes-provider). */
  readonly generate?: "kubernetes-provider-schema";
  /** Data files copied from a Go module into the component's folder (e.g. kwok's stage configs). */
  readonly assets?: { readonly module: string; readonly files: readonly string[]; readonly into: string };
  /** Needed only by ferry's own tests (`ferry toolchain install` builds it; `ferry demo` and runs never ask for it). */
  readonly testsOnly?: boolean;
  /**
   * The build's own revision, bumped whenever the build changes at the same version (ldflags, tags),
   * so the cache builds into a new folder instead of keeping the old binary.
   */
  readonly build?: number;
}

export const PULUMI_VERSION = "3.184.0";
/**
 * The oldest Pulumi CLI (and language host) ferry takes from PATH: the pinned release, which ferry is
 * tested with; the SDK (`@pulumi/pulumi` 3.182.0) needs a CLI at least as new as itself.
 */
export const PULUMI_MINIMUM_VERSION = "3.184.0";
export const PULUMI_KUBERNETES_VERSION = "4.25.0";
export const KUBERNETES_VERSION = "1.34.4";
export const ETCD_VERSION = "3.6.16";
export const KWOK_VERSION = "0.8.0";
export const HELM_VERSION = "3.19.0";
export const REGISTRY_VERSION = "3.1.2";
/** The commit helm's v3.19.0 tag points to, stamped into `helm version` as helm's Makefile does. */
const HELM_GIT_COMMIT = "3d8990f0836691f0229297773f3524598f46bda6";

const k8sVersionFlags = (pkg: string): string[] => {
  const [major, minor] = KUBERNETES_VERSION.split(".");
  return [
    `-X ${pkg}.gitVersion=v${KUBERNETES_VERSION}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ];
};

/** Every component of the toolchain, in build order (cheapest and most needed first). */
export const COMPONENTS: readonly ToolComponent[] = [
  {
    name: "pulumi",
    version: PULUMI_VERSION,
    module: "pulumi",
    binaries: [
      {
        name: "pulumi",
        goPackage: "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
        probe: {
          args: ["version"],
          expect: `v${PULUMI_VERSION}`,
          minimum: {
            version: PULUMI_MINIMUM_VERSION,
            why: "the oldest release ferry is tested with; the Pulumi SDK needs a CLI at least as new as itself",
          },
        },
      },
      {
        name: "pulumi-language-nodejs",
        goPackage: "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3",
      },
    ],
    tags: ["osusergo", "grpcnotrace"],
    ldflags: [`-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${PULUMI_VERSION}`],
  },
  {
    name: "pulumi-resource-kubernetes",
    version: PULUMI_KUBERNETES_VERSION,
    module: "kubernetes-provider",
    binaries: [{ name: "pulumi-resource-kubernetes", goPackage: "." }],
    ldflags: [`-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${PULUMI_KUBERNETES_VERSION}`],
    generate: "kubernetes-provider-schema",
  },
  {
    name: "etcd",
    version: ETCD_VERSION,
    module: "etcd",
    binaries: [
      { name: "etcd", goPackage: "go.etcd.io/etcd/server/v3", probe: { args: ["--version"], expect: `etcd Version: ${ETCD_VERSION}` } },
    ],
    ldflags: [],
  },
  {
    name: "kwok",
    version: KWOK_VERSION,
    module: "kwok",
    binaries: [{ name: "kwok", goPackage: "sigs.k8s.io/kwok/cmd/kwok" }],
    ldflags: [],
    // kwok needs stage configs to make nodes Ready and pods Running; it ships them as data files.
    assets: {
      module: "sigs.k8s.io/kwok",
      files: [
        "kustomize/stage/node/fast/node-initialize.yaml",
        "kustomize/stage/pod/fast/pod-ready.yaml",
        "kustomize/stage/pod/fast/pod-complete.yaml",
        "kustomize/stage/pod/fast/pod-delete.yaml",
      ],
      into: "stages",
    },
  },
  {
    name: "helm",
    version: HELM_VERSION,
    module: "helm",
    binaries: [
      {
        name: "helm",
        goPackage: "helm.sh/helm/v3/cmd/helm",
        probe: { args: ["version", "--short"], expect: `v${HELM_VERSION}` },
      },
    ],
    // As helm's Makefile: its version info, and the default Kubernetes version of `helm template` and
    // `helm lint` (client-go's minor; without it helm assumes v1.20.0). Runs pass the cluster's anyway.
    ldflags: [
      `-X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}`,
      `-X helm.sh/helm/v3/internal/version.gitCommit=${HELM_GIT_COMMIT}`,
      "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
      ...["pkg/chartutil", "pkg/lint/rules"].flatMap((p) => [
        `-X helm.sh/helm/v3/${p}.k8sVersionMajor=1`,
        `-X helm.sh/helm/v3/${p}.k8sVersionMinor=${KUBERNETES_VERSION.split(".")[1]}`,
      ]),
    ],
    build: 2,
  },
  {
    // The CNCF Distribution registry: tests serve OCI Helm charts from it on loopback.
    name: "registry",
    version: REGISTRY_VERSION,
    module: "registry",
    binaries: [
      {
        name: "registry",
        goPackage: ".",
        probe: { args: ["--version"], expect: `github.com/distribution/distribution/v3 v${REGISTRY_VERSION}` },
      },
    ],
    ldflags: [`-X github.com/distribution/distribution/v3/version.version=v${REGISTRY_VERSION}`],
    testsOnly: true,
  },
  {
    name: "kubernetes",
    version: KUBERNETES_VERSION,
    module: "kubernetes",
    binaries: [
      {
        name: "kube-apiserver",
        goPackage: "k8s.io/kubernetes/cmd/kube-apiserver",
        probe: { args: ["--version"], expect: `Kubernetes v${KUBERNETES_VERSION}` },
      },
      {
        name: "kube-controller-manager",
        goPackage: "k8s.io/kubernetes/cmd/kube-controller-manager",
        probe: { args: ["--version"], expect: `Kubernetes v${KUBERNETES_VERSION}` },
      },
      {
        name: "kube-scheduler",
        goPackage: "k8s.io/kubernetes/cmd/kube-scheduler",
        probe: { args: ["--version"], expect: `Kubernetes v${KUBERNETES_VERSION}` },
      },
    ],
    ldflags: [...k8sVersionFlags("k8s.io/component-base/version"), ...k8sVersionFlags("k8s.io/client-go/pkg/version")],
  },
  {
    // Its own component: `ferry sync` needs kubectl (Kustomize, live reads) but not a control plane.
    name: "kubectl",
    version: KUBERNETES_VERSION,
    module: "kubernetes",
    binaries: [
      {
        name: "kubectl",
        goPackage: "k8s.io/kubernetes/cmd/kubectl",
        probe: { args: ["version", "--client"], expect: `Client Version: v${KUBERNETES_VERSION}` },
      },
    ],
    ldflags: [...k8sVersionFlags("k8s.io/component-base/version"), ...k8sVersionFlags("k8s.io/client-go/pkg/version")],
  },
];

/** The key of a component's folder in the cache: changes whenever its version or its build revision does. */
export function componentKey(component: ToolComponent): string {
  return `${component.name}-${component.version}${component.build ? `-b${component.build}` : ""}`;
}
