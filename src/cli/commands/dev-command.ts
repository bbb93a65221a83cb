import * as fs from "node:fs";
import * as path from "node:path";
import { Command } from "commander";
import {
  CONTROL_PLANE_BINARIES,
  defaultDevClusterDir,
  devClusterDown,
  devClusterUp,
  readDevClusterState,
} from "../../devcluster/dev-cluster";
import { stateDir } from "../../lib/paths";
import { defaultToolchainOptions, ensureToolchain } from "../../toolchain/install";

/** `ferry dev cluster up|down|kubeconfig`: the embedded local control plane. */
export function devCommand(): Command {
  const dev = new Command("dev").description("Local development helpers");
  const cluster = dev
    .command("cluster")
    .description("A local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok fake nodes) on 127.0.0.1");
  const dirOption = (c: Command): Command =>
    c.option("--dir <dir>", "folder of the cluster's data, keys and logs", defaultDevClusterDir(stateDir()));
  dirOption(cluster.command("up"))
    .description("Start the control plane (or return the running one) and print its kubeconfig path")
    .option("--nodes <n>", "number of kwok fake nodes", "1")
    .action(async (opts: { dir: string; nodes: string }) => {
      const only = ["etcd", "kwok", "kubernetes", "kubectl"];
      const toolchain = await ensureToolchain(defaultToolchainOptions({ only }));
      process.stderr.write(`starting ${CONTROL_PLANE_BINARIES.slice(0, 5).join(", ")}...\n`);
      const c = await devClusterUp({ dir: opts.dir, toolchain, nodes: Number(opts.nodes) });
      process.stderr.write(`control plane ready at ${c.server}; use it with: export KUBECONFIG=${c.kubeconfig}\n`);
      process.stdout.write(`${c.kubeconfig}\n`);
    });
  dirOption(cluster.command("down"))
    .description("Stop the control plane; no process is left behind (data is kept unless --purge)")
    .option("--purge", "also delete the cluster's data (etcd, keys, logs)", false)
    .action(async (opts: { dir: string; purge: boolean }) => {
      await devClusterDown(opts.dir);
      if (opts.purge) fs.rmSync(opts.dir, { recursive: true, force: true });
      process.stderr.write(`control plane in ${opts.dir} stopped${opts.purge ? " and its data deleted" : ""}\n`);
    });
  dirOption(cluster.command("kubeconfig"))
    .description("Print the path of the running control plane's kubeconfig")
    .action((opts: { dir: string }) => {
      const s = readDevClusterState(opts.dir);
      if (!s?.ready || !s.kubeconfig)
        throw new Error(`no control plane is running in ${opts.dir}; start one with \`ferry dev cluster up\``);
      process.stdout.write(`${path.resolve(s.kubeconfig)}\n`);
    });
  return dev;
}
