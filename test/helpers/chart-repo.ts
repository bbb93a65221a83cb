import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { AddressInfo } from "node:net";
import { runChecked } from "../../src/lib/exec";
import { ferryRoot } from "../../src/lib/paths";

/** A real Helm chart repository (index.yaml + .tgz) served over HTTP on loopback. */
export interface ChartRepo {
  readonly url: string;
  /** Paths requested so far (to check what was fetched). */
  readonly requests: string[];
  close(): Promise<void>;
}

/**
 * Packages fixture charts (test/fixtures/charts/<name>) with `helm package`, indexes them with
 * `helm repo index`, and serves the folder on 127.0.0.1.
 */
export async function startChartRepo(helm: string, charts: readonly { name: string; version?: string }[]): Promise<ChartRepo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-charts-"));
  const repoDir = path.join(dir, "repo");
  fs.mkdirSync(repoDir);
  for (const c of charts) {
    const args = ["package", path.join(ferryRoot(), "test", "fixtures", "charts", c.name), "--destination", repoDir];
    if (c.version) args.push("--version", c.version);
    await runChecked(helm, args, {
      env: { ...process.env, HELM_CACHE_HOME: path.join(dir, "cache"), HELM_CONFIG_HOME: path.join(dir, "config") },
    });
  }
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const name = path.basename(decodeURIComponent((req.url ?? "/").split("?")[0]!));
    requests.push(req.url ?? "");
    const file = path.join(repoDir, name);
    if (!name || !fs.existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "Content-Type": name.endsWith(".yaml") ? "text/yaml" : "application/gzip" });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await runChecked(helm, ["repo", "index", repoDir, "--url", url]);
  return {
    url,
    requests,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
