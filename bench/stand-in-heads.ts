// The scale benchmark's stand-in heads, in a process of their own: one HTTP listener per head pod
// of the namespace, at its IP and port, answering the operator's /healthz probe as that head would
// (with its identity), until its node is lost. It runs apart from the benchmark so that the
// benchmark's own work (creating thousands of objects, binding volumes, listing services) cannot
// delay an answer past the probe's timeout: a late answer is a failover the benchmark caused.
//
//   child = fork("bench/stand-in-heads.ts", [namespace]); then messages, see StandInMessage.
import type * as k8s from "@kubernetes/client-node";
import { createServer as createHttpServer, type Server } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { IDENTITY_HEADER, formatIdentity } from "../src/dataplane/identity.ts";
import { Informer } from "../src/kube/informer.ts";
import { core } from "../src/kube/resources.ts";
import { testKubeConfig } from "../test/support/kube.ts";

/** From the benchmark to the stand-ins. */
export type StandInRequest =
  /** The machines of these nodes are gone: their heads stop answering. */
  | { kind: "loseNodes"; nodes: string[] }
  /** Report the event-loop lag since the last report, and start a new period. */
  | { kind: "lag" };

/** From the stand-ins to the benchmark. */
export type StandInMessage =
  | { kind: "started" }
  /** Event-loop lag of the stand-ins' process, in ms, over the period just ended. */
  | { kind: "lag"; p99: number; max: number };

class StandInHeads {
  readonly #servers = new Map<string, Server>();
  readonly #down = new Set<string>();
  readonly #informer: Informer<k8s.V1Pod>;

  constructor(namespace: string) {
    this.#informer = new Informer<k8s.V1Pod>(testKubeConfig(), {
      resource: core.pods,
      namespace,
      labelSelector: "understudy.dev/role=head",
      resyncMs: 5_000,
      onError: () => undefined,
    });
    this.#informer.on(() => this.#sync());
  }

  async start(): Promise<void> {
    await this.#informer.start();
  }

  loseNodes(nodes: readonly string[]): void {
    for (const n of nodes) this.#down.add(n);
    this.#sync();
  }

  #sync(): void {
    const wanted = new Map<string, { ip: string; port: number; identity: string }>();
    for (const pod of this.#informer.list()) {
      const ip = pod.status?.podIP;
      if (!ip || pod.status?.phase !== "Running" || pod.metadata?.deletionTimestamp) continue;
      if (this.#down.has(pod.spec?.nodeName ?? "")) continue;
      const port = pod.spec!.containers[0]!.ports?.[0]?.containerPort ?? 7000;
      // Keyed by identity too: an address a deleted head held may come back for another head.
      const identity = headIdentity(pod);
      wanted.set(`${ip}:${port} ${identity}`, { ip, port, identity });
    }
    for (const [address, server] of this.#servers) {
      if (!wanted.has(address)) {
        server.close();
        server.closeAllConnections();
        this.#servers.delete(address);
      }
    }
    for (const [address, { ip, port, identity }] of wanted) {
      if (this.#servers.has(address)) continue;
      // The probe believes only an answer that names the head it meant (see src/dataplane/identity.ts).
      const server = createHttpServer((_req, res) => {
        res.writeHead(200, { "content-type": "application/json", [IDENTITY_HEADER]: identity });
        res.end('{"status":"ok","ready":true}');
      });
      // The address may still be held by the listener of the head that had it: try again shortly.
      server.on("error", () =>
        setTimeout(() => this.#servers.get(address) === server && server.listen(port, ip), 100),
      );
      server.listen(port, ip);
      this.#servers.set(address, server);
    }
  }
}

/** The identity a head process names in its answers, from what its pod hands it. */
function headIdentity(pod: k8s.V1Pod): string {
  const env = new Map(pod.spec!.containers[0]!.env?.map((e) => [e.name, e.value]));
  return formatIdentity({
    service: env.get("UNDERSTUDY_SERVICE_UID") ?? "",
    role: "head",
    pod: pod.metadata!.name!,
    epoch: Number(env.get("UNDERSTUDY_EPOCH")),
  });
}

const namespace = process.argv[2];
if (!namespace || !process.send) throw new Error("run by the scale benchmark: fork(this file, [namespace])");
const send = (message: StandInMessage) => process.send!(message);
const heads = new StandInHeads(namespace);
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
process.on("message", (request: StandInRequest) => {
  if (request.kind === "loseNodes") heads.loseNodes(request.nodes);
  else {
    send({ kind: "lag", p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 });
    loopDelay.reset();
  }
});
// The benchmark gone (ended or killed), the stand-ins go with it.
process.on("disconnect", () => process.exit(0));
await heads.start();
send({ kind: "started" });
