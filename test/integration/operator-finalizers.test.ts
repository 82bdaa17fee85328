import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CustomObject } from "../../src/kube/client.ts";
import { isConflict, isNotFound } from "../../src/kube/errors.ts";
import {
  addFinalizer,
  finalize,
  FinalizerConflictError,
  hasFinalizer,
  removeFinalizer,
} from "../../src/operator/finalizers.ts";
import { deleteNamespace, eventually, freshNamespace, testClient } from "../support/kube.ts";

// Finalizer edits against the real API server: a write based on a stale read fails as a conflict
// instead of overwriting the finalizers someone else set, for a built-in kind and a custom one.

const client = testClient();
let namespace: string;

// A custom resource of this test's own, so the custom-object path is exercised without depending
// on the operator's CRDs.
const group = "operator-test.understudy.dev";
const widgets = { group, version: "v1", plural: "widgets", kind: "Widget", namespaced: true };
const crdName = `widgets.${group}`;

beforeAll(async () => {
  namespace = await freshNamespace(client, "op-finalizers");
  await client.apply<k8s.V1CustomResourceDefinition>({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: crdName },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: { spec: { type: "object", x_kubernetes_preserve_unknown_fields: true } },
            },
          },
        },
      ],
    },
  });
  await eventually("the Widget CRD to be established", async () => {
    const crd = await k8s.KubernetesObjectApi.makeApiClient(client.kc).read<k8s.V1CustomResourceDefinition>({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: crdName },
    });
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
  });
  // Discovery can lag behind Established; a list succeeds once the resource is served.
  await eventually("widgets to be served", async () => {
    await client.listCustom(widgets, namespace);
    return true;
  });
});

afterAll(async () => {
  await deleteNamespace(client, namespace);
});

const A = "understudy.dev/a";
const B = "understudy.dev/b";
const C = "understudy.dev/c";

async function configMap(name: string): Promise<k8s.V1ConfigMap> {
  await client.core.createNamespacedConfigMap({ namespace, body: { metadata: { name } } });
  return readConfigMap(name);
}
async function readConfigMap(name: string): Promise<k8s.V1ConfigMap> {
  const cm = await client.core.readNamespacedConfigMap({ name, namespace });
  return { ...cm, apiVersion: "v1", kind: "ConfigMap" };
}

