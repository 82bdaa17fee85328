// `npm run demo`: the whole mission on a local cluster, start to finish, without questions.
// A cluster of real control-plane processes, the operator, a contingency pool over three zones
// rented out to tenants, a storage service whose head and servers run as real processes, data
// written to it, the head killed, and the failover's timeline and what it cost the tenants.
// The cluster, the operator and the storage service stay up afterwards to explore.
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseAllDocuments } from "yaml";
import type * as k8s from "@kubernetes/client-node";
import { CLAIM_PLURAL, GROUP, POOL_PLURAL, STORAGE_SERVICE_PLURAL, VERSION } from "../../src/api/index.ts";
import { createClient } from "../../src/dataplane/client.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { isConflict } from "../../src/kube/errors.ts";
import { binaries, clusterDir, kubeconfigPath } from "../../test/cluster/config.ts";
import { companionLog, startCompanion, up } from "../../test/cluster/cluster.ts";
import { installCrds } from "../../test/support/crds.ts";
import { eventually, isPodReady, makePodFailed, testClient } from "../../test/support/kube.ts";

const repo = join(import.meta.dirname, "../..");
const node = join(repo, "node_modules/.bin/node");
const say = (text = "") => console.log(text);
const step = (text: string) => say(`\n== ${text}`);
const operatorNamespace = "understudy-system";

type Obj = k8s.KubernetesObject & { spec?: any; status?: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

function examples(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(repo, "examples", file), "utf8")).map((d) => d.toJSON() as Obj);
}

async function apply(client: KubeClient, obj: Obj): Promise<void> {
  try {
    await client.objects.create(obj);
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}

const custom = (client: KubeClient, plural: string, namespace?: string) => ({
  list: async (): Promise<Obj[]> =>
    (
      (namespace
        ? await client.custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural,
            namespace,
          })
        : await client.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) as {
        items: Obj[];
      }
    ).items,
  get: async (name: string): Promise<Obj> =>
    (namespace
      ? await client.custom.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural,
          namespace,
          name,
        })
      : await client.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural, name })) as Obj,
});

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

