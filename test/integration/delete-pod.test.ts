import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControllerContext } from "../../src/controllers/context.ts";
import { deletePod } from "../../src/controllers/storage-service/effects.ts";
import { Known } from "../../src/controllers/storage-service/observe.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { deleteNamespace, freshNamespace, testClient } from "../support/kube.ts";

// A failover deletes a head pod it judged (one of another slot, or failed) by its uid: the pod's name
// is the epoch's, and a stale cache may show the pod that held the name before this one. Deleting by
// name would then remove the head the run has just created.

const admin = testClient();
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(admin, "delete-pod");
});
afterAll(async () => {
  await deleteNamespace(admin, namespace);
});

async function createPod(name: string): Promise<string> {
  const pod: k8s.V1Pod = {
    metadata: { name, namespace },
    spec: { containers: [{ name: "c", image: "registry.invalid/none:1" }] },
  };
  return (await admin.core.createNamespacedPod({ namespace, body: pod })).metadata!.uid!;
}

async function uidNow(name: string): Promise<string | null> {
  try {
    return (await admin.core.readNamespacedPod({ name, namespace })).metadata!.uid!;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

describe("deletePod with a uid", () => {
  it("leaves a newer pod of the same name alone and reads it instead; removes the pod of that uid", async () => {
    // Only what deletePod and Known use of a controller's context.
    const ctx = { client: admin } as unknown as ControllerContext;
    const earlier = await createPod("db-head-2");
    await admin.core.deleteNamespacedPod({ name: "db-head-2", namespace, gracePeriodSeconds: 0 });
    const current = await createPod("db-head-2");
    expect(current).not.toBe(earlier);

    // The uid of the pod a stale view showed: the API server refuses, and the current pod stays.
    const known = new Known(ctx);
    await deletePod(ctx, known, namespace, "db-head-2", 0, earlier);
    expect(await uidNow("db-head-2")).toBe(current);
    expect(known.pod(namespace, "db-head-2")?.metadata?.uid).toBe(current);

    // The current pod's uid: deleted, and known gone.
    await deletePod(ctx, known, namespace, "db-head-2", 0, current);
    expect(await uidNow("db-head-2")).toBeNull();
    expect(known.pod(namespace, "db-head-2")).toBeUndefined();
  });
});
