// The stage every failure scenario plays on: the real operator process, the pod runner standing in
// for the kubelet, a contingency pool over the three zones with tenants holding every slot, and
// storage services whose head and servers run as real processes at their pod IPs.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { CLAIM_PLURAL, GROUP, STORAGE_SERVICE_PLURAL, VERSION } from "../../../src/api/index.ts";
import { mergePatchOptions, type KubeClient } from "../../../src/kube/client.ts";
import { isNotFound } from "../../../src/kube/errors.ts";
import { installCrds } from "../../support/crds.ts";
import { testPoolSelector, testRunLabel } from "../../support/pools.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  isNodeReady,
  restoreNode,
  testClient,
  testKubeConfig,
} from "../../support/kube.ts";
import type { ChildProcess } from "node:child_process";
import { startOperator } from "../../support/operator.ts";
import { PodRunner } from "../../support/pod-runner.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  deletePool,
  listClaims,
  poolManifest,
} from "../../support/pools.ts";
import type { ServiceObject } from "./traffic.ts";
import { Agent } from "undici";
import type { ClientOptions } from "../../../src/dataplane/client.ts";
import {
  clientSecretName,
  configKeys,
  headTlsServerName,
  tlsSecretName,
} from "../../../src/controllers/storage-service/names.ts";

/** TLS without checking the certificate: for liveness probes only, as the kubelet's. */
const unverifiedTls = new Agent({ connect: { rejectUnauthorized: false } });

export const ZONES = ["zone-a", "zone-b", "zone-c"] as const;
/** UNDERSTUDY_E2E_LONG=1 (npm run test:e2e): more runs, longer traffic. */
export const LONG = process.env.UNDERSTUDY_E2E_LONG === "1";
const REPO = join(import.meta.dirname, "../../..");
export const E2E_DIR = join(REPO, ".understudy", "e2e");

export interface StageOptions {
  prefix: string;
  /** Slots per zone in the pool; each is leased to a tenant claim (bids 10, 20, 30, ...). */
  slotsPerZone?: number;
  /** Extra env of the operator process (for instance UNDERSTUDY_CRASH_AT). */
  operatorEnv?: Record<string, string>;
  /**
   * Services with TLS required on every hop and client authentication required (client SECURE_CLIENT).
   * Default: UNDERSTUDY_E2E_SECURE=1 in the environment, so every failure scenario runs secured.
   */
  secure?: boolean;
}

/** Whether this run's scenarios secure their services (UNDERSTUDY_E2E_SECURE=1). */
export const secureByDefault = process.env.UNDERSTUDY_E2E_SECURE === "1";

/** The one client a secure stage's services list. */
export const SECURE_CLIENT = "e2e";

/** The operator as a real child process (`node src/operator/main.ts`): it can be killed and restarted. */
export interface ControlPlane {
  process: ChildProcess;
  exited: Promise<number | null>;
  logFile: string;
  stop(): Promise<number | null>;
}

/** Sub-second detection: the operator probes the head every 200 ms and gives up after 2 misses. */
const FAST_DETECTION = {
  probePeriodMilliseconds: 200,
  probeTimeoutMilliseconds: 150,
  failureThreshold: 2,
};

export class Stage {
  readonly client: KubeClient = testClient("understudy-e2e");
  readonly kc = testKubeConfig();
  readonly options: StageOptions;
  readonly pool: string;
  operatorNs = "";
  serviceNs = "";
  tenantNs = "";
  runner!: PodRunner;
  controllers!: ControlPlane;
  readonly #touchedNodes = new Set<string>();

  private constructor(options: StageOptions) {
    this.options = options;
    this.pool = `${options.prefix}-${Date.now().toString(36)}`;
  }

  static async create(options: StageOptions): Promise<Stage> {
    const stage = new Stage({ secure: secureByDefault, ...options });
    try {
      await stage.#setUp();
    } catch (err) {
      await stage.teardown().catch(() => undefined);
      throw err;
    }
    return stage;
  }

