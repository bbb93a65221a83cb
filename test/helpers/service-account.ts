import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { E2E } from "./e2e";

/** A kubeconfig that authenticates as a pod's ServiceAccount: a bound token, read from a file. */
export async function serviceAccountKubeconfig(e: E2E, account: string, namespace: string, dir: string): Promise<string> {
  const admin = yaml.load(fs.readFileSync(e.cluster.kubeconfig, "utf8")) as { clusters: { cluster: Record<string, unknown> }[] };
  const tokenFile = path.join(dir, `${account}.token`);
  fs.writeFileSync(tokenFile, (await e.kubectl("create", "token", account, "-n", namespace, "--duration", "2h")).trim(), { mode: 0o600 });
  const file = path.join(dir, `${account}.kubeconfig`);
  fs.writeFileSync(
    file,
    yaml.dump({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "local", cluster: admin.clusters[0]!.cluster }],
      users: [{ name: account, user: { tokenFile } }],
      contexts: [{ name: "local", context: { cluster: "local", user: account, namespace } }],
      "current-context": "local",
    }),
  );
  return file;
}
