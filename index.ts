// The Pulumi program of a ferry stack: program input -> ClusterStack.
// Run by ferry (every run builds the desired state once and hands it over in ferry:desiredState),
// or by hand: `pulumi up --stack <cluster>`, which builds it here with the same build phase.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ClusterStack } from "./components/cluster-stack";
import { deserializeProgramInput, PROGRAM_INPUT_KEY_ENV, ProgramInput } from "./src/desired-state/program-input";

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
  });
  // By hand, the program cannot leave a failed unit's objects alone (a plain update deletes whatever
  // it does not register): refuse, as a whole, what `ferry sync` would isolate.
  if (state.failed?.length) {
    const { DesiredStateError } = await import("./src/desired-state/manifest-error");
    throw new DesiredStateError(state.failed.flatMap((f) => f.errors));
  }
  return { state, adopt: {}, outputs: {} };
}

export = async (): Promise<Record<string, unknown>> => {
  const input = await programInput();
  const cluster = new ClusterStack("cluster", {
    state: input.state,
    adopt: input.adopt,
    kubeconfig: config.get("kubeconfig"),
    context: config.get("context"),
    clusterIdentifier: config.get("clusterIdentifier") ?? pulumi.getStack(),
  });
  // A rollback's pin travels in the outputs, so every ferry sharing the backend sees it.
  return { objectCount: cluster.objectCount, ...input.outputs };
};