  async #setUp(): Promise<void> {
    await installCrds(this.kc);
    this.operatorNs = await freshNamespace(this.client, `${this.options.prefix}-op`);
    this.serviceNs = await freshNamespace(this.client, `${this.options.prefix}-svc`);
    this.tenantNs = await freshNamespace(this.client, `${this.options.prefix}-tenants`);
    this.runner = await PodRunner.start({
      kubeConfig: this.kc,
      namespaces: [this.serviceNs],
      root: join(E2E_DIR, this.serviceNs),
      extraEnv: { UNDERSTUDY_LOG_LEVEL: "info" },
    });
    await this.startControlPlane(this.options.operatorEnv);
    const slots = this.options.slotsPerZone ?? 1;
    await createPool(
      this.client,
      this.scoped(
        poolManifest(this.pool, {
          zones: Object.fromEntries(ZONES.map((z) => [z, slots])),
          allowedNamespaces: [this.tenantNs],
          emergencyGraceSeconds: 0,
        }),
      ),
    );
    // Tenants lease every slot, so a failover has to revoke one (lowest bid outside the failed zone).
    let bid = 10;
    for (const zone of ZONES) {
      for (let i = 0; i < slots; i++) {
        await createClaim(
          this.client,
          this.scoped(claimManifest(this.tenantNs, `tenant-${zone}-${i}`, this.pool, bid, { zone })),
        );
        bid += 10;
      }
    }
    await eventually(
      "every tenant claim Bound",
      async () => {
        const claims = await listClaims(this.client, this.tenantNs);
        return claims.length === slots * ZONES.length && claims.every((c) => c.status?.phase === "Bound");
      },
      120_000,
      250,
    );
  }

  /** Other engineers share the cluster: our objects carry a scope only our controllers act on. */
  scoped<T extends { metadata: Record<string, unknown> }>(manifest: T): T {
    const labels = (manifest.metadata.labels as Record<string, string> | undefined) ?? {};
    return {
      ...manifest,
      metadata: { ...manifest.metadata, labels: { ...labels, [testRunLabel]: this.pool } },
    };
  }

  async startControlPlane(env: Record<string, string> = {}): Promise<ControlPlane> {
    mkdirSync(E2E_DIR, { recursive: true });
    const operator = await startOperator({
      namespace: this.operatorNs,
      env: {
        UNDERSTUDY_POOL_SELECTOR: testPoolSelector(this.pool),
        // Short leader-election timings, so a restarted operator takes over in seconds.
        UNDERSTUDY_LEASE_DURATION: "3s",
        UNDERSTUDY_RENEW_DEADLINE: "2s",
        UNDERSTUDY_RETRY_PERIOD: "500ms",
        UNDERSTUDY_LOG_LEVEL: "info",
        ...env,
      },
    });
    this.controllers = { ...operator, stop: () => operator.stop() };
    return this.controllers;
  }

  serviceManifest(name: string, extra: { primaryZone?: string } = {}) {
    return {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "StorageService",
      metadata: { name, namespace: this.serviceNs },
      spec: {
        pool: this.pool,
        zones: [...ZONES],
        primaryZone: extra.primaryZone ?? "zone-a",
        replicationFactor: 3,
        head: { image: "understudy:dev", port: 7000 },
        servers: { image: "understudy:dev", port: 7001, replicasPerZone: 1, storage: { size: "1Gi" } },
        failureDetection: FAST_DETECTION,
        ...(this.options.secure
          ? {
              tls: { mode: "Required" },
              authentication: { mode: "Required", clients: [{ name: SECURE_CLIENT }] },
            }
          : {}),
      },
    };
  }

  /**
   * What a client of the service needs on a secure stage, read back from the Secrets the operator
   * issued: the CA, the head's certificate name, and the client's token. Nothing when not secure.
   */
  async security(name: string): Promise<Pick<ClientOptions, "tls" | "credentials"> | undefined> {
    if (!this.options.secure) return undefined;
    const read = async (secret: string, key: string) => {
      const s = await this.client.core.readNamespacedSecret({ name: secret, namespace: this.serviceNs });
      return Buffer.from(s.data![key]!, "base64").toString("utf8");
    };
    return {
      tls: {
        ca: await read(tlsSecretName(name), configKeys.caCert),
        serverName: headTlsServerName(name, this.serviceNs),
      },
      credentials: { token: await read(clientSecretName(name, SECURE_CLIENT), configKeys.token) },
    };
  }

  /** fetch options for a probe of a head (https unverified on a secure stage, as the kubelet probes). */
  probeUrl(url: string): { url: string; init: RequestInit } {
    if (!this.options.secure) return { url, init: {} };
    return { url: url.replace(/^http:/, "https:"), init: { dispatcher: unverifiedTls } as RequestInit };
  }

  /** Creates a storage service and waits until it is Ready and its head process listens. */
  async createService(name: string, extra: { primaryZone?: string } = {}): Promise<ServiceObject> {
    await this.client.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: STORAGE_SERVICE_PLURAL,
      namespace: this.serviceNs,
      body: this.scoped(this.serviceManifest(name, extra)),
    });
    const ready = await eventually(
      `storage service ${name} Ready with a head`,
      async () => {
        const svc = await this.getService(name);
        return svc.status?.phase === "Ready" && svc.status.head?.pod ? svc : undefined;
      },
      120_000,
      200,
    );
    await this.runner.waitForListening(ready.status!.head!.pod!, this.serviceNs, 60_000);
    return ready;
  }

  async getService(name: string): Promise<ServiceObject> {
    return (await this.client.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: STORAGE_SERVICE_PLURAL,
      namespace: this.serviceNs,
      name,
    })) as ServiceObject;
  }

  /** Waits until the service has completed a failover after `countBefore` and serves again. */
  async waitForFailover(name: string, countBefore: number, timeoutMs = 120_000): Promise<ServiceObject> {
    return eventually(
      `a completed failover of ${name}`,
      async () => {
        const svc = await this.getService(name);
        const done = (svc.status?.failoverCount ?? 0) > countBefore && svc.status?.lastFailover?.finishedAt;
        return done && !svc.status?.failover ? svc : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Remembers nodes a scenario made NotReady, to restore them however the test ends. */
  touched(node: string): void {
    this.#touchedNodes.add(node);
  }

  async restoreNodes(): Promise<void> {
    for (const node of this.#touchedNodes) {
      await restoreNode(this.client, node);
      await this.runner.reviveNode(node);
    }
    await eventually(
      "touched nodes Ready again",
      async () => {
        for (const node of this.#touchedNodes) {
          if (!isNodeReady(await this.client.core.readNode({ name: node }))) return false;
        }
        return true;
      },
      60_000,
    );
    this.#touchedNodes.clear();
  }

  async teardown(): Promise<void> {
    await this.restoreNodes().catch((err: unknown) => console.error(`restoring nodes: ${String(err)}`));
    // While the controllers still run: storage services, then claims (their finalizer releases the
    // slot), then the pool; what they do not finish in time is let go by hand, so nothing is stuck.
    if (this.serviceNs) await deleteAllAndWait(this.client, STORAGE_SERVICE_PLURAL, this.serviceNs);
    if (this.tenantNs) await deleteAllAndWait(this.client, CLAIM_PLURAL, this.tenantNs);
    await deletePool(this.client, this.pool);
    await this.controllers?.stop();
    await this.runner?.stop();
    for (const ns of [this.serviceNs, this.tenantNs, this.operatorNs])
      if (ns) await deleteNamespace(this.client, ns);
  }
}

/**
 * Deletes every object of a namespaced Understudy kind in `namespace` and waits until they are gone;
 * after `timeoutMs` it removes their finalizers, as an administrator would for a controller that is
 * not coming back.
 */
export async function deleteAllAndWait(
  client: KubeClient,
  plural: string,
  namespace: string,
  timeoutMs = 30_000,
): Promise<void> {
  const base = { group: GROUP, version: VERSION, plural, namespace };
  const list = async () =>
    ((await client.custom.listNamespacedCustomObject(base)) as { items: { metadata: { name: string } }[] })
      .items;
  try {
    await client.custom.deleteCollectionNamespacedCustomObject(base);
    await eventually(
      `every ${plural} in ${namespace} gone`,
      async () => (await list()).length === 0,
      timeoutMs,
      250,
    );
  } catch (err) {
    if (isNotFound(err)) return;
  }
  // Still there: let them go by hand, a few rounds in case the API server is slow to answer.
  for (let round = 0; round < 5; round++) {
    const left = await list().catch(() => undefined);
    if (left?.length === 0) return;
    for (let k = 0; k < (left ?? []).length; k += 20) {
      await Promise.all(
        left!
          .slice(k, k + 20)
          .map((item) =>
            client.custom
              .patchNamespacedCustomObject(
                { ...base, name: item.metadata.name, body: { metadata: { finalizers: null } } },
                mergePatchOptions,
              )
              .catch(() => undefined),
          ),
      );
    }
  }
}
