// The writes the storage service controller makes, each idempotent and each noting what it wrote in
// `known`, so the same reconcile decides its next action on what it just did.
import type * as k8s from "@kubernetes/client-node";
import { parseStorageService, type StorageService, storageServiceResource } from "../../api/index.ts";
import { refKey } from "../../decisions/names.ts";
import type { ServiceRef, SlotHolder } from "../../decisions/types.ts";
import { isConflict, isNotFound } from "../../kube/errors.ts";
import type { ControllerContext } from "../context.ts";
import { swapHolder } from "../slot-ledger.ts";
import { patchStatus, type StatusWrite } from "../status-writer.ts";
import { headService, headSelector, routedEpochOf } from "./manifests.ts";
import { headServiceName, serviceRef } from "./names.ts";
import type { Known } from "./observe.ts";

/** A status write of a service: the service as written, parsed, or why not. */
type ServiceStatusWrite = { ok: true; service: StorageService } | Extract<StatusWrite, { ok: false }>;

/**
 * Merge-patches status under an optimistic lock: the write carries the resourceVersion the patch
 * was decided on, so a decision made on a stale view fails (409) instead of overwriting.
 */
export async function writeStatus(
  ctx: ControllerContext,
  service: StorageService,
  patch: Record<string, unknown>,
): Promise<ServiceStatusWrite> {
  let write: StatusWrite;
  try {
    write = await patchStatus(ctx, storageServiceResource, service, patch, { lock: true });
  } catch (err) {
    // The write may have been made (a timeout, a reset): the cache at the last known write is
    // no longer known to be current.
    ctx.writes.serviceStatusWrites.delete(refKey(serviceRef(service)));
    throw err;
  }
  if (!write.ok) return write;
  const parsed = parseStorageService(write.object);
  if (!parsed.ok) throw new Error(`status write returned an object that does not parse: ${parsed.message}`);
  const version = parsed.value.metadata.resourceVersion;
  if (version !== undefined) ctx.writes.serviceStatusWrites.set(refKey(serviceRef(service)), version);
  return { ok: true, service: parsed.value };
}

/** Forgets the last status write of a service that is gone. */
export function forgetStatusWrites(ctx: ControllerContext, namespace: string, name: string): void {
  ctx.writes.serviceStatusWrites.delete(refKey({ namespace, name }));
}

/**
 * The service to act on, current as far as this operator's own writes go: the cached one when it
 * is at the version this operator's last status write of it returned (nothing this operator wrote
 * is missing, and every status write is still guarded by its resourceVersion), else read from the
 * API server. Undefined when it is gone.
 */
export async function currentService(
  ctx: ControllerContext,
  cached: StorageService,
): Promise<StorageService | undefined> {
  const key = refKey(serviceRef(cached));
  const written = ctx.writes.serviceStatusWrites.get(key);
  if (written !== undefined && written === cached.metadata.resourceVersion) return cached;
  const fresh = await readService(ctx, cached.metadata.namespace!, cached.metadata.name!);
  if (!fresh) ctx.writes.serviceStatusWrites.delete(key);
  return fresh;
}

