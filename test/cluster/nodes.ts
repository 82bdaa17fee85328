import type { V1Node } from "@kubernetes/client-node";
import { nodesPerZone, zones } from "./config.ts";

/** A fake node that KWOK manages, sized like a modest cloud instance. */
export function fakeNode(name: string, zone: string): V1Node {
  const resources = { cpu: "8", memory: "32Gi", pods: "110", "ephemeral-storage": "100Gi" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        type: "kwok",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/region": "local",
        "topology.kubernetes.io/zone": zone,
      },
    },
    status: { allocatable: resources, capacity: resources },
  };
}

export function fakeNodes(): V1Node[] {
  return zones.flatMap((zone) =>
    Array.from({ length: nodesPerZone }, (_, i) => fakeNode(`kwok-${zone}-${i + 1}`, zone)),
  );
}
