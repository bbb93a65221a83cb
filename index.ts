// The Pulumi program of a ferry stack: stack config -> desired state -> ClusterStack.
// Run by `ferry sync` through the Automation API, or by hand: `pulumi up --stack <cluster>`.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ClusterStack } from "./components/cluster-stack";
import { loadDesiredState } from "./src/desired-state/load-desired-state";

const config = new pulumi.Config("ferry");
const state = loadDesiredState({
  checkout: path.resolve(config.require("checkout")),
  path: config.require("path"),
  allowEmpty: config.getBoolean("allowEmpty") ?? false,
});
const cluster = new ClusterStack("cluster", {
  state,
  kubeconfig: config.get("kubeconfig"),
  context: config.get("context"),
  clusterIdentifier: config.get("clusterIdentifier") ?? pulumi.getStack(),
});

export const objectCount = cluster.objectCount;
