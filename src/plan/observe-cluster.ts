// `understudy plan` on a live cluster: read the pool, the storage services and claims drawing on it
// and the nodes, turn them into assumptions, let flags override them, and plan.
import { parsePool } from "../api/index.ts";
import { getPool, listBoundPods, listClaims, listNodes, listPools, listServices } from "../cli/fetch.ts";
import { requestedByNode, toNodeView, toPoolView } from "../controllers/views.ts";
import type { KubeClient } from "../kube/client.ts";
import {
  applyOverrides,
  observeAssumptions,
  type AssumptionOverrides,
  type Assumptions,
} from "./assumptions.ts";
import { defaultMaxSlotsPerZone, planPool, type PlanReport } from "./plan.ts";
import type { SearchOptions } from "./recommend.ts";

/** The pool named, or the only pool there is. */
async function choosePool(client: KubeClient, name: string | undefined) {
  if (name) return getPool(client, name);
  const pools = await listPools(client);
  if (pools.length === 1) return pools[0]!;
  const names = pools.map((p) => p.metadata?.name).join(", ");
  throw new Error(
    pools.length === 0
      ? "no contingency pool found: create one, or name the pool to plan"
      : `${pools.length} contingency pools (${names}): name the one to plan`,
  );
}

async function observeCluster(
  client: KubeClient,
  poolName: string | undefined,
  now: number,
): Promise<{ pool: string; assumptions: Assumptions }> {
  const listed = await choosePool(client, poolName);
  const parsed = parsePool(listed);
  if (!parsed.ok)
    throw new Error(`contingency pool "${listed.metadata?.name}" is not valid: ${parsed.message}`);
  const pool = parsed.value;
  const [services, claims, nodes, pods] = await Promise.all([
    listServices(client, undefined),
    listClaims(client, undefined),
    listNodes(client),
    listBoundPods(client),
  ]);
  const requested = requestedByNode(pods);
  const assumptions = observeAssumptions({
    pool,
    poolView: toPoolView(pool),
    services,
    claims,
    nodes: nodes.map((n) => toNodeView(n, requested.get(n.metadata!.name!))),
    now,
  });
  return { pool: pool.metadata.name!, assumptions };
}

export type PlanRequest = Omit<SearchOptions, "maxSlotsPerZone"> & { maxSlotsPerZone?: number };

/** Observe, override, plan: the whole command as one call. */
export async function planFromCluster(
  client: KubeClient,
  poolName: string | undefined,
  overrides: AssumptionOverrides,
  request: PlanRequest,
  now = Date.now(),
): Promise<PlanReport> {
  const observed = await observeCluster(client, poolName, now);
  const assumptions = applyOverrides(observed.assumptions, overrides);
  return planPool(observed.pool, assumptions, {
    ...request,
    maxSlotsPerZone: request.maxSlotsPerZone ?? defaultMaxSlotsPerZone(assumptions),
  });
}
