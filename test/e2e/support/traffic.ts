// Client traffic for the failure scenarios: several clients of the real client library write, read
// and compare-and-set a few hot keys through whichever head they resolve, and every operation is
// recorded as the history the linearizability checker reads. Clients find the head as real ones
// would: through StorageService.status.head (its pod's IP), or through the head Service's endpoints;
// "pinned" clients keep talking to one head whatever happens (split brain).
//
// The head Service's endpoints: the API server refuses loopback addresses in EndpointSlices ("may
// not be in the loopback range"), and KWOK's pod IPs are loopback ones, so the test cluster's
// EndpointSlices stay empty. The directory computes what the EndpointSlice controller would
// publish instead: the ready, non-terminating pods the Service's selector matches.
import type * as k8s from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { GROUP, STORAGE_SERVICE_KIND, STORAGE_SERVICE_PLURAL, VERSION } from "../../../src/api/index.ts";
import {
  createClient,
  type ClientOptions,
  type HeadResolver,
  type HeadTarget,
} from "../../../src/dataplane/client.ts";
import { checkOperations, type CheckResult } from "../../../src/dataplane/linearizability.ts";
import {
  kvModel,
  type KvInput,
  type KvOperation,
  type KvOutput,
} from "../../../src/dataplane/register-model.ts";
import { Informer } from "../../../src/kube/informer.ts";
import { core } from "../../../src/kube/resources.ts";
import { recordOperation, viaClient, type KvResult } from "../../support/kv-history.ts";
import { seededRandom } from "../../support/random.ts";

export const storageServices = {
  group: GROUP,
  version: VERSION,
  plural: STORAGE_SERVICE_PLURAL,
  kind: STORAGE_SERVICE_KIND,
  namespaced: true,
} as const;

export interface ServiceObject extends k8s.KubernetesObject {
  spec: { head: { port: number } };
  status?: {
    phase?: string;
    epoch?: number;
    head?: { pod?: string; node?: string; zone?: string; epoch?: number };
    failover?: { step?: string; startedAt?: string };
    lastFailover?: LastFailoverRecord;
    failoverCount?: number;
  };
}

export interface LastFailoverRecord {
  startedAt: string;
  finishedAt?: string;
  durationMilliseconds?: number;
  reason?: string;
  fromPod?: string;
  fromNode?: string;
  fromZone?: string;
  toZone?: string;
  toNode?: string;
  epoch?: number;
  headPod?: string;
  revokedClaim?: string;
  timeline?: { step: string; at: string }[];
}

/** Where the head of one storage service is, seen through informers (no API call per lookup). */
export class HeadDirectory {
  readonly services: Informer<ServiceObject>;
  readonly pods: Informer<k8s.V1Pod>;
  readonly kubeServices: Informer<k8s.V1Service>;
  readonly namespace: string;
  readonly service: string;

  constructor(kc: k8s.KubeConfig, namespace: string, service: string) {
    this.namespace = namespace;
    this.service = service;
    this.services = new Informer<ServiceObject>(kc, {
      resource: storageServices,
      namespace,
      maxBackoffMs: 500,
    });
    this.pods = new Informer<k8s.V1Pod>(kc, { resource: core.pods, namespace, maxBackoffMs: 500 });
    this.kubeServices = new Informer<k8s.V1Service>(kc, {
      resource: core.services,
      namespace,
      fieldSelector: `metadata.name=${service}-head`,
      maxBackoffMs: 500,
    });
  }

  async start(): Promise<this> {
    await Promise.all([this.services.start(), this.pods.start(), this.kubeServices.start()]);
    return this;
  }

  stop(): void {
    for (const i of [this.services, this.pods, this.kubeServices]) i.stop();
  }

  object(): ServiceObject | undefined {
    return this.services.get(this.service, this.namespace);
  }

  /** The head named in the service's status, at its pod's IP. */
  fromStatus(): string | undefined {
    return this.targetFromStatus()?.url;
  }

  /** The head Service's ready endpoint, as the EndpointSlice controller would publish it. */
  fromEndpoints(): string | undefined {
    return this.targetFromEndpoints()?.url;
  }

  /** The head named in status, and whom to expect there: this service (by UID) and that pod. */
  targetFromStatus(): HeadTarget | undefined {
    const svc = this.object();
    const pod = svc?.status?.head?.pod ? this.pods.get(svc.status.head.pod, this.namespace) : undefined;
    const ip = pod?.status?.podIP;
    if (!ip || !svc) return undefined;
    return this.#target(`http://${ip}:${svc.spec.head.port}`, pod.metadata!.name!);
  }

  #target(url: string, pod: string): HeadTarget {
    const uid = this.object()?.metadata?.uid;
    return uid ? { url, pod, serviceUid: uid } : { url, pod };
  }

  /** The endpoint as an EndpointSlice would name it: its address and its pod (targetRef). */
  targetFromEndpoints(): HeadTarget | undefined {
    const svc = this.kubeServices.get(`${this.service}-head`, this.namespace);
    const selector = Object.entries(svc?.spec?.selector ?? {});
    const port = svc?.spec?.ports?.[0]?.targetPort ?? svc?.spec?.ports?.[0]?.port;
    if (selector.length === 0 || port === undefined) return undefined;
    const ready = this.pods
      .list()
      .filter(
        (p) =>
          selector.every(([k, v]) => p.metadata?.labels?.[k] === v) &&
          !p.metadata?.deletionTimestamp &&
          p.status?.podIP &&
          p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      )
      .sort((a, b) =>
        String(b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp)),
      );
    return ready[0]
      ? this.#target(`http://${ready[0].status!.podIP}:${port}`, ready[0].metadata!.name!)
      : undefined;
  }

  resolver(kind: "status" | "endpoints"): HeadResolver {
    return async () => {
      const target = kind === "status" ? this.targetFromStatus() : this.targetFromEndpoints();
      if (target === undefined) throw new Error(`no head known yet (${kind})`);
      return target;
    };
  }
}

