// The NetworkPolicies a StorageService owns, asked what they let through: who reaches the head's
// client port, the servers' port and the metrics port, for the default spec and for spec.clients
// and spec.metricsScrapers. The operator pod's labels are read from the plain manifests.
import { service } from "./fixtures.ts";
import type * as k8s from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseStorageService, type StorageService } from "../../../src/api/index.ts";
import {
  DATAPLANE_NODE_OPTIONS,
  METRICS_PORT,
  headPod,
} from "../../../src/controllers/storage-service/manifests.ts";
import {
  headNetworkPolicy,
  serverNetworkPolicy,
} from "../../../src/controllers/storage-service/network-policies.ts";
import { admitted, type PodPlace } from "../../support/network-policy.ts";

const REPO = join(import.meta.dirname, "../../..");
const OPERATOR_NS = "understudy-system";

/** The operator Deployment's pod labels, as the plain manifests (rendered from the chart) give them. */
function operatorPodLabelsFromManifests(): Record<string, string> {
  const docs = parseAllDocuments(readFileSync(join(REPO, "deploy/manifests/understudy.yaml"), "utf8"));
  const deployment = docs.map((d) => d.toJSON() as k8s.V1Deployment).find((d) => d?.kind === "Deployment")!;
  return deployment.spec!.template.metadata!.labels!;
}

const policies = (s: StorageService) => [
  headNetworkPolicy(s, { namespace: OPERATOR_NS }),
  serverNetworkPolicy(s),
];

const head: PodPlace = {
  namespace: "storage",
  labels: headPod(service(), 3, { kind: "zone", zone: "zone-a" }).metadata!.labels!,
};
const server: PodPlace = {
  namespace: "storage",
  labels: {
    "understudy.dev/service": "kv",
    "understudy.dev/role": "server",
    "understudy.dev/zone": "zone-a",
  },
};
const otherServicesHead: PodPlace = {
  namespace: "storage",
  labels: { "understudy.dev/service": "other", "understudy.dev/role": "head", "understudy.dev/epoch": "1" },
};
const appInNamespace: PodPlace = { namespace: "storage", labels: { app: "web" } };
const tenantInNamespace: PodPlace = {
  namespace: "storage",
  labels: {
    app: "web",
    "understudy.dev/role": "tenant",
    "understudy.dev/claim": "batch",
    "understudy.dev/slot": "s1",
  },
};
const tenantElsewhere: PodPlace = {
  namespace: "tenants",
  labels: { "understudy.dev/role": "tenant", "understudy.dev/claim": "batch" },
};
const appElsewhere: PodPlace = { namespace: "web", namespaceLabels: { team: "web" }, labels: { app: "web" } };
const tenantInTeamNamespace: PodPlace = {
  namespace: "web",
  namespaceLabels: { team: "web" },
  labels: { app: "web", "understudy.dev/role": "tenant", "understudy.dev/claim": "c" },
};
const operator: PodPlace = { namespace: OPERATOR_NS, labels: operatorPodLabelsFromManifests() };
const operatorLookalike: PodPlace = { namespace: "tenants", labels: operatorPodLabelsFromManifests() };
const placeholder: PodPlace = {
  namespace: OPERATOR_NS,
  labels: { "understudy.dev/role": "placeholder", "understudy.dev/slot": "s1" },
};
const prometheus: PodPlace = { namespace: "monitoring", labels: { "app.kubernetes.io/name": "prometheus" } };

const HEAD_PORT = 7000;
const SERVER_PORT = 7001;

describe("the NetworkPolicies of a StorageService with the default spec", () => {
  const s = service();
  const p = policies(s);

  it("are owned by the service, named after it, and select its heads and servers of every epoch", () => {
    const [headPolicy, serverPolicy] = p;
    expect(headPolicy!.metadata).toMatchObject({
      name: "kv-head",
      namespace: "storage",
      ownerReferences: [
        expect.objectContaining({ kind: "StorageService", name: "kv", uid: "uid-1", controller: true }),
      ],
    });
    expect(serverPolicy!.metadata!.name).toBe("kv-servers");
    expect(headPolicy!.spec!.podSelector).toEqual({
      matchLabels: { "understudy.dev/service": "kv", "understudy.dev/role": "head" },
    });
    expect(headPolicy!.spec!.policyTypes).toEqual(["Ingress"]);
  });

  it("head client port: pods of the service's namespace and the operator, nobody else", () => {
    const verdicts = Object.fromEntries(
      Object.entries({
        appInNamespace,
        operator,
        tenantInNamespace,
        tenantElsewhere,
        appElsewhere,
        operatorLookalike,
        placeholder,
        prometheus,
      }).map(([name, from]) => [name, admitted(p, from, head, HEAD_PORT)]),
    );
    expect(verdicts).toEqual({
      appInNamespace: true,
      operator: true,
      tenantInNamespace: false,
      tenantElsewhere: false,
      appElsewhere: false,
      operatorLookalike: false,
      placeholder: false,
      prometheus: false,
    });
  });

  it("server port: only the service's own heads and servers", () => {
    expect(admitted(p, head, server, SERVER_PORT)).toBe(true);
    expect(admitted(p, server, server, SERVER_PORT)).toBe(true);
    for (const from of [otherServicesHead, appInNamespace, tenantInNamespace, operator, prometheus]) {
      expect(admitted(p, from, server, SERVER_PORT)).toBe(false);
    }
  });

  it("metrics port: nobody, and no other port of a head or server opens", () => {
    for (const to of [head, server]) {
      for (const from of [prometheus, appInNamespace, head])
        expect(admitted(p, from, to, METRICS_PORT)).toBe(false);
    }
    expect(admitted(p, appInNamespace, head, 22)).toBe(false);
    expect(admitted(p, head, server, HEAD_PORT)).toBe(false);
  });
});

