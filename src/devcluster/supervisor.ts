// The supervisor of a local control plane: started detached by `devClusterUp`, it owns the
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok processes, reports
// through <dir>/state.json, and stops them all on SIGTERM/SIGINT, when one of them dies, or when
// the owner process (a test run) is gone.
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as http from "node:http";
import * as path from "node:path";
import { runChecked } from "../lib/exec";
import { freePort, pollUntil } from "../lib/net";
import { isProcessAlive } from "../lib/process-alive";
import { DevClusterState } from "./dev-cluster";
import { generateClusterSecrets } from "./pki";

interface ClusterConfig {
  readonly ports: { readonly etcd: number; readonly etcdPeer: number; readonly apiserver: number };
  readonly adminToken: string;
}

const dir = path.resolve(process.argv[2] ?? ".");
const bins = JSON.parse(process.env.FERRY_DEV_BINS ?? "{}") as Record<string, string>;
const nodeCount = Number(process.env.FERRY_DEV_NODES || "1");
const ownerPid = Number(process.env.FERRY_DEV_OWNER_PID || "0");
const apiServerFlags = JSON.parse(process.env.FERRY_DEV_APISERVER_FLAGS || "[]") as string[];
const children = new Map<string, ChildProcess>();
let stopping = false;

const pki = path.join(dir, "pki");
const kubeconfigPath = path.join(dir, "kubeconfig");

function writeState(s: Omit<DevClusterState, "supervisorPid" | "pids">): void {
  const pids = Object.fromEntries([...children].flatMap(([n, c]) => (c.pid ? [[n, c.pid]] : [])));
  const tmp = path.join(dir, "state.json.tmp");
  fs.writeFileSync(tmp, JSON.stringify({ supervisorPid: process.pid, pids, ...s }, null, 2));
  fs.renameSync(tmp, path.join(dir, "state.json"));
}

async function loadConfig(): Promise<ClusterConfig> {
  fs.mkdirSync(pki, { recursive: true, mode: 0o700 });
  const file = path.join(dir, "config.json");
  let config: ClusterConfig;
  if (fs.existsSync(file)) {
    config = JSON.parse(fs.readFileSync(file, "utf8")) as ClusterConfig;
  } else {
    const secrets = generateClusterSecrets();
    fs.writeFileSync(path.join(pki, "sa.key"), secrets.serviceAccountKey, { mode: 0o600 });
    fs.writeFileSync(path.join(pki, "sa.pub"), secrets.serviceAccountPub);
    config = { ports: { etcd: 0, etcdPeer: 0, apiserver: 0 }, adminToken: secrets.adminToken };
  }
  // Same keys and token on every start (same identity); ports are taken fresh when busy.
  const ports = {
    etcd: await keepOrFree(config.ports.etcd),
    etcdPeer: await keepOrFree(config.ports.etcdPeer),
    apiserver: await keepOrFree(config.ports.apiserver),
  };
  config = { ...config, ports };
  fs.writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  fs.writeFileSync(path.join(pki, "tokens.csv"), `${config.adminToken},ferry-admin,ferry-admin,"system:masters"\n`, { mode: 0o600 });
  return config;
}

async function keepOrFree(port: number): Promise<number> {
  if (port > 0 && (await isFree(port))) return port;
  return freePort();
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = http.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

function start(name: string, args: string[]): ChildProcess {
  const bin = bins[name];
  if (!bin) throw new Error(`no binary for ${name}`);
  const log = fs.openSync(path.join(dir, "logs", `${name}.log`), "a");
  const child = spawn(bin, args, { stdio: ["ignore", log, log] });
  fs.closeSync(log);
  children.set(name, child);
  child.on("error", (err) => {
    writeState({ ready: false, error: `cannot start ${name} (${bin}): ${err.message}` });
    void stop(1);
  });
  child.on("exit", (code, sig) => {
    if (!stopping) {
      console.error(`${name} exited unexpectedly (code ${code}, signal ${sig}); stopping the control plane`);
      writeState({ ready: false, error: `${name} exited unexpectedly (code ${code}, signal ${sig}); see logs/${name}.log` });
      void stop(1);
    }
  });
  return child;
}

function get(url: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith("https:") ? https : http;
    const req = mod.get(
      url,
      { headers: token ? { Authorization: `Bearer ${token}` } : {}, rejectUnauthorized: false, timeout: 5000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

function kubeconfig(server: string, caFile: string, token: string): string {
  const ca = fs.readFileSync(caFile).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: ferry-dev",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    "users:",
    "- name: ferry-admin",
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: ferry-dev",
    "  context:",
    "    cluster: ferry-dev",
    "    user: ferry-admin",
    "current-context: ferry-dev",
    "",
  ].join("\n");
}

function fakeNode(name: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { "node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake" },
      labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", type: "kwok" },
    },
    status: {
      allocatable: { cpu: "32", memory: "256Gi", pods: "1000" },
      capacity: { cpu: "32", memory: "256Gi", pods: "1000" },
    },
  });
}

