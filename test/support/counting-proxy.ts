// A plain-HTTP front for the test cluster's API server that counts the requests going through it,
// by verb and resource: how many requests a controller makes, which the API server's own
// apiserver_request_total cannot tell apart by client.
import type * as k8s from "@kubernetes/client-node";
import { writeFileSync, readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testKubeConfig } from "./kube.ts";

/** verb and resource of an API request, e.g. "create pods", "watch leases", "patch storageservices/status". */
function classify(method: string, url: string): string {
  const [path, query = ""] = url.split("?") as [string, string?];
  const parts = path.split("/").filter(Boolean);
  let rest = parts[0] === "api" ? parts.slice(2) : parts[0] === "apis" ? parts.slice(3) : parts;
  if (rest[0] === "namespaces" && rest.length > 2) rest = rest.slice(2);
  const resource = rest[2] ? `${rest[0]}/${rest[2]}` : (rest[0] ?? "discovery");
  const item = rest.length > 1;
  const verb =
    method === "GET"
      ? /(^|&)watch=(true|1)/.test(query)
        ? "watch"
        : item
          ? "get"
          : "list"
      : ((
          {
            POST: "create",
            PUT: "update",
            PATCH: "patch",
            DELETE: item ? "delete" : "deletecollection",
          } as Record<string, string>
        )[method] ?? method.toLowerCase());
  return `${verb} ${resource}`;
}

/** A plain-HTTP front for the API server that counts what goes through it. */
export interface CountingProxy {
  url: string;
  /** Requests so far, by classify(). */
  counts: Map<string, number>;
  /** Milliseconds from each request to the end of its response, summed by classify(); watches left out. */
  latencyMs: Map<string, number>;
  /** A kubeconfig file that sends a client through the proxy with the test cluster's credentials. */
  kubeconfig(): string;
  close(): void;
}

/**
 * `counted` says which requests to count, by URL (all by default); every request is passed on.
 */
export async function countingProxy(
  kc: k8s.KubeConfig = testKubeConfig(),
  counted: (url: string) => boolean = () => true,
): Promise<CountingProxy> {
  const cluster = kc.getCurrentCluster()!;
  const upstream = new URL(cluster.server);
  const ca = cluster.caData
    ? Buffer.from(cluster.caData, "base64")
    : cluster.caFile
      ? readFileSync(cluster.caFile)
      : undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 512, ca });
  const counts = new Map<string, number>();
  const latencyMs = new Map<string, number>();
  const server = createHttpServer((req: IncomingMessage, res) => {
    const started = performance.now();
    if (counted(req.url ?? "/")) {
      const key = classify(req.method ?? "GET", req.url ?? "/");
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (!key.startsWith("watch "))
        res.on("finish", () => latencyMs.set(key, (latencyMs.get(key) ?? 0) + performance.now() - started));
    }
    const up = httpsRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        agent,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        // At once: a watch of a quiet resource sends no body for minutes, and a client that sees
        // no response headers in time (30 s for client-node's Watch) gives up and starts over.
        res.flushHeaders();
        upRes.pipe(res);
      },
    );
    up.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    counts,
    latencyMs,
    kubeconfig: () => proxiedKubeconfig(kc, url, port),
    close: () => server.close(),
  };
}

function proxiedKubeconfig(kc: k8s.KubeConfig, url: string, port: number): string {
  const user = kc.getCurrentUser()!;
  const file = join(tmpdir(), `understudy-proxy-${process.pid}-${port}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "proxied", cluster: { server: url, "insecure-skip-tls-verify": true } }],
      users: [{ name: "u", user: { token: user.token } }],
      contexts: [{ name: "proxied", context: { cluster: "proxied", user: "u" } }],
      "current-context": "proxied",
    }),
    { mode: 0o600 },
  );
  return file;
}
