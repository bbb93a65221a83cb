import { spawn } from "node:child_process";
import * as http from "node:http";
import { AddressInfo } from "node:net";

/** One request a recording server received. */
export interface RecordedHttpRequest {
  readonly method: string;
  /** Path with query. */
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** An HTTP server on loopback that records every request it gets. */
export interface RecordingServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly requests: RecordedHttpRequest[];
  close(): Promise<void>;
}

async function listen(handler: http.RequestListener, requests: RecordedHttpRequest[]): Promise<RecordingServer> {
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Git's smart HTTP protocol on 127.0.0.1: `git http-backend` run as a CGI program for each request,
 * serving every repository below `root` (`<url>/<folder>`), read-only. Records every request with
 * its headers, so a test can tell which credentials a client sent.
 */
export function startGitHttpServer(root: string): Promise<RecordingServer> {
  const requests: RecordedHttpRequest[] = [];
  return listen((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      GIT_CONFIG_NOSYSTEM: "1",
      REQUEST_METHOD: req.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ""),
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_ADDR: "127.0.0.1",
      ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"]) } : {}),
      ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
    };
    const cgi = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "ignore"] });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersSent = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersSent) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n") >= 0 ? head.indexOf("\r\n\r\n") : head.indexOf("\n\n");
      if (end < 0) return;
      const sep = head.indexOf("\r\n\r\n") >= 0 ? 4 : 2;
      let status = 200;
      for (const line of head.subarray(0, end).toString("utf8").split(/\r?\n/)) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      headersSent = true;
      res.write(head.subarray(end + sep));
    });
    cgi.on("close", () => {
      if (!headersSent) res.writeHead(500);
      res.end();
    });
    cgi.on("error", () => {
      if (!headersSent) res.writeHead(500);
      res.end();
    });
  }, requests);
}

/** An HTTP server on 127.0.0.1 that answers every request with 404 and records it: an attacker's host, or a metadata service. */
export function startRecordingServer(): Promise<RecordingServer> {
  const requests: RecordedHttpRequest[] = [];
  return listen((_req, res) => res.writeHead(404).end("not found"), requests);
}
