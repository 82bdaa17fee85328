import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseStorageService, storageServiceResource, type StorageService } from "../../src/api/index.ts";
import { newWriteMemory, type ControllerContext } from "../../src/controllers/context.ts";
import { currentService, writeStatus } from "../../src/controllers/storage-service/effects.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { RateLimitedKubeConfig } from "../../src/operator/client-rate-limit.ts";
import { CountingBucket } from "../support/counting-bucket.ts";
import { installCrds } from "../support/crds.ts";
import { createService, getService } from "../support/failover.ts";
import { deleteNamespace, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";

// A step machine reads the StorageService before its first effect, unless the cached object is at
// the resourceVersion the operator's own last status write returned: then nothing it wrote is
// missing. Requests are counted by the rate limiter's bucket, which every request passes.

const admin = testClient();
let namespace: string;

beforeAll(async () => {
  await installCrds();
  namespace = await freshNamespace(admin, "current-svc");
  await createService(admin, "current-svc", namespace, "kv", "no-pool");
});
afterAll(async () => {
  await deleteNamespace(admin, namespace);
});

async function stored(): Promise<StorageService> {
  const parsed = parseStorageService(await getService(admin, namespace, "kv"));
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

describe("currentService", () => {
  it("trusts a cached service at the operator's own last write, and reads one that is not", async () => {
    const bucket = new CountingBucket(1000, 1000);
    const client = new KubeClient(new RateLimitedKubeConfig(testKubeConfig(), bucket), "current-test");
    // Only what currentService and writeStatus use of a controller's context.
    const ctx = { client, writes: newWriteMemory() } as unknown as ControllerContext;
    const before = await stored();

    // Nothing written by this operator yet: read.
    let taken = bucket.taken;
    expect((await currentService(ctx, before))?.metadata.resourceVersion).toBe(
      before.metadata.resourceVersion,
    );
    expect(bucket.taken - taken).toBe(1);

    const write = await writeStatus(ctx, before, { failoverCount: 1 });
    if (!write.ok) throw new Error(`status write failed: ${write.reason}`);
    const written = write.service;

    // The cache at the operator's own write: no request.
    taken = bucket.taken;
    expect(await currentService(ctx, written)).toBe(written);
    expect(bucket.taken - taken).toBe(0);

    // A cache still at the version before the write: read, and get the write.
    taken = bucket.taken;
    const fresh = await currentService(ctx, before);
    expect(bucket.taken - taken).toBe(1);
    expect(fresh?.metadata.resourceVersion).toBe(written.metadata.resourceVersion);
    expect(fresh?.status?.failoverCount).toBe(1);

    // Someone else wrote after the operator: the cache at that version is read again.
    await admin.patchCustomStatus(storageServiceResource, "kv", namespace, { failoverCount: 2 }, undefined);
    const changed = await stored();
    taken = bucket.taken;
    expect((await currentService(ctx, changed))?.status?.failoverCount).toBe(2);
    expect(bucket.taken - taken).toBe(1);
  });
});