describe("finalizers on a built-in object", () => {
  it("adds and removes a finalizer, and does nothing when there is nothing to do", async () => {
    const cm = await configMap("plain");
    const added = await addFinalizer(client, cm, A);
    expect(added.metadata?.finalizers).toEqual([A]);
    expect(await addFinalizer(client, added, A)).toBe(added); // already there: no write
    const both = await addFinalizer(client, added, B);
    expect(both.metadata?.finalizers).toEqual([A, B]);
    const removed = await removeFinalizer(client, both, A);
    expect(removed.metadata?.finalizers).toEqual([B]);
    expect(await removeFinalizer(client, removed, A)).toBe(removed);
    await removeFinalizer(client, removed, B);
    expect((await readConfigMap("plain")).metadata?.finalizers).toBeUndefined();
  });

  it("fails with a conflict when two writers add from the same read, keeping the winner's finalizer", async () => {
    const snapshot = await configMap("race-empty");
    const results = await Promise.allSettled([
      addFinalizer(client, snapshot, A),
      addFinalizer(client, snapshot, B),
    ]);
    const failures = results.filter((r) => r.status === "rejected");
    expect(failures).toHaveLength(1);
    const reason = (failures[0] as PromiseRejectedResult).reason;
    expect(reason).toBeInstanceOf(FinalizerConflictError);
    expect(isConflict(reason)).toBe(true);
    const winner = results.findIndex((r) => r.status === "fulfilled") === 0 ? A : B;
    expect((await readConfigMap("race-empty")).metadata?.finalizers).toEqual([winner]);
    await removeFinalizer(client, await readConfigMap("race-empty"), winner);
  });

  it("refuses an add based on a stale list instead of overwriting it", async () => {
    const cm = await addFinalizer(client, await configMap("stale-add"), A);
    const stale = cm; // finalizers [A]
    await addFinalizer(client, await readConfigMap("stale-add"), B); // someone else: [A, B]
    await expect(addFinalizer(client, stale, C)).rejects.toBeInstanceOf(FinalizerConflictError);
    expect((await readConfigMap("stale-add")).metadata?.finalizers).toEqual([A, B]);
    // Read again, retry: now it applies.
    const retried = await addFinalizer(client, await readConfigMap("stale-add"), C);
    expect(retried.metadata?.finalizers).toEqual([A, B, C]);
    for (const f of [A, B, C]) await removeFinalizer(client, await readConfigMap("stale-add"), f);
  });

  it("removes the right entry when the list only grew, and refuses when it shifted", async () => {
    const stale = await addFinalizer(client, await configMap("stale-remove"), A); // [A]
    await addFinalizer(client, await readConfigMap("stale-remove"), B); // [A, B]
    // A is still at index 0: removing it from the stale read is correct, and B is kept.
    expect((await removeFinalizer(client, stale, A)).metadata?.finalizers).toEqual([B]);

    const before = await addFinalizer(client, await readConfigMap("stale-remove"), C); // [B, C]
    await removeFinalizer(client, await readConfigMap("stale-remove"), B); // someone removes B: [C]
    // C moved from index 1 to 0: the stale removal must fail, not remove something else.
    await expect(removeFinalizer(client, before, C)).rejects.toBeInstanceOf(FinalizerConflictError);
    expect((await readConfigMap("stale-remove")).metadata?.finalizers).toEqual([C]);
    await removeFinalizer(client, await readConfigMap("stale-remove"), C);
  });

  it("passes on an error that is not a conflict", async () => {
    const cm = await configMap("invalid");
    const err = await addFinalizer(client, cm, "not a valid finalizer").catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(FinalizerConflictError);
    expect((err as { code?: number }).code).toBe(422);
  });
});

describe("finalizers on a custom object", () => {
  const widget = (name: string) =>
    client.createCustom<CustomObject>(widgets, { metadata: { name, namespace }, spec: { size: 1 } });
  const readWidget = (name: string) => client.getCustom<CustomObject>(widgets, name, namespace);

  it("adds, conflicts on a stale read, and removes", async () => {
    const w = await widget("w1");
    const added = await addFinalizer(client, w, A);
    expect(added.metadata?.finalizers).toEqual([A]);
    await expect(addFinalizer(client, w, B)).rejects.toBeInstanceOf(FinalizerConflictError);
    expect((await readWidget("w1")).metadata?.finalizers).toEqual([A]);
    await removeFinalizer(client, added, A);
    expect((await readWidget("w1")).metadata?.finalizers).toBeUndefined();
  });

  it("finalize() guards a live object and cleans up a deleted one before it goes", async () => {
    const calls: string[] = [];
    const handlers = {
      apply: async (o: CustomObject) => {
        calls.push(`apply:${hasFinalizer(o, A)}`);
        return "applied";
      },
      cleanup: async () => {
        calls.push("cleanup");
        return "cleaned";
      },
    };
    expect(await finalize(client, await widget("w2"), A, handlers)).toBe("applied");
    expect(calls).toEqual(["apply:true"]); // the finalizer was in place before apply ran
    await client.deleteCustom(widgets, "w2", namespace);
    const deleting = await readWidget("w2"); // held by the finalizer
    expect(deleting.metadata?.deletionTimestamp).toBeDefined();
    expect(await finalize(client, deleting, A, handlers)).toBe("cleaned");
    expect(calls).toEqual(["apply:true", "cleanup"]);
    await eventually("the widget to be gone", async () => {
      try {
        await readWidget("w2");
        return false;
      } catch (err) {
        return isNotFound(err);
      }
    });
  });
});
