// Moving a running StorageService from plain HTTP to TLS, as docs/OPERATIONS.md tells: Permissive
// (servers roll, a switchover brings a TLS head), clients move to TLS, then Required (servers roll
// again, another switchover). Traffic runs throughout; each phase's history must be linearizable,
// and what the plain phase acknowledged must read back through the TLS-only head at the end.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serviceAnnotations } from "../../src/api/resources.ts";
import { configKeys, headTlsServerName, tlsSecretName } from "../../src/controllers/storage-service/names.ts";
import type { ClientOptions } from "../../src/dataplane/client.ts";
import { annotateService } from "../support/failover.ts";
import { eventually } from "../support/kube.ts";
import { Stage } from "./support/stage.ts";
import { HeadDirectory, Traffic } from "./support/traffic.ts";

const SERVICE = "move";
let stage: Stage;
beforeAll(async () => {
  // No operator is killed here: leader-election timings that ride out a loaded machine.
  stage = await Stage.create({
    prefix: "e2e-tls-move",
    operatorEnv: { UNDERSTUDY_LEASE_DURATION: "15s", UNDERSTUDY_RENEW_DEADLINE: "10s" },
  });
});
afterAll(async () => {
  await stage?.teardown();
});

async function patchSpec(spec: Record<string, unknown>): Promise<void> {
  await stage.client.mergePatch(
    {
      apiVersion: "understudy.dev/v1alpha1",
      kind: "StorageService",
      metadata: { name: SERVICE, namespace: stage.serviceNs },
    },
    { spec },
  );
}

/** Waits until every server pod runs with `mode` and its process is Ready. */
async function serversIn(mode: string): Promise<void> {
  await eventually(
    `every server rolled to TLS mode ${mode}`,
    async () => {
      const pods = (
        await stage.client.core.listNamespacedPod({
          namespace: stage.serviceNs,
          labelSelector: `understudy.dev/service=${SERVICE},understudy.dev/role=server`,
        })
      ).items.filter((p) => !p.metadata?.deletionTimestamp);
      const inMode = pods.filter(
        (p) =>
          p.spec!.containers[0]!.env?.find((e) => e.name === "UNDERSTUDY_TLS_MODE")?.value === mode &&
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      );
      return pods.length === 3 && inMode.length === 3;
    },
    240_000,
    500,
  );
}

async function switchover(): Promise<void> {
  const before = (await stage.getService(SERVICE)).status?.failoverCount ?? 0;
  await annotateService(stage.client, stage.serviceNs, SERVICE, {
    [serviceAnnotations.switchover]: new Date().toISOString(),
  });
  await stage.waitForFailover(SERVICE, before, 180_000);
}

const clients = (directory: HeadDirectory) =>
  Array.from({ length: 4 }, (_, i) => ({ resolve: directory.resolver("status"), label: `c${i}` }));

describe("moving a running storage service from plain HTTP to TLS", () => {
  it("loses no acknowledged write: Permissive, switchover, clients on TLS, Required, switchover", async () => {
    await stage.createService(SERVICE);
    // Detection is not under test here: a probe that rides out a loaded machine.
    await patchSpec({
      failover: { switchoverCooldownSeconds: 0 },
      failureDetection: { probePeriodMilliseconds: 1000, probeTimeoutMilliseconds: 900, failureThreshold: 5 },
    });
    const directory = await new HeadDirectory(stage.kc, stage.serviceNs, SERVICE).start();
    const plain = new Traffic({ clients: clients(directory), keyPrefix: "plain-", seed: 1 }).start();
    await sleep(2000);

    await patchSpec({ tls: { mode: "Permissive" } });
    await serversIn("permissive");
    await switchover();
    const ca = Buffer.from(
      (
        await stage.client.core.readNamespacedSecret({
          name: tlsSecretName(SERVICE),
          namespace: stage.serviceNs,
        })
      ).data![configKeys.caCert]!,
      "base64",
    ).toString("utf8");
    const security: Pick<ClientOptions, "tls"> = {
      tls: { ca, serverName: headTlsServerName(SERVICE, stage.serviceNs) },
    };
    // Clients move to TLS at their own pace: both kinds run for a while against the permissive head.
    const secure = new Traffic({ clients: clients(directory), keyPrefix: "tls-", seed: 2, security }).start();
    await sleep(2000);
    await plain.stop();
    await plain.finalReads(directory.resolver("status"));
    const plainVerdict = plain.check();
    expect(plainVerdict, "plain phase").toEqual({ result: "ok" });
    expect(plain.writeAcks.length).toBeGreaterThan(20);

    await patchSpec({ tls: { mode: "Required" } });
    await serversIn("required");
    await switchover();
    await sleep(2000);
    await secure.stop();
    await secure.finalReads(directory.resolver("status"));
    expect(secure.check(), "TLS phase").toEqual({ result: "ok" });
    expect(secure.writeAcks.length).toBeGreaterThan(20);

    // The plain phase's keys, read through the TLS-only head: still what that history allows.
    await plain.finalReads(directory.resolver("status"), security);
    expect(plain.check(), "plain phase, read back after Required").toEqual({ result: "ok" });
    const service = await stage.getService(SERVICE);
    expect((service.spec as { tls?: { mode?: string } }).tls?.mode).toBe("Required");
    expect(service.status?.failoverCount).toBeGreaterThanOrEqual(2);
  });
});