async function main(): Promise<void> {
  fs.mkdirSync(path.join(dir, "logs"), { recursive: true });
  const config = await loadConfig();
  const { etcd, etcdPeer, apiserver } = config.ports;
  writeState({ ready: false });

  // 1. etcd, with its data in a folder of its own.
  start("etcd", [
    "--name=ferry",
    `--data-dir=${path.join(dir, "etcd")}`,
    `--listen-client-urls=http://127.0.0.1:${etcd}`,
    `--advertise-client-urls=http://127.0.0.1:${etcd}`,
    `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
    `--initial-cluster=ferry=http://127.0.0.1:${etcdPeer}`,
    "--unsafe-no-fsync",
    "--log-level=warn",
  ]);
  await pollUntil("etcd", async () => ((await get(`http://127.0.0.1:${etcd}/health`)).status === 200 ? true : undefined), {
    timeoutMs: 30_000,
  });

  // 2. kube-apiserver: TLS (self-signed serving cert), a token-authenticated admin, RBAC.
  start("kube-apiserver", [
    `--etcd-servers=http://127.0.0.1:${etcd}`,
    `--cert-dir=${path.join(pki, "apiserver")}`,
    `--secure-port=${apiserver}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    "--service-cluster-ip-range=10.96.0.0/16",
    "--allow-privileged=true",
    "--authorization-mode=RBAC",
    `--token-auth-file=${path.join(pki, "tokens.csv")}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${path.join(pki, "sa.pub")}`,
    `--service-account-signing-key-file=${path.join(pki, "sa.key")}`,
    "--enable-priority-and-fairness=false",
    "--endpoint-reconciler-type=none",
    "--profiling=false",
    ...apiServerFlags,
  ]);
  const server = `https://127.0.0.1:${apiserver}`;
  await pollUntil(
    "kube-apiserver /readyz",
    async () => ((await get(`${server}/readyz`, config.adminToken)).status === 200 ? true : undefined),
    { timeoutMs: 60_000 },
  );
  fs.writeFileSync(kubeconfigPath, kubeconfig(server, path.join(pki, "apiserver", "apiserver.crt"), config.adminToken), {
    mode: 0o600,
  });

  // 3. Controllers, scheduler and kwok, all as the admin.
  start("kube-controller-manager", [
    `--kubeconfig=${kubeconfigPath}`,
    `--authentication-kubeconfig=${kubeconfigPath}`,
    `--authorization-kubeconfig=${kubeconfigPath}`,
    "--leader-elect=false",
    "--secure-port=0",
    `--service-account-private-key-file=${path.join(pki, "sa.key")}`,
    `--root-ca-file=${path.join(pki, "apiserver", "apiserver.crt")}`,
    "--use-service-account-credentials=false",
    "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-persistentvolume-binder,-attachdetach,-ttl",
    "--concurrent-deployment-syncs=10",
    "--concurrent-replicaset-syncs=10",
  ]);
  start("kube-scheduler", [
    `--kubeconfig=${kubeconfigPath}`,
    `--authentication-kubeconfig=${kubeconfigPath}`,
    `--authorization-kubeconfig=${kubeconfigPath}`,
    "--leader-elect=false",
    "--secure-port=0",
  ]);
  // Stage configs installed beside the kwok binary by the toolchain (node Ready, pods Running/deleted).
  const stagesDir = path.join(path.dirname(bins.kwok ?? ""), "..", "stages");
  const stages = fs.existsSync(stagesDir) ? fs.readdirSync(stagesDir).map((f) => `--config=${path.join(stagesDir, f)}`) : [];
  start("kwok", [
    ...stages,
    `--kubeconfig=${kubeconfigPath}`,
    "--manage-all-nodes=false",
    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
    "--cidr=10.244.0.0/16",
    "--node-ip=10.242.0.1",
    "--server-address=",
  ]);

  // 4. Fake nodes, Ready through kwok; pods scheduled on them become Running.
  const kubectl = bins.kubectl!;
  for (let i = 0; i < nodeCount; i++) {
    const name = `ferry-node-${i}`;
    await runChecked(kubectl, ["--kubeconfig", kubeconfigPath, "apply", "--validate=false", "-f", "-"], { input: fakeNode(name) });
    // The API server taints new nodes not-ready; the node lifecycle controller, which would lift it,
    // is off (kwok sends no heartbeats), so lift it here. Idempotent on a restart.
    await runChecked(kubectl, [
      "--kubeconfig",
      kubeconfigPath,
      "patch",
      "node",
      name,
      "--type=json",
      "-p",
      '[{"op":"replace","path":"/spec/taints","value":[]}]',
    ]);
  }
  await pollUntil(
    "the fake nodes to be Ready",
    async () => {
      const out = await runChecked(kubectl, [
        "--kubeconfig",
        kubeconfigPath,
        "get",
        "nodes",
        "-o",
        'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
      ]);
      const ready = out.stdout.split("\n").filter((l) => l === "True").length;
      return ready >= nodeCount ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  // The service-account controller must be working before anything creates pods.
  await pollUntil(
    "the default ServiceAccount",
    async () =>
      (await get(`${server}/api/v1/namespaces/default/serviceaccounts/default`, config.adminToken)).status === 200 ? true : undefined,
    { timeoutMs: 60_000 },
  );
  writeState({ ready: true, server, kubeconfig: kubeconfigPath });
  console.error(`control plane ready at ${server}`);

  if (ownerPid) {
    setInterval(() => {
      if (!isProcessAlive(ownerPid)) {
        console.error(`owner process ${ownerPid} is gone; stopping the control plane`);
        void stop(0);
      }
    }, 1000).unref();
  }
  // Keep the event loop alive while the children run.
  setInterval(() => undefined, 60_000);
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Reverse start order: kwok and controllers first, etcd last.
  for (const name of ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]) {
    const child = children.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) continue;
    child.kill("SIGTERM");
    const exited = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 5000);
      child.once("exit", () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!exited) child.kill("SIGKILL");
  }
  process.exit(code);
}

process.on("SIGTERM", () => void stop(0));
process.on("SIGINT", () => void stop(0));
process.on("SIGHUP", () => void stop(0));

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  console.error(`control plane failed to start: ${message}`);
  writeState({ ready: false, error: message });
  void stop(1);
});