describe("spec.clients", () => {
  it("selects clients by namespace and pod labels; tenants among them stay out", () => {
    const p = policies(
      service((spec) => {
        spec.clients = {
          namespaceSelector: { matchLabels: { team: "web" } },
          podSelector: { matchLabels: { app: "web" } },
        };
      }),
    );
    expect(admitted(p, appElsewhere, head, HEAD_PORT)).toBe(true);
    expect(admitted(p, tenantInTeamNamespace, head, HEAD_PORT)).toBe(false);
    // The service's own namespace is not labelled team=web: its pods are no longer clients.
    expect(admitted(p, appInNamespace, head, HEAD_PORT)).toBe(false);
    expect(admitted(p, operator, head, HEAD_PORT)).toBe(true);
    expect(admitted(p, appElsewhere, server, SERVER_PORT)).toBe(false);
  });

  it("an empty namespace selector means every namespace, still without tenants", () => {
    const p = policies(service((spec) => (spec.clients = { namespaceSelector: {} })));
    expect(admitted(p, appElsewhere, head, HEAD_PORT)).toBe(true);
    expect(admitted(p, appInNamespace, head, HEAD_PORT)).toBe(true);
    expect(admitted(p, tenantElsewhere, head, HEAD_PORT)).toBe(false);
    expect(admitted(p, tenantInNamespace, head, HEAD_PORT)).toBe(false);
  });

  it("lets tenant pods in only when the pod selector names the tenant labels itself", () => {
    const p = policies(
      service((spec) => {
        spec.clients = {
          podSelector: {
            matchLabels: { "understudy.dev/claim": "batch" },
            matchExpressions: [{ key: "understudy.dev/role", operator: "In", values: ["tenant"] }],
          },
        };
      }),
    );
    expect(admitted(p, tenantInNamespace, head, HEAD_PORT)).toBe(true);
    expect(admitted(p, appInNamespace, head, HEAD_PORT)).toBe(false);
    expect(admitted(p, tenantElsewhere, head, HEAD_PORT)).toBe(false);
  });

  it("is refused when an In requirement has no values", () => {
    const parsed = parseStorageService({
      apiVersion: "understudy.dev/v1alpha1",
      kind: "StorageService",
      metadata: { name: "kv", namespace: "storage" },
      spec: {
        pool: "p",
        zones: ["zone-a"],
        replicationFactor: 1,
        head: { image: "i" },
        servers: { image: "i", storage: { size: "1Gi" } },
        clients: { podSelector: { matchExpressions: [{ key: "app", operator: "In" }] } },
      },
    });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(/In and NotIn need values/);
  });
});

describe("spec.metricsScrapers", () => {
  const p = policies(
    service((spec) => {
      spec.metricsScrapers = {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
        podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
      };
    }),
  );

  it("reach the metrics port of heads and servers, and nothing else", () => {
    expect(admitted(p, prometheus, head, METRICS_PORT)).toBe(true);
    expect(admitted(p, prometheus, server, METRICS_PORT)).toBe(true);
    expect(admitted(p, prometheus, head, HEAD_PORT)).toBe(false);
    expect(admitted(p, prometheus, server, SERVER_PORT)).toBe(false);
    expect(admitted(p, { ...prometheus, namespace: "storage" }, head, METRICS_PORT)).toBe(false);
  });
});

describe("the data plane container", () => {
  it("has a named metrics port the data plane is told to listen on, and a capped heap", () => {
    const container = headPod(service(), 1, { kind: "zone", zone: "zone-a" }).spec!.containers[0]!;
    expect(container.env).toContainEqual({ name: "NODE_OPTIONS", value: DATAPLANE_NODE_OPTIONS });
    expect(container.ports).toContainEqual({ name: "metrics", containerPort: METRICS_PORT, protocol: "TCP" });
    expect(container.env).toContainEqual({
      name: "UNDERSTUDY_METRICS_LISTEN",
      value: `0.0.0.0:${METRICS_PORT}`,
    });
  });
});
