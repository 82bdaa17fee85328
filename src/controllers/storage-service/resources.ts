// Keeps the objects a StorageService owns as the manifests describe them: the token Secret (created
// once, never rewritten), the ConfigMap, the head Service, and per zone a headless Service and a
// server StatefulSet. Applied with server-side apply when their content changes, and again every
// minute so one deleted by hand comes back.
import type * as k8s from "@kubernetes/client-node";
import { createHash, randomBytes } from "node:crypto";
import type { StorageService } from "../../api/index.ts";
import { isConflict, isNotFound } from "../../kube/errors.ts";
import type { ControllerContext } from "../context.ts";
import { labels, roles } from "../labels.ts";
import { readRoutedEpoch } from "./effects.ts";
import {
  headService,
  serverConfigMap,
  serverHeadlessService,
  serverStatefulSet,
  tokenSecret,
} from "./manifests.ts";
import { tokenSecretName } from "./names.ts";
import type { Known } from "./observe.ts";

const REAPPLY_MS = 60_000;

/** What was last applied, by owner uid, kind and name: a write-saving memo, never a source of decisions. */
const applied = new Map<string, { hash: string; at: number }>();

function memoKey(service: StorageService, obj: k8s.KubernetesObject): string {
  return `${service.metadata.uid}/${obj.kind}/${obj.metadata!.name}`;
}

async function applyIfChanged(ctx: ControllerContext, service: StorageService, obj: k8s.KubernetesObject) {
  const key = memoKey(service, obj);
  const hash = createHash("sha256").update(JSON.stringify(obj)).digest("hex");
  const last = applied.get(key);
  const now = Date.now();
  if (last && last.hash === hash && now - last.at < REAPPLY_MS) return;
  applied.delete(key);
  await ctx.client.apply(obj);
  applied.set(key, { hash, at: now });
}

/** Forgets the memo of a service (deleted, or its objects must be checked again). */
export function forgetApplied(uid: string | undefined): void {
  for (const key of applied.keys()) if (key.startsWith(`${uid}/`)) applied.delete(key);
}

async function ensureSecret(ctx: ControllerContext, service: StorageService): Promise<void> {
  const key = `${service.metadata.uid}/Secret/${tokenSecretName(service.metadata.name!)}`;
  const last = applied.get(key);
  if (last && Date.now() - last.at < REAPPLY_MS) return;
  const namespace = service.metadata.namespace!;
  try {
    await ctx.client.core.readNamespacedSecret({ name: tokenSecretName(service.metadata.name!), namespace });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      const token = randomBytes(32).toString("hex");
      await ctx.client.core.createNamespacedSecret({ namespace, body: tokenSecret(service, token) });
    } catch (createErr) {
      if (!isConflict(createErr)) throw createErr;
    }
  }
  applied.set(key, { hash: "", at: Date.now() });
}

export function serverPods(ctx: ControllerContext, service: StorageService): k8s.V1Pod[] {
  return ctx.cache.pods
    .list()
    .filter(
      (pod) =>
        pod.metadata?.namespace === service.metadata.namespace &&
        pod.metadata?.labels?.[labels.service] === service.metadata.name &&
        pod.metadata?.labels?.[labels.role] === roles.server,
    );
}

/**
 * Applies the owned objects. The head Service is created selecting the current epoch, and its
 * epoch only ever rises: a reconcile working from a stale status never routes back to an older head.
 */
export async function ensureResources(
  ctx: ControllerContext,
  service: StorageService,
  known: Known,
): Promise<void> {
  await ensureSecret(ctx, service);
  await applyIfChanged(ctx, service, serverConfigMap(service, serverPods(ctx, service)));
  const current = await readRoutedEpoch(ctx, known, service);
  const epoch = Math.max(known.routedEpoch ?? 0, service.status?.epoch ?? 1, 1);
  if (!current || known.routedEpoch !== epoch) {
    await ctx.client.apply(headService(service, epoch));
    known.routedEpoch = epoch;
  } else {
    await applyIfChanged(ctx, service, headService(service, epoch));
  }
  for (const zone of service.spec.zones) {
    await applyIfChanged(ctx, service, serverHeadlessService(service, zone));
    await applyIfChanged(ctx, service, serverStatefulSet(service, zone));
  }
}
