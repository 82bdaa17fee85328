// The API reads behind each command. Nothing here decides what to show.
import { claimResource, poolResource, storageServiceResource } from "../api/index.ts";
import type * as k8s from "@kubernetes/client-node";
import type { KubeClient } from "../kube/client.ts";
import { isNotFound, statusCode } from "../kube/errors.ts";
import type { ClaimObject, PoolObject, ServiceObject } from "./model.ts";

/** A 404 on a list means the resource type is unknown: say what to do instead of printing "not found". */
async function listed<T>(what: string, list: () => Promise<T[]>): Promise<T[]> {
  try {
    return await list();
  } catch (err) {
    if (isNotFound(err))
      throw new Error(
        `the API server does not serve ${what}: are the Understudy CRDs installed? (kubectl apply --server-side -f crds/)`,
        { cause: err },
      );
    throw err;
  }
}

export const listPools = (client: KubeClient) =>
  listed("contingencypools.understudy.dev", () => client.listCustom<PoolObject>(poolResource));

/** `namespace` undefined: every namespace. */
export const listClaims = (client: KubeClient, namespace: string | undefined) =>
  listed("poolclaims.understudy.dev", () => client.listCustom<ClaimObject>(claimResource, namespace));

export const listServices = (client: KubeClient, namespace: string | undefined) =>
  listed("storageservices.understudy.dev", () =>
    client.listCustom<ServiceObject>(storageServiceResource, namespace),
  );

export async function getPool(client: KubeClient, name: string): Promise<PoolObject> {
  try {
    return await client.getCustom<PoolObject>(poolResource, name);
  } catch (err) {
    if (isNotFound(err)) throw new Error(`contingency pool "${name}" not found`, { cause: err });
    throw err;
  }
}

export async function getService(
  client: KubeClient,
  name: string,
  namespace: string,
): Promise<ServiceObject> {
  try {
    return await client.getCustom<ServiceObject>(storageServiceResource, name, namespace);
  } catch (err) {
    if (isNotFound(err))
      throw new Error(`storage service "${name}" not found in namespace "${namespace}"`, { cause: err });
    throw err;
  }
}

/**
 * A pool's slot Leases, from whichever namespace the operator keeps them in. Undefined when the
 * user may not list Leases cluster-wide: the detail view then shows counts only.
 */
export async function listSlotLeases(client: KubeClient, pool: string): Promise<k8s.V1Lease[] | undefined> {
  try {
    const list = await client.coordination.listLeaseForAllNamespaces({
      labelSelector: `understudy.dev/pool=${pool}`,
    });
    return list.items;
  } catch (err) {
    if (statusCode(err) === 403) return undefined;
    throw err;
  }
}

/** Every node, for the planner's view of the room left in each zone. */
export async function listNodes(client: KubeClient): Promise<k8s.V1Node[]> {
  return (await client.core.listNode()).items;
}

/** Every pod bound to a node: what their requests leave free is where a pool can grow. */
export async function listBoundPods(client: KubeClient): Promise<k8s.V1Pod[]> {
  return (await client.core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName!=" })).items;
}