export interface ClientSpec {
  /** How this client finds the head; a fixed URL pins it to one head. */
  resolve: HeadResolver;
  label: string;
  /** Attempts per operation (default 400: retry through a whole failover). */
  maxAttempts?: number;
}

export interface TrafficOptions {
  clients: ClientSpec[];
  keys?: number;
  /** Keys are <prefix><n>; the checker assumes they start absent, so each history needs fresh ones. */
  keyPrefix?: string;
  seed?: number;
  /** Pause between one client's operations. */
  thinkMs?: number;
  /** TLS and credentials every client uses (a service with spec.tls and spec.authentication on). */
  security?: Pick<ClientOptions, "tls" | "credentials">;
}

export interface WriteAck {
  clientId: number;
  label: string;
  call: number;
  ret: number;
}

/** Wall-clock milliseconds of a performance.now() reading, to line history up with status times. */
export const wallClock = (t: number) => performance.timeOrigin + t;

/** The workload: runs until stop(); the history and the acknowledged writes are kept. */
export class Traffic {
  readonly history: KvOperation[] = [];
  readonly writeAcks: WriteAck[] = [];
  readonly outcomes = new Map<string, number>();
  readonly #options: TrafficOptions;
  readonly #keys: string[];
  #running: Promise<void>[] = [];
  #stopped = false;
  #value = 0;

  constructor(options: TrafficOptions) {
    this.#options = options;
    this.#keys = Array.from({ length: options.keys ?? 6 }, (_, i) => `${options.keyPrefix ?? "key-"}${i}`);
  }

  start(): this {
    this.#running = this.#options.clients.map((spec, id) => this.#client(id, spec));
    return this;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#running);
  }

  #count(label: string, what: string): void {
    const key = `${label}:${what}`;
    this.outcomes.set(key, (this.outcomes.get(key) ?? 0) + 1);
  }

  async #client(id: number, spec: ClientSpec): Promise<void> {
    const random = seededRandom((this.#options.seed ?? 1) * 1000 + id);
    const client = createClient({
      resolveHead: spec.resolve,
      // Keep retrying what is known not applied through a whole failover; give up a write's
      // fate only when it may have been applied.
      maxAttempts: spec.maxAttempts ?? 400,
      initialBackoffMs: 5,
      maxBackoffMs: 100,
      requestTimeoutMs: 3_000,
      random,
      ...this.#options.security,
    });
    const seen = new Map<string, number>();
    while (!this.#stopped) {
      const key = this.#keys[Math.floor(random() * this.#keys.length)]!;
      const roll = random();
      const input: KvInput =
        roll < 0.35
          ? { kind: "get", key }
          : roll < 0.7
            ? { kind: "put", key, value: `c${id}-${this.#value++}` }
            : roll < 0.75
              ? { kind: "delete", key }
              : { kind: "cas", key, expectedVersion: seen.get(key) ?? 0, value: `c${id}-${this.#value++}` };
      const out = await this.record(id, input, () => viaClient(client, input), spec.label);
      if (out !== null) seen.set(key, out.version);
      await sleep(this.#options.thinkMs ?? 3);
    }
  }

  async record(
    clientId: number,
    input: KvInput,
    run: () => Promise<KvResult>,
    label = "client",
  ): Promise<KvOutput | null> {
    const { result, call, ret } = await recordOperation(this.history, clientId, input, run);
    this.#count(label, `${input.kind}:${typeof result === "string" ? result : "ok"}`);
    if (typeof result === "string") return null;
    if (input.kind !== "get" && !(result.kind === "cas" && !result.ok))
      this.writeAcks.push({ clientId, label, call, ret });
    return result;
  }

  /**
   * Reads every key once through `client` (after the failover: what was acknowledged must be there);
   * `security` for a head that now wants other credentials than the traffic had.
   */
  async finalReads(resolve: HeadResolver, security = this.#options.security): Promise<void> {
    const client = createClient({
      resolveHead: resolve,
      maxAttempts: 100,
      maxBackoffMs: 200,
      ...security,
    });
    for (const key of this.#keys) {
      await this.record(1000, { kind: "get", key }, () => viaClient(client, { kind: "get", key }), "final");
    }
  }

  check(): CheckResult {
    return checkOperations(kvModel, this.history);
  }
}

/**
 * Write unavailability seen by clients around a failure at `faultAt` (performance.now() time): the
 * longest stretch without an acknowledged write, among the stretches that end after the fault.
 */
export function writeUnavailability(
  acks: readonly WriteAck[],
  faultAt: number,
): { gapMs: number; from: number; to: number } {
  const times = acks.map((a) => a.ret).sort((a, b) => a - b);
  let best = { gapMs: 0, from: faultAt, to: faultAt };
  let previous = times.filter((t) => t <= faultAt).at(-1) ?? faultAt;
  for (const t of times.filter((x) => x > faultAt)) {
    if (t - previous > best.gapMs) best = { gapMs: t - previous, from: previous, to: t };
    previous = t;
  }
  return best;
}
