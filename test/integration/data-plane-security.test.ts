// A StorageService with TLS required on every hop and client authentication required, run by the
// real operator, its head and servers as real processes (the pod runner). What the operator issued
// is read back from the API server; what the data plane refuses is shown to have written nothing.
import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GROUP, STORAGE_SERVICE_PLURAL, VERSION } from "../../src/api/index.ts";
import {
  caSecretName,
  clientDigestsSecretName,
  clientSecretName,
  configKeys,
  headTlsServerName,
  servingDnsNames,
  tlsSecretName,
} from "../../src/controllers/storage-service/names.ts";
import { tokenDigest } from "../../src/dataplane/client-auth.ts";
import { createClient, DataplaneError, type DataplaneClient } from "../../src/dataplane/client.ts";
import { epochOfVersion } from "../../src/dataplane/record.ts";
import { PATHS } from "../../src/dataplane/wire.ts";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { certificateInfo, createCa, signedBy } from "../../src/pki/certificates.ts";
import { installCrds } from "../support/crds.ts";
import { createScopedClaim, createScopedPool, createService, getService } from "../support/failover.ts";
import { deleteNamespace, eventually, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { PodRunner } from "../support/pod-runner.ts";
import { deletePool, testPoolSelector } from "../support/pools.ts";
import { Agent } from "undici";

const client = testClient();
const run = Date.now().toString(36);
const scope = `dpsec-${run}`;
const pool = `dpsec-${run}`;
const SERVICE = "kv";
let operator: OperatorProcess;
let runner: PodRunner;
let opNs: string;
let ns: string;
const clients: DataplaneClient[] = [];

async function secretData(name: string): Promise<Record<string, string>> {
  const secret = await client.core.readNamespacedSecret({ name, namespace: ns });
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
}

async function headUrl(): Promise<string> {
  const svc = await getService(client, ns, SERVICE);
  const pod = await client.core.readNamespacedPod({ name: svc.status!.head!.pod!, namespace: ns });
  return `http://${pod.status!.podIP}:7000`;
}

async function dataClient(options: { token?: string; ca?: string }): Promise<DataplaneClient> {
  const url = await headUrl();
  const c = createClient({
    resolveHead: () => Promise.resolve(url),
    maxAttempts: 3,
    initialBackoffMs: 20,
    ...(options.ca !== undefined
      ? { tls: { ca: options.ca, serverName: headTlsServerName(SERVICE, ns) } }
      : {}),
    ...(options.token !== undefined ? { credentials: { token: options.token } } : {}),
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "dpsec-op");
  ns = await freshNamespace(client, "dpsec");
  runner = await PodRunner.start({ kubeConfig: testKubeConfig(), namespaces: [ns] });
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(scope) });
  await createScopedPool(client, pool, scope, {
    zones: { "zone-a": 1, "zone-b": 1, "zone-c": 1 },
    allowedNamespaces: [ns],
  });
  await createScopedClaim(client, scope, ns, "tenant-b", pool, 10, { zone: "zone-b" });
  await createService(client, scope, ns, SERVICE, pool, {
    spec: {
      tls: { mode: "Required" },
      authentication: { mode: "Required", clients: [{ name: "app" }, { name: "batch" }] },
    },
  });
  await eventually(
    "the TLS storage service Ready",
    async () => (await getService(client, ns, SERVICE)).status?.phase === "Ready",
    120_000,
    250,
  );
}, 180_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await runner?.stop();
  await operator?.stop();
  await deletePool(client, pool).catch(() => undefined);
  if (ns) await deleteNamespace(client, ns);
  if (opNs) await deleteNamespace(client, opNs);
});