/** The StorageService as the API server has it now, or undefined when it is gone. */
export async function readService(
  ctx: ControllerContext,
  namespace: string,
  name: string,
): Promise<StorageService | undefined> {
  try {
    const raw = await ctx.client.getCustom(storageServiceResource, name, namespace);
    const parsed = parseStorageService(raw);
    return parsed.ok ? parsed.value : undefined;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Creates a pod by name; one that exists already is read instead (creation is idempotent by name). */
export async function createPod(ctx: ControllerContext, known: Known, pod: k8s.V1Pod): Promise<void> {
  const namespace = pod.metadata!.namespace!;
  const name = pod.metadata!.name!;
  let result: k8s.V1Pod;
  try {
    result = await ctx.client.core.createNamespacedPod({ namespace, body: pod });
  } catch (err) {
    if (!isConflict(err)) throw err;
    result = await ctx.client.core.readNamespacedPod({ name, namespace });
  }
  known.pods.set(`${namespace}/${name}`, result);
}

/**
 * Deletes a pod; graceSeconds 0 removes it at once (for a pod on a node that cannot confirm). With
 * `uid`, only that pod: when the name is already another pod's (the one seen was a stale view), that
 * pod is left alone and read instead, so the next decision sees it.
 */
export async function deletePod(
  ctx: ControllerContext,
  known: Known,
  namespace: string,
  name: string,
  graceSeconds?: number,
  uid?: string,
): Promise<void> {
  let deleted: k8s.V1Pod | null;
  try {
    const grace = graceSeconds !== undefined ? { gracePeriodSeconds: graceSeconds } : {};
    deleted = (await ctx.client.core.deleteNamespacedPod({
      name,
      namespace,
      ...grace,
      // With a body, the API server takes the options from it alone: the grace goes there too.
      ...(uid !== undefined ? { body: { preconditions: { uid }, ...grace } } : {}),
    })) as k8s.V1Pod;
  } catch (err) {
    if (uid !== undefined && isConflict(err)) {
      known.pods.set(`${namespace}/${name}`, await readPod(ctx, namespace, name));
      return;
    }
    if (!isNotFound(err)) throw err;
    deleted = null;
  }
  rememberDeletion(known, namespace, name, deleted, graceSeconds);
}

/** The pod as the API server has it now, or null when there is none. */
async function readPod(ctx: ControllerContext, namespace: string, name: string): Promise<k8s.V1Pod | null> {
  try {
    return await ctx.client.core.readNamespacedPod({ name, namespace });
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** Notes a pod deletion's outcome in `known`: gone, or terminating as the API server answered. */
export function rememberDeletion(
  known: Known,
  namespace: string,
  name: string,
  deleted: k8s.V1Pod | null,
  graceSeconds?: number,
): void {
  const gone = deleted === null || graceSeconds === 0 || !deleted.metadata?.deletionTimestamp;
  known.pods.set(`${namespace}/${name}`, gone ? null : deleted);
}

/** The epoch the head Service routes to, read from the API server (once per reconcile). */
export async function readRoutedEpoch(
  ctx: ControllerContext,
  known: Known,
  service: StorageService,
): Promise<k8s.V1Service | undefined> {
  let svc: k8s.V1Service | undefined;
  try {
    svc = await ctx.client.core.readNamespacedService({
      name: headServiceName(service.metadata.name!),
      namespace: service.metadata.namespace!,
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  known.routedEpoch = routedEpochOf(svc);
  known.routedKnown = true;
  return svc;
}

/** Points the head Service at the head of `epoch` (creating the Service if it is missing). */
export async function switchHeadService(
  ctx: ControllerContext,
  known: Known,
  service: StorageService,
  epoch: number,
): Promise<void> {
  const name = headServiceName(service.metadata.name!);
  const namespace = service.metadata.namespace!;
  try {
    await ctx.client.mergePatch(
      { apiVersion: "v1", kind: "Service", metadata: { name, namespace } },
      { spec: { selector: headSelector(service.metadata.name!, epoch) } },
    );
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await ctx.client.core.createNamespacedService({ namespace, body: headService(service, epoch) });
    } catch (createErr) {
      if (!isConflict(createErr)) throw createErr;
      return; // created meanwhile: decide again on what is there
    }
  }
  known.routedEpoch = epoch;
  known.routedKnown = true;
}

/**
 * Notes the slot a failover of `service` chose, as it is decided: failovers deciding meanwhile see
 * it (observe.ts, slotsChosenElsewhere). One choice per service.
 */
export function rememberSlotChoice(ctx: ControllerContext, service: ServiceRef, leaseName: string): void {
  forgetSlotChoice(ctx, service);
  ctx.writes.slotChoices.set(leaseName, { service, at: ctx.now() });
}

/** Forgets the slot a failover of `service` chose (the service is gone). */
export function forgetSlotChoice(ctx: ControllerContext, service: ServiceRef): void {
  for (const [lease, choice] of ctx.writes.slotChoices)
    if (refKey(choice.service) === refKey(service)) ctx.writes.slotChoices.delete(lease);
}

/**
 * Compare-and-swap of a slot's holder against the resourceVersion the decision saw. False when the
 * Lease changed or vanished meanwhile: the caller decides again on fresh observations.
 */
export async function swapSlot(
  ctx: ControllerContext,
  known: Known,
  leaseName: string,
  expectedResourceVersion: string,
  to: SlotHolder,
  extraAnnotations: Record<string, string | undefined> = {},
): Promise<boolean> {
  const lease = known.lease(leaseName);
  if (!lease || lease.metadata?.resourceVersion !== expectedResourceVersion) return false;
  const result = await swapHolder(ctx.client, lease, to, extraAnnotations);
  if (!result.ok) return false;
  known.leases.set(leaseName, result.lease);
  ctx.writes.slotSwaps.set(leaseName, {
    replaced: expectedResourceVersion,
    lease: result.lease,
    at: ctx.now(),
  });
  return true;
}
