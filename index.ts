// The Pulumi program of a ferry stack: stack config -> desired state -> ClusterStack.
// Run by `ferry sync` through the Automation API (which renders the desired state once and hands
// it over in ferry:desiredState), or by hand: `pulumi up --stack <cluster>` (rendered here).
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ClusterStack } from "./components/cluster-stack";
import { DesiredState } from "./src/desired-state/desired-state";
import { loadConfigFolder } from "./src/desired-state/load-desired-state";
import { buildDesiredState, deserializeDesiredState } from "./src/render/build-desired-state";
import { localRenderTools } from "./src/render/render-tools";
import { cacheDir } from "./src/lib/paths";
import { defaultToolchainOptions, ensureToolchain } from "./src/toolchain/install";

const config = new pulumi.Config("ferry");

async function desiredState(): Promise<DesiredState> {
  const rendered = config.get("desiredState");
  if (rendered) return deserializeDesiredState(fs.readFileSync(rendered, "utf8"));
  const toolchain = await ensureToolchain(defaultToolchainOptions({ only: ["helm", "kubectl"], progress: (l) => void pulumi.log.info(l) }));
  const loaded = loadConfigFolder({ checkout: path.resolve(config.require("checkout")), path: config.require("path") });
  const tools = localRenderTools({
    helm: toolchain.bin("helm"),
    kubectl: toolchain.bin("kubectl"),
    kubeconfig: config.get("kubeconfig") ?? process.env.KUBECONFIG,
    context: config.get("context"),
    cacheDir: path.join(cacheDir(), "render"),
  });
  return buildDesiredState(loaded, tools, { allowEmpty: config.getBoolean("allowEmpty") ?? false });
}

export = async (): Promise<Record<string, unknown>> => {
  const cluster = new ClusterStack("cluster", {
    state: await desiredState(),
    kubeconfig: config.get("kubeconfig"),
    context: config.get("context"),
    clusterIdentifier: config.get("clusterIdentifier") ?? pulumi.getStack(),
  });
  // A rollback's pin travels in the state, so every ferry sharing the backend sees it.
  const pin = config.get("pin");
  return { objectCount: cluster.objectCount, ...(pin ? { pin: JSON.parse(pin) as unknown } : {}) };
};
