import * as fs from "node:fs";
import * as path from "node:path";
import { Command } from "commander";
import { devClusterDown, devClusterUp } from "../../devcluster/dev-cluster";
import { runChecked } from "../../lib/exec";
import { ferryRoot, stateDir } from "../../lib/paths";
import { initConfigRepo } from "../../source/config-repo-fixture";
import { resolveSyncSettings } from "../../reconcile/stack-settings";
import { runStack, syncBinaries } from "../../reconcile/run-stack";
import { COMPONENTS } from "../../toolchain/components";
import { defaultToolchainOptions, ensureToolchain } from "../../toolchain/install";
import { EXIT, styler } from "../output";
import { printResult, stderrProgress } from "./sync-command";

/** `ferry demo`: the whole loop on the embedded defaults, start to finish. */
export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "Run ferry on its embedded defaults: a local control plane, a local file backend and the example config repo; " +
        "sync, delete the Deployment with kubectl, sync again and show it restored",
    )
    .option("--keep", "leave the control plane running afterwards (stop it with `ferry dev cluster down --dir ...`)", false)
    .action(async (opts: { keep: boolean }) => {
      const s = styler(process.stderr);
      const say = (line: string): boolean => process.stderr.write(`\n${s.bold("==>")} ${s.bold(line)}\n`);
      const home = path.join(stateDir(), "demo");
      fs.rmSync(home, { recursive: true, force: true });
      const env = { ...process.env, FERRY_STATE_DIR: home };

      say("Toolchain (built from Go modules on the first run, cached afterwards)");
      const only = COMPONENTS.filter((c) => !c.testsOnly).map((c) => c.name);
      const toolchain = await ensureToolchain(defaultToolchainOptions({ only }));
      const kubectl = toolchain.bin("kubectl");

      say("Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)");
      const cluster = await devClusterUp({ dir: path.join(home, "cluster"), toolchain });
      process.stderr.write(`API at ${cluster.server}, kubeconfig ${cluster.kubeconfig}\n`);
      try {
        const k = (...args: string[]) => runChecked(kubectl, ["--kubeconfig", cluster.kubeconfig, ...args]);
        say("Committing examples/config-repo into a fresh git repository");
        const repo = await initConfigRepo(path.join(ferryRoot(), "examples", "config-repo"), path.join(home, "config-repo"));
        process.stderr.write(`config repo: ${repo}\n`);

        const settings = resolveSyncSettings({ stack: "dev", repo, path: "clusters/dev", kubeconfig: cluster.kubeconfig }, env);
        const runSync = async (): Promise<boolean> => {
          const result = await runStack(
            settings,
            { kind: "apply", run: "sync", scope: "full" },
            { ...syncBinaries(toolchain), progress: stderrProgress() },
          );
          printResult(result, false);
          return result.succeeded;
        };

        say("ferry sync: the cluster takes the state of clusters/dev");
        if (!(await runSync())) return void (process.exitCode = EXIT.failed);
        process.stderr.write((await k("get", "deployment,service,configmap", "-n", "demo")).stdout);

        say("Someone deletes the Deployment by hand: kubectl delete deployment web -n demo");
        process.stderr.write((await k("delete", "deployment", "web", "-n", "demo", "--wait=true")).stdout);
        process.stderr.write((await k("get", "deployments", "-n", "demo")).stderr || "(no deployments)\n");

        say("ferry sync again: drift is corrected");
        if (!(await runSync())) return void (process.exitCode = EXIT.failed);
        process.stderr.write((await k("get", "deployment", "web", "-n", "demo")).stdout);
        say(`Done. The update history: pulumi stack history (backend ${settings.backendUrl})`);
      } finally {
        if (!opts.keep) await devClusterDown(cluster.dir);
        else process.stderr.write(`control plane left running; stop it with: ferry dev cluster down --dir ${cluster.dir}\n`);
      }
    });
}
