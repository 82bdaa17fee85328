import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restartApiserver } from "../cluster/cluster.ts";
import { withoutManagedFields } from "../../src/controllers/cache-transforms.ts";
import { Informer, type Indexer } from "../../src/kube/informer.ts";
import { deleteNamespace, eventually, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";

// The informer must not miss a change: not across an API server restart, not when changes land
// while it is disconnected, and not when its resourceVersion has expired (410 Gone).

const client = testClient();
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(client, "informer");
});
afterAll(async () => {
  await deleteNamespace(client, namespace);
});

const configMap = (name: string, value: string): k8s.V1ConfigMap => ({
  metadata: { name, labels: { suite: "informer" } },
  data: { value },
});

describe("Informer", () => {
  it("lists, watches, and converges after the API server restarts with changes it did not see", async () => {
    await client.core.createNamespacedConfigMap({ namespace, body: configMap("before", "1") });
    await client.core.createNamespacedConfigMap({ namespace, body: configMap("doomed", "1") });

    const informer = new Informer<k8s.V1ConfigMap>(testKubeConfig(), {
      resource: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
      namespace,
      labelSelector: "suite=informer",
      maxBackoffMs: 300,
      transform: withoutManagedFields,
    });
    const byValue: Indexer<k8s.V1ConfigMap> = { name: "value", keyOf: (c) => c.data?.value };
    const valued = (value: string) =>
      informer
        .byIndex(byValue, value)
        .map((c) => c.metadata!.name)
        .sort();
    const deletes: string[] = [];
    informer.on((e) => {
      if (e.type === "delete") deletes.push(e.object.metadata!.name!);
    });
    await informer.start();
    expect(
      informer
        .list()
        .map((c) => c.metadata!.name)
        .sort(),
    ).toEqual(["before", "doomed"]);

    // Cached as the transform shapes them: the API server's managedFields are never held.
    expect(informer.list().every((c) => c.metadata?.managedFields === undefined)).toBe(true);
    expect(valued("1")).toEqual(["before", "doomed"]);

    const beforeObject = informer.get("before", namespace);
    const ones = informer.byIndex(byValue, "1");
    await client.core.createNamespacedConfigMap({ namespace, body: configMap("live", "1") });
    await eventually("the live change", () => informer.get("live", namespace));
    // A change reaches the index; an unchanged object keeps its identity (derived views stay valid).
    expect(valued("1")).toEqual(["before", "doomed", "live"]);
    expect(informer.byIndex(byValue, "1")).not.toBe(ones);
    expect(informer.get("before", namespace)).toBe(beforeObject);

    // Down goes the API server; as soon as it is back, and before the informer's backoff lets it
    // reconnect, changes land that it can only learn by resuming or re-listing.
    await restartApiserver(500);
    await client.core.createNamespacedConfigMap({ namespace, body: configMap("while-away", "1") });
    await client.core.patchNamespacedConfigMap({
      name: "before",
      namespace,
      body: [{ op: "replace", path: "/data/value", value: "2" }],
    });
    await client.core.deleteNamespacedConfigMap({ name: "doomed", namespace });

    await eventually(
      "the changes made while the informer was away",
      () => {
        const names = informer
          .list()
          .map((c) => c.metadata!.name)
          .sort();
        return (
          names.join() === "before,live,while-away" && informer.get("before", namespace)?.data?.value === "2"
        );
      },
      60_000,
    );
    expect(deletes).toContain("doomed");
    // The index followed the changes the re-list delivered.
    expect(valued("1")).toEqual(["live", "while-away"]);
    expect(valued("2")).toEqual(["before"]);
    expect(informer.list().every((c) => c.metadata?.managedFields === undefined)).toBe(true);
    // A restarted API server's watch cache starts at the current revision: the informer's resume
    // point is too old (410 Gone), so it must have listed again and delivered the difference.
    expect(informer.relists).toBeGreaterThanOrEqual(2);
    informer.stop();
  });
});
