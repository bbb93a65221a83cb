// The Pulumi program of a ferry stack: program input -> ClusterStack.
// Run by ferry (every run builds the desired state once and hands it over in ferry:desiredState),
// or by hand: `pulumi up --stack <cluster>`, which builds it here with the same build phase.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ClusterStack } from "./components/cluster-stack";
import { deserializeProgramInput, PROGRAM_INPUT_KEY_ENV, ProgramInput } from "./src/desired-state/program-input";
import { impersonatedUsers, impersonatingKubeconfig } from "./src/desired-state/service-account";

const config = new pulumi.Config("ferry");

async function programInput(): Promise<ProgramInput> {
  const file = config.get("desiredState");
  // Encrypted on disk: the run hands the key through the environment only.
  if (file) return deserializeProgramInput(fs.readFileSync(file, "utf8"), process.env[PROGRAM_INPUT_KEY_ENV]);
  // Run by hand: build here. Loaded only now, so a run by ferry does not pay for the render tools'
  // modules (the Kubernetes client among them) in every program start.
  const [{ cacheDir }, { renderCheckout }, { defaultToolchainOptions, ensureToolchain }, { sourcePolicy }] = await Promise.all([
    import("./src/lib/paths"),
    import("./src/render/render-checkout"),
    import("./src/toolchain/install"),
    import("./src/desired-state/source-policy"),
  ]);
  const toolchain = await ensureToolchain(defaultToolchainOptions({ only: ["helm", "kubectl"], progress: (l) => void pulumi.log.info(l) }));
  const state = await renderCheckout({
    checkout: path.resolve(config.require("checkout")),
    path: config.require("path"),
    allowEmpty: config.getBoolean("allowEmpty") ?? false,
    helm: toolchain.bin("helm"),
    kubectl: toolchain.bin("kubectl"),
    kubeconfig: config.get("kubeconfig") ?? process.env.KUBECONFIG,
    context: config.get("context"),
    cacheDir: path.join(cacheDir(), "render"),
    // The stack's policy as ferry last wrote it (ferry:policy); the walls up when there is none.
    policy: sourcePolicy(config.getObject("policy") ?? {}),
    // An update by hand applies: charts' lookup reads the cluster, as in ferry's syncs.
    clusterLookup: true,
  });
  // By hand, the program cannot leave a failed unit's objects alone (a plain update deletes whatever
  // it does not register): refuse, as a whole, what `ferry sync` would isolate.
  if (state.failed?.length) {
    const { DesiredStateError } = await import("./src/desired-state/manifest-error");
    throw new DesiredStateError(state.failed.flatMap((f) => f.errors));
  }
  return { state, adopt: {}, outputs: {} };
}

/**
 * For each account the state applies objects as (Flux serviceAccountName), the stack's kubeconfig
 * impersonating it: the kubeconfig files read here, at the edge, as client-go finds them.
 */
function impersonation(state: ProgramInput["state"], kubeconfig: string | undefined, context: string | undefined): Record<string, string> {
  const users = impersonatedUsers(state);
  if (users.length === 0) return {};
  // The provider takes the kubeconfig's contents as well as its path.
  if (kubeconfig?.includes("\n"))
    return Object.fromEntries(
      users.map((user) => [user, impersonatingKubeconfig([{ text: kubeconfig, dir: process.cwd() }], context, user)]),
    );
  const paths = kubeconfig
    ? [kubeconfig]
    : process.env.KUBECONFIG
      ? process.env.KUBECONFIG.split(path.delimiter).filter((p) => p !== "")
      : [path.join(os.homedir(), ".kube", "config")];
  const files = paths
    .filter((p) => fs.existsSync(p))
    .map((p) => ({ text: fs.readFileSync(p, "utf8"), dir: path.dirname(path.resolve(p)) }));
  return Object.fromEntries(users.map((user) => [user, impersonatingKubeconfig(files, context, user)]));
}

export = async (): Promise<Record<string, unknown>> => {
  const input = await programInput();
  const kubeconfig = config.get("kubeconfig");
  const context = config.get("context");
  const cluster = new ClusterStack("cluster", {
    state: input.state,
    adopt: input.adopt,
    keep: input.keep,
    kubeconfig,
    context,
    clusterIdentifier: config.get("clusterIdentifier") ?? pulumi.getStack(),
    kubeClient: { qps: config.getNumber("kubeClientQps"), burst: config.getNumber("kubeClientBurst") },
    impersonation: impersonation(input.state, kubeconfig, context),
  });
  // A rollback's pin travels in the outputs, so every ferry sharing the backend sees it.
  return { objectCount: cluster.objectCount, ...input.outputs };
};