describe("a storage service with TLS and client authentication required", () => {
  it("keeps a CA and a serving certificate that names the head Service and every server", async () => {
    const ca = await secretData(caSecretName(SERVICE));
    const tls = await secretData(tlsSecretName(SERVICE));
    expect(Object.keys(ca).sort()).toEqual([configKeys.caCert, configKeys.caKey]);
    expect(Object.keys(tls).sort()).toEqual([configKeys.caCert, configKeys.tlsCert, configKeys.tlsKey]);
    expect(tls[configKeys.caCert]).toBe(ca[configKeys.caCert]);
    expect(await signedBy(tls[configKeys.tlsCert]!, ca[configKeys.caCert]!)).toBe(true);
    const info = certificateInfo(tls[configKeys.tlsCert]!);
    const service = await getService(client, ns, SERVICE);
    expect([...info.dnsNames].sort()).toEqual(servingDnsNames(service as never).sort());
    expect(info.dnsNames).toContain(`kv-head.${ns}.svc`);
    expect(info.dnsNames).toContain(`kv-server-zone-a-0.kv-server-zone-a.${ns}.svc`);
    const days = (info.notAfter.getTime() - info.notBefore.getTime()) / 86_400_000;
    expect(days).toBeGreaterThan(89);
    // The head and servers mount it; their readiness probes speak HTTPS.
    const head = await client.core.readNamespacedPod({ name: service.status!.head!.pod!, namespace: ns });
    const secretsOf = (spec: k8s.V1PodSpec) =>
      (spec.volumes ?? []).flatMap((v) => v.secret?.secretName ?? []);
    expect(secretsOf(head.spec!).sort()).toEqual([clientDigestsSecretName(SERVICE), tlsSecretName(SERVICE)]);
    expect(head.spec!.containers[0]!.readinessProbe?.httpGet?.scheme).toBe("HTTPS");
    const set = await client.apps.readNamespacedStatefulSet({ name: "kv-server-zone-a", namespace: ns });
    expect(secretsOf(set.spec!.template.spec!)).toEqual([tlsSecretName(SERVICE)]);
  });

  it("issues one token per listed client; the head's Secret holds only their digests", async () => {
    const app = (await secretData(clientSecretName(SERVICE, "app")))[configKeys.token]!;
    const batch = (await secretData(clientSecretName(SERVICE, "batch")))[configKeys.token]!;
    expect(app).toMatch(/^[0-9a-f]{64}$/);
    expect(batch).not.toBe(app);
    const digests = JSON.parse(
      (await secretData(clientDigestsSecretName(SERVICE)))[configKeys.clientDigests]!,
    );
    expect(digests).toEqual({ app: tokenDigest(app), batch: tokenDigest(batch) });
    expect(JSON.stringify(digests)).not.toContain(app);
  });

  it("serves an authenticated client over TLS, and refuses the rest with nothing written", async () => {
    const ca = (await secretData(tlsSecretName(SERVICE)))[configKeys.caCert]!;
    const token = (await secretData(clientSecretName(SERVICE, "app")))[configKeys.token]!;
    const app = await dataClient({ ca, token });
    await eventually(
      "a write through the TLS head",
      async () =>
        (await app
          .put("k-app", "v1")
          .then(() => true)
          .catch(() => false)) || undefined,
      60_000,
      250,
    );
    expect(await app.get("k-app")).toMatchObject({ found: true, value: "v1" });

    const anonymous = await (await dataClient({ ca })).put("k-anon", "x").catch((e: unknown) => e);
    expect((anonymous as DataplaneError).status).toBe(401);
    const other = await createCa(
      "not the service's CA",
      new Date(Date.now() - 60_000),
      new Date(Date.now() + 3600_000),
    );
    const wrongCa = await (
      await dataClient({ ca: other.cert, token })
    )
      .put("k-wrong-ca", "x")
      .catch((e: unknown) => e);
    expect((wrongCa as DataplaneError).code).toBe("unavailable");
    const plain = await fetch(`${await headUrl()}/v1/op`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ op: "put", key: "k-plain", value: "x" }),
    });
    expect(plain.status).toBe(400);
    for (const key of ["k-anon", "k-wrong-ca", "k-plain"])
      expect(await app.get(key)).toMatchObject({ found: false });
  });

  it("servers refuse requests without the head token, over TLS and plain, with nothing written", async () => {
    const ca = (await secretData(tlsSecretName(SERVICE)))[configKeys.caCert]!;
    const token = (await secretData(clientSecretName(SERVICE, "app")))[configKeys.token]!;
    const server = runner.processes().find((p) => p.role === "server" && p.namespace === ns)!;
    const agent = new Agent({ connect: { ca, rejectUnauthorized: false } });
    const record = { key: "k-direct", partition: 0, epoch: 999, n: 1, version: 1, value: "x" };
    const res = await fetch(`https://${server.address}${PATHS.apply}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ epoch: 999, head: "intruder", records: [record] }),
      dispatcher: agent,
    } as RequestInit);
    expect(res.status).toBe(401);
    const plain = await fetch(`http://${server.address}${PATHS.fence}`, {
      method: "POST",
      body: JSON.stringify({ epoch: 999, head: "intruder" }),
    });
    expect(plain.status).toBe(400);
    await agent.close();
    const app = await dataClient({ ca, token });
    expect(await app.get("k-direct")).toMatchObject({ found: false });
    // Numbered by the service's own head: no epoch was raised to the intruder's 999.
    expect(epochOfVersion((await app.put("k-after-direct", "v")).version)).toBeLessThan(999);
  });

  it("revokes one client alone: its Secret is deleted and the head refuses it within seconds", async () => {
    const ca = (await secretData(tlsSecretName(SERVICE)))[configKeys.caCert]!;
    const appToken = (await secretData(clientSecretName(SERVICE, "app")))[configKeys.token]!;
    const batchToken = (await secretData(clientSecretName(SERVICE, "batch")))[configKeys.token]!;
    const batch = await dataClient({ ca, token: batchToken });
    const app = await dataClient({ ca, token: appToken });
    const before = await batch.put("k-batch", "before");
    const headBefore = (await getService(client, ns, SERVICE)).status!.head!.pod;

    await client.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: STORAGE_SERVICE_PLURAL,
        namespace: ns,
        name: SERVICE,
        body: { spec: { authentication: { mode: "Required", clients: [{ name: "app" }] } } },
      },
      mergePatchOptions,
    );
    const patchedAt = Date.now();
    await eventually(
      "the revoked client's Secret deleted",
      async () =>
        client.core
          .readNamespacedSecret({ name: clientSecretName(SERVICE, "batch"), namespace: ns })
          .then(() => undefined)
          .catch((err: unknown) => isNotFound(err)),
      30_000,
      100,
    );
    await eventually(
      "the head to refuse the revoked client",
      async () => {
        const err = await batch.put("k-batch-probe", "x").catch((e: unknown) => e);
        return err instanceof DataplaneError && err.status === 401;
      },
      30_000,
      100,
    );
    const refusedAfterMs = Date.now() - patchedAt;
    expect(refusedAfterMs).toBeLessThan(15_000);
    const late = await batch.put("k-batch", "after").catch((e: unknown) => e);
    expect((late as DataplaneError).status).toBe(401);
    expect(await app.get("k-batch")).toMatchObject({ found: true, value: "before", version: before.version });
    expect(epochOfVersion((await app.put("k-app-after-revoke", "v")).version)).toBe(
      epochOfVersion(before.version),
    );
    // Without a restart: the same head pod serves.
    expect((await getService(client, ns, SERVICE)).status!.head!.pod).toBe(headBefore);
    expect(await secretData(clientSecretName(SERVICE, "app"))).toHaveProperty(configKeys.token);
  });
});