async function main(): Promise<void> {
  const started = Date.now();
  step(
    "1. The local cluster: etcd, kube-apiserver, controller-manager, scheduler, KWOK nodes in three zones",
  );
  await up();
  process.env.KUBECONFIG = kubeconfigPath;
  const client = testClient("understudy-demo");
  await installCrds();
  say("CRDs installed: ContingencyPool, PoolClaim, StorageService");

  step("2. The operator, and a stand-in kubelet that runs the storage service's real processes");
  for (const ns of [operatorNamespace, "tenants", "storage"])
    await apply(client, { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  await eventually("default ServiceAccounts", async () => {
    for (const ns of ["tenants", "storage"])
      await client.core.readNamespacedServiceAccount({ name: "default", namespace: ns });
    return true;
  });
  startCompanion("demo-operator", node, [join(repo, "src/operator/main.ts")], {
    KUBECONFIG: kubeconfigPath,
    UNDERSTUDY_NAMESPACE: operatorNamespace,
    UNDERSTUDY_METRICS_BIND_ADDRESS: "127.0.0.1:18080",
  });
  startCompanion(
    "demo-pod-runner",
    node,
    [join(repo, "scripts/demo/pod-runner-main.ts"), "storage", join(clusterDir, "demo-pods")],
    {
      KUBECONFIG: kubeconfigPath,
    },
  );
  await eventually(
    "the operator's /readyz",
    async () => (await fetch("http://127.0.0.1:18080/readyz")).ok,
    60_000,
  );
  say(`operator running (logs: ${companionLog("demo-operator")}); metrics on http://127.0.0.1:18080/metrics`);

  step("3. A contingency pool of 6 slots over three zones, rented to tenants");
  for (const pool of examples("10-pool.yaml")) await apply(client, pool);
  const claims = examples("20-claims.yaml");
  // Four more tenants fill the pool, so a failover has to take a slot back from someone.
  for (const [i, bid] of [20, 30, 40, 50].entries()) {
    const extra = structuredClone(claims[0]!);
    extra.metadata!.name = `batch-${i + 1}`;
    extra.spec.bid = bid;
    claims.push(extra);
  }
  for (const claim of claims) await apply(client, claim);
  const bound = await eventually(
    "every tenant Bound",
    async () => {
      const list = await custom(client, CLAIM_PLURAL, "tenants").list();
      return list.length === claims.length && list.every((c) => c.status?.phase === "Bound") && list;
    },
    120_000,
  );
  say(
    table([
      ["CLAIM", "BID", "PHASE", "ZONE", "NODE", "SLOT"],
      ...bound
        .sort((a, b) => b.spec.bid - a.spec.bid)
        .map((c) => [
          c.metadata!.name!,
          String(c.spec.bid),
          c.status.phase,
          c.status.zone,
          c.status.node,
          c.status.leaseName,
        ]),
    ]),
  );
  const pool = await custom(client, POOL_PLURAL).get("contingency");
  say(`pool contingency: ${pool.status?.leased ?? 0} of ${pool.status?.slots ?? 0} slots leased, none idle`);

  step("4. A storage service: a head in zone-a, a server in each zone, replication factor 3");
  const [service] = examples("30-storage-service.yaml");
  service!.spec.failureDetection = {
    probePeriodMilliseconds: 200,
    probeTimeoutMilliseconds: 150,
    failureThreshold: 2,
  };
  await apply(client, service!);
  const services = custom(client, STORAGE_SERVICE_PLURAL, "storage");
  const ready = await eventually(
    "storage service kv Ready",
    async () => {
      const s = await services.get("kv");
      return s.status?.phase === "Ready" && s.status?.head?.pod && s;
    },
    180_000,
    250,
  );
  say(
    `head ${ready.status.head.pod} (epoch ${ready.status.epoch}) on ${ready.status.head.node} in ${ready.status.head.zone}`,
  );

  step("5. Writing data through the head");
  const headUrl = async () => {
    const s = await services.get("kv");
    const pod = await client.core.readNamespacedPod({ name: s.status.head.pod, namespace: "storage" });
    if (!pod.status?.podIP || !isPodReady(pod)) throw new Error("no ready head");
    return `http://${pod.status.podIP}:${s.spec.head.port}`;
  };
  // KWOK reports the pod Ready at once; the real process needs a moment to fence the servers.
  await eventually(
    "the head process ready",
    async () => (await fetch(`${await headUrl()}/readyz`)).ok,
    60_000,
    200,
  );
  // A loaded machine can take over a second to acknowledge a write; a timeout would make its outcome unknown.
  const kv = createClient({ resolveHead: headUrl, maxAttempts: 5, requestTimeoutMs: 5000 });
  const keys = Array.from({ length: 100 }, (_, i) => `order-${i}`);
  for (const key of keys) await kv.put(key, `paid:${key}`);
  say(`${keys.length} writes acknowledged by a quorum of servers (R=3, W=2)`);

  step("6. The head fails");
  const before = await services.get("kv");
  const failedAt = Date.now();
  await makePodFailed(client, "storage", before.status.head.pod);
  say(
    `${before.status.head.pod} on ${before.status.head.node} (${before.status.head.zone}) crashed; clients keep writing`,
  );
  // Clients keep writing; the longest gap between two acknowledged writes is what they lived through.
  const acks: number[] = [];
  let writes = 0;
  let stop = false;
  let lastWriteError = "";
  const writer = (async () => {
    while (!stop && Date.now() - failedAt < 120_000) {
      try {
        await kv.put(`during-${writes++}`, "x");
        acks.push(Date.now());
      } catch (err) {
        lastWriteError = `${new Date().toISOString()} ${String(err)}`;
        await sleep(20);
      }
    }
  })();
  const after = await eventually(
    "the failover to finish",
    async () => {
      const s = await services.get("kv");
      return (
        (s.status?.failoverCount ?? 0) > (before.status?.failoverCount ?? 0) &&
        s.status?.lastFailover?.finishedAt &&
        s
      );
    },
    120_000,
    100,
  );
  const doneAt = Date.now();
  await eventually(
    "writes through the new head",
    () => {
      if (acks.some((t) => t > doneAt)) return true;
      // Said on timeout: what the clients last met.
      throw new Error(
        `${writes} writes tried, ${acks.length} acknowledged; last error: ${lastWriteError || "none"}`,
      );
    },
    30_000,
    50,
  );
  stop = true;
  await writer;
  const gaps = acks.slice(1).map((t, i) => t - acks[i]!);
  const unavailableMs = Math.max(0, ...gaps);

  step("7. The failover, as recorded in StorageService.status.lastFailover");
  const last = after.status.lastFailover;
  const t0 = new Date(last.startedAt).getTime();
  say(
    table([
      ["STEP", "AT (ms after detection)"],
      ...(last.timeline as { step: string; at: string }[]).map((e) => [
        e.step,
        `+${new Date(e.at).getTime() - t0}`,
      ]),
    ]),
  );
  say(
    `reason ${last.reason}; from ${last.fromZone} to ${last.toZone}; epoch ${before.status.epoch} -> ${after.status.epoch}`,
  );
  say(
    `new head ${after.status.head.pod} on ${after.status.head.node}, slot ${after.status.head.leaseName ?? "-"}`,
  );
  say(
    `clients: ${acks.length} writes acknowledged during the failover; the longest wait between two was ${unavailableMs} ms`,
  );
  if (last.revokedClaim) {
    const pool = await custom(client, POOL_PLURAL).get("contingency");
    say(
      `(most of it is the tenant's notice: the new head waits until the revoked tenant's pod has gone, which takes up to ` +
        `the pool's emergencyGraceSeconds, ${pool.spec.revocation.emergencyGraceSeconds}s here; a hot spare or a grace of 0 removes that wait)`,
    );
  }

  step("8. What it cost the tenants");
  const revoked = last.revokedClaim as string | undefined;
  if (revoked) {
    const [ns, name] = revoked.split("/") as [string, string];
    const claim = await custom(client, CLAIM_PLURAL, ns).get(name);
    const events = await client.core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: `involvedObject.name=${name}`,
    });
    const notice = events.items.find((e) => e.reason === "Failover");
    say(`${revoked} (the lowest bid, ${claim.spec.bid}) lost slot ${last.leaseName} to the failover:`);
    if (notice) say(`  Event ${notice.type}/${notice.reason}: ${notice.message}`);
    say(
      claim.spec.requeueOnRevoke
        ? `  it asked to be requeued, and is ${claim.status.phase} again (${claim.status.leaseName ?? "waiting"}) once the pool replaced the slot`
        : `  it is now ${claim.status.phase}`,
    );
  } else say("nobody: a free slot was used");
  const others = (await custom(client, CLAIM_PLURAL, "tenants").list()).filter(
    (c) => `tenants/${c.metadata!.name}` !== revoked,
  );
  say(
    `${others.filter((c) => c.status?.phase === "Bound").length} other tenants kept their slots throughout`,
  );

  step("9. Every acknowledged write is still there");
  let found = 0;
  for (const key of keys) if ((await kv.get(key)).value === `paid:${key}`) found++;
  say(`${found} of ${keys.length} keys read back through the new head`);
  if (found !== keys.length) throw new Error("acknowledged writes were lost");

  step(
    `Done in ${((Date.now() - started) / 1000).toFixed(0)} s. The cluster, the operator and the service stay up.`,
  );
  say(`Explore:
  export KUBECONFIG=${kubeconfigPath}
  alias kubectl=${binaries.kubectl}
  kubectl get understudy -A                 # pools, claims and storage services
  kubectl get leases -n ${operatorNamespace} -L understudy.dev/zone   # the slot ledger
  kubectl describe ssvc kv -n storage       # status, conditions and events of the failover
  npm run cli -- status -A                  # the understudy CLI (also: kubectl understudy)
  npm run cli -- failover kv -n storage     # a manual switchover
Tear down: npm run cluster:down`);
}

try {
  await main();
  process.exit(0);
} catch (err) {
  console.error(`\ndemo failed: ${(err as Error).message}`);
  console.error(
    `operator log: ${companionLog("demo-operator")}; pod runner log: ${companionLog("demo-pod-runner")}`,
  );
  process.exit(1);
}
