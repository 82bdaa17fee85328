// The operator's HTTP endpoints: /healthz (the process is alive; the kubelet's liveness probe),
// /readyz (caches synced and leader election healthy; the readiness probe) and /metrics (Prometheus).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "./logger.ts";
import type { OperatorMetrics } from "./metrics.ts";

/** Named checks, each passing or not; ready when all pass. */
export type ReadinessChecks = Record<string, boolean>;

export interface HealthServerOptions {
  /** Undefined listens on every interface. */
  host?: string;
  /** 0 picks a free port; address() tells which. */
  port: number;
  metrics: OperatorMetrics;
  readiness: () => ReadinessChecks;
  log: Logger;
}

export class HealthServer {
  private readonly options: HealthServerOptions;
  private readonly server: Server;

  constructor(options: HealthServerOptions) {
    this.options = options;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        options.log.error({ err, path: req.url }, "health server request failed");
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off("error", reject);
        const address = this.address()!;
        this.options.log.info(
          { address: `${address.address}:${address.port}`, port: address.port },
          "health and metrics server listening",
        );
        resolve(address);
      });
    });
  }

  address(): AddressInfo | undefined {
    const address = this.server.address();
    return address && typeof address === "object" ? address : undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    switch (path) {
      case "/healthz":
      case "/livez":
        text(res, 200, "ok\n");
        return;
      case "/readyz": {
        const checks = this.options.readiness();
        const ready = Object.values(checks).every(Boolean);
        const lines = Object.entries(checks).map(
          ([name, ok]) => `[${ok ? "+" : "-"}]${name} ${ok ? "ok" : "failed"}`,
        );
        text(res, ready ? 200 : 503, `${lines.join("\n")}\nreadyz check ${ready ? "passed" : "failed"}\n`);
        return;
      }
      case "/metrics": {
        const { contentType, body } = await this.options.metrics.render();
        res.writeHead(200, { "content-type": contentType }).end(body);
        return;
      }
      default:
        text(res, 404, "not found\n");
    }
  }
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(body);
}
