// Keeps the objects a StorageService owns as the manifests describe them: the token Secret (created
// once, never rewritten), the ConfigMap, the head Service, the head's and the servers'
// NetworkPolicies, and per zone a headless Service and a server StatefulSet. Applied with server-side apply when their content changes, and again every
// ten minutes (the informers' resync period) so one deleted or changed by hand comes back. The
// head Service, which routing hangs on, is watched: it comes back at once.
import type * as k8s from "@kubernetes/client-node";
import { createHash, randomBytes } from "node:crypto";
import type { StorageService } from "../../api/index.ts";
import { isConflict } from "../../kube/errors.ts";
import type { ControllerContext } from "../context.ts";
import { podsOfService } from "../indexes.ts";
import { labels, roles } from "../labels.ts";
import { ensureClientCredentials, ensureServingCertificate } from "./credentials.ts";
import { readRoutedEpoch } from "./effects.ts";
import {
  headService,
  routedEpochOf,
  serverConfigMap,
  serverHeadlessService,
  serverStatefulSet,
  tokenSecret,
} from "./manifests.ts";
import { headServiceName, tokenSecretName } from "./names.ts";
import { headNetworkPolicy, serverNetworkPolicy } from "./network-policies.ts";
import type { Known } from "./observe.ts";

const REAPPLY_MS = 600_000;

function memoKey(service: StorageService, obj: k8s.KubernetesObject): string {
  return `${service.metadata.uid}/${obj.kind}/${obj.metadata!.name}`;
}

const hashOf = (obj: k8s.KubernetesObject) => createHash("sha256").update(JSON.stringify(obj)).digest("hex");

/** Whether `obj` (whose hash is `hash`) was applied as it is now less than REAPPLY_MS ago. */
function recentlyApplied(
  ctx: ControllerContext,
  service: StorageService,
  obj: k8s.KubernetesObject,
  hash = hashOf(obj),
): boolean {
  const last = ctx.writes.applied.get(memoKey(service, obj));
  return !!last && last.hash === hash && ctx.now() - last.at < REAPPLY_MS;
}

async function applyIfChanged(ctx: ControllerContext, service: StorageService, obj: k8s.KubernetesObject) {
  const hash = hashOf(obj);
  if (recentlyApplied(ctx, service, obj, hash)) return;
  const key = memoKey(service, obj);
  ctx.writes.applied.delete(key);
  const now = ctx.now();
  await ctx.client.apply(obj);
  ctx.writes.applied.set(key, { hash, at: now });
}

/** Forgets the memo of a service (deleted, or its objects must be checked again). */
export function forgetApplied(ctx: ControllerContext, uid: string | undefined): void {
  for (const key of ctx.writes.applied.keys()) if (key.startsWith(`${uid}/`)) ctx.writes.applied.delete(key);
}

async function ensureSecret(ctx: ControllerContext, service: StorageService): Promise<void> {
  const key = `${service.metadata.uid}/Secret/${tokenSecretName(service.metadata.name!)}`;
  const last = ctx.writes.applied.get(key);
  if (last && ctx.now() - last.at < REAPPLY_MS) return;
  // Created, never read: a 409 says it is there (the operator reads only the TLS and client Secrets).
  try {
    const token = randomBytes(32).toString("hex");
    await ctx.client.core.createNamespacedSecret({
      namespace: service.metadata.namespace!,
      body: tokenSecret(service, token),
    });
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
  ctx.writes.applied.set(key, { hash: "", at: ctx.now() });
}

export function serverPods(ctx: ControllerContext, service: StorageService): k8s.V1Pod[] {
  return podsOfService(ctx, service.metadata.namespace!, service.metadata.name!).filter(
    (pod) => pod.metadata?.labels?.[labels.role] === roles.server,
  );
}

/**
 * Applies the owned objects, independent ones at once (each is a round trip; one after the other
 * they made a reconcile seconds long on a busy API server). The head Service is created selecting
 * the current epoch, and its epoch only ever rises: a reconcile working from a stale status never
 * routes back to an older head. Whenever the head Service is to be written, it is read from the API
 * server first; when the cache shows it as wanted and nothing is due, the cache is enough (and
 * routedKnown stays false, so a decision that needs the routed epoch for certain still reads it).
 */
export async function ensureResources(
  ctx: ControllerContext,
  service: StorageService,
  known: Known,
): Promise<void> {
  // First, so that no head or server pod is made before the Secrets it mounts.
  await Promise.all([ensureServingCertificate(ctx, service), ensureClientCredentials(ctx, service)]);
  await Promise.all([
    ensureSecret(ctx, service),
    applyIfChanged(ctx, service, serverConfigMap(service, serverPods(ctx, service))),
    ensureHeadService(ctx, service, known),
    applyIfChanged(ctx, service, headNetworkPolicy(service, { namespace: ctx.namespace })),
    applyIfChanged(ctx, service, serverNetworkPolicy(service)),
    ...service.spec.zones.flatMap((zone) => [
      applyIfChanged(ctx, service, serverHeadlessService(service, zone)),
      applyIfChanged(ctx, service, serverStatefulSet(service, zone)),
    ]),
  ]);
}

async function ensureHeadService(
  ctx: ControllerContext,
  service: StorageService,
  known: Known,
): Promise<void> {
  const wanted = Math.max(service.status?.epoch ?? 1, 1);
  const cached = ctx.cache.headServices.get(
    headServiceName(service.metadata.name!),
    service.metadata.namespace,
  );
  if (
    cached &&
    routedEpochOf(cached) === wanted &&
    recentlyApplied(ctx, service, headService(service, wanted))
  ) {
    known.routedEpoch = wanted;
    return;
  }
  const current = await readRoutedEpoch(ctx, known, service);
  const epoch = Math.max(known.routedEpoch ?? 0, wanted);
  if (!current || known.routedEpoch !== epoch) {
    await ctx.client.apply(headService(service, epoch));
    known.routedEpoch = epoch;
  } else {
    await applyIfChanged(ctx, service, headService(service, epoch));
  }
}
