import * as k8s from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { KubeClient } from "../../src/kube/client.ts";
import { isConflict, isNotFound } from "../../src/kube/errors.ts";
import { loadKubeConfig } from "../../src/kube/config.ts";
import type { ResourceRef } from "../../src/kube/resources.ts";
import { kubeconfigPath } from "../cluster/config.ts";
import { nodeNotReadyLabel, podFailedLabel, podNotReadyAnnotation } from "../cluster/stages.ts";

// Shared helpers for tests against the real test cluster (KUBECONFIG is set by test/cluster/with-cluster.ts).

/** The cluster `npm test` runs against: $KUBECONFIG, else the local test cluster's kubeconfig. */
export function testKubeConfig(): k8s.KubeConfig {
  return loadKubeConfig(process.env.KUBECONFIG ?? kubeconfigPath);
}

export function testClient(fieldManager = "understudy-test"): KubeClient {
  return new KubeClient(testKubeConfig(), fieldManager);
}

/** Polls `check` until it returns a value other than undefined/false, or fails with `what`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`,
  );
}

/** A client configuration that acts as a ServiceAccount (a short-lived token from the TokenRequest API). */
export async function serviceAccountKubeConfig(
  client: KubeClient,
  serviceAccount: string,
  namespace: string,
): Promise<k8s.KubeConfig> {
  const request = await client.core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = testKubeConfig().getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "test", server: cluster.server, caData: caData(cluster), skipTLSVerify: false }],
    users: [{ name: serviceAccount, token: request.status!.token }],
    contexts: [{ name: "sa", cluster: "test", user: serviceAccount, namespace }],
    currentContext: "sa",
  });
  return kc;
}

function caData(cluster: k8s.Cluster): string {
  if (cluster.caData) return cluster.caData;
  if (cluster.caFile) return readFileSync(cluster.caFile).toString("base64");
  throw new Error("the test cluster's kubeconfig has no certificate authority");
}

let counter = 0;
/** A fresh namespace whose default ServiceAccount exists, so pods can be created in it right away. */
export async function freshNamespace(client: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
  await client.core.createNamespace({ body: { metadata: { name } } });
  await eventually(`ServiceAccount default in ${name}`, async () => {
    await client.core.readNamespacedServiceAccount({ name: "default", namespace: name });
    return true;
  });
  return name;
}

export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  try {
    await client.core.deleteNamespace({ name });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** Deletes a custom object; one already gone is fine. */
export async function deleteCustom(
  client: KubeClient,
  ref: ResourceRef,
  name: string,
  namespace?: string,
): Promise<void> {
  const base = { group: ref.group, version: ref.version, plural: ref.plural, name };
  try {
    await (ref.namespaced
      ? client.custom.deleteNamespacedCustomObject({ ...base, namespace: namespace! })
      : client.custom.deleteClusterCustomObject(base));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export const isPodReady = (pod: k8s.V1Pod) =>
  pod.status?.phase === "Running" &&
  !!pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");

export const isNodeReady = (node: k8s.V1Node) =>
  !!node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");

async function mergePatchWithRetry(apply: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await apply();
      return;
    } catch (err) {
      if (!isConflict(err) || attempt > 5) throw err;
    }
  }
}

// Fault primitives: each asks KWOK (through a Stage) to report the failure, as a kubelet would.

/** The pod stays Running but reports Ready=False. */
export async function makePodNotReady(client: KubeClient, namespace: string, name: string): Promise<void> {
  await mergePatchWithRetry(() =>
    client.mergePatch(
      { apiVersion: "v1", kind: "Pod", metadata: { name, namespace } },
      {
        metadata: { annotations: { [podNotReadyAnnotation]: "true" } },
      },
    ),
  );
}

/** The pod's containers fail and the pod's phase becomes Failed. */
export async function makePodFailed(client: KubeClient, namespace: string, name: string): Promise<void> {
  await mergePatchWithRetry(() =>
    client.mergePatch(
      { apiVersion: "v1", kind: "Pod", metadata: { name, namespace } },
      {
        metadata: { labels: { [podFailedLabel]: "true" } },
      },
    ),
  );
}

/** The node reports Ready=False until restored. */
export async function makeNodeNotReady(client: KubeClient, name: string): Promise<void> {
  await mergePatchWithRetry(() =>
    client.mergePatch(
      { apiVersion: "v1", kind: "Node", metadata: { name } },
      {
        metadata: { labels: { [nodeNotReadyLabel]: "true" } },
      },
    ),
  );
}

/** Undoes makeNodeNotReady: KWOK's node-initialize stage reports the node Ready again. */
export async function restoreNode(client: KubeClient, name: string): Promise<void> {
  await mergePatchWithRetry(() =>
    client.mergePatch(
      { apiVersion: "v1", kind: "Node", metadata: { name } },
      {
        metadata: { labels: { [nodeNotReadyLabel]: null } },
      },
    ),
  );
}

export async function nodesInZone(client: KubeClient, zone: string): Promise<string[]> {
  const list = await client.core.listNode({ labelSelector: `topology.kubernetes.io/zone=${zone},type=kwok` });
  return list.items.map((n) => n.metadata!.name!);
}

/** Every node of the zone reports NotReady: a zone outage. Returns the nodes, for restoring. */
export async function makeZoneNotReady(client: KubeClient, zone: string): Promise<string[]> {
  const nodes = await nodesInZone(client, zone);
  await Promise.all(nodes.map((n) => makeNodeNotReady(client, n)));
  return nodes;
}
