// /metrics on a port of its own, so a NetworkPolicy can let a scraper reach the metrics without
// reaching the data (the data port serves /metrics too, to whoever may reach it anyway).
import { Admission, type ServingLimits } from "./admission.ts";
import { HttpError, sendError } from "./http-util.ts";
import type { Registry } from "./metrics.ts";

export interface MetricsListener {
  /** host:port actually bound. */
  readonly address: string;
  close(): Promise<void>;
}

/** Serves `registry` on `listen`; none when `listen` is unset. */
export async function listenForMetrics(
  listen: string | undefined,
  registry: Registry,
  limits: ServingLimits,
): Promise<MetricsListener | null> {
  if (listen === undefined) return null;
  const http = new Admission("metrics listener", limits).createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method !== "GET" || path !== "/metrics") {
      sendError(res, new HttpError(404, "not_found", "this port serves GET /metrics only"));
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(text);
      },
      (err: unknown) => sendError(res, new HttpError(500, "internal", (err as Error).message)),
    );
  });
  const address = await http.listen(listen);
  return {
    address,
    close: () => {
      const closed = http.close();
      http.closeAllConnections();
      return closed;
    },
  };
}
