// The NetworkPolicies a StorageService owns, as pure functions of the service and of where the
// operator runs. Ingress only, one policy per pod role:
//   servers: the service's own heads and servers, on the server port;
//   head:    the clients of spec.clients (default: the service's namespace), and the operator's
//            probe, on the client port;
//   both:    spec.metricsScrapers on the metrics port.
// Tenant pods are never clients by default: they carry understudy.dev/role=tenant and
// understudy.dev/claim, and the client rule leaves both out unless the spec names those labels.
// A network plugin that enforces NetworkPolicy (Calico, Cilium, ...) is what makes them hold.
import type * as k8s from "@kubernetes/client-node";
import type { LabelSelector, PeerSelector, StorageService } from "../../api/index.ts";
import { labels, operatorPodLabels, roles } from "../labels.ts";
import { METRICS_PORT, meta } from "./manifests.ts";
import { headPolicyName, serverPolicyName } from "./names.ts";

/** The label every namespace carries with its own name (set by the API server). */
const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** Where the operator runs: its probe of the head comes from there. */
export interface OperatorPlace {
  readonly namespace: string;
}

const tcp = (port: number): k8s.V1NetworkPolicyPort => ({ protocol: "TCP", port });

function rolePods(service: StorageService, role: string): k8s.V1LabelSelector {
  return { matchLabels: { [labels.service]: service.metadata.name!, [labels.role]: role } };
}

/** Whether a selector says anything about a label itself (then it is taken as written). */
function names(selector: LabelSelector, key: string): boolean {
  return (
    Object.hasOwn(selector.matchLabels ?? {}, key) ||
    (selector.matchExpressions ?? []).some((e) => e.key === key)
  );
}

/**
 * The head's client peer: spec.clients, or every pod of the service's namespace, in both cases
 * without tenant pods unless the pod selector names the tenant labels itself (an explicit choice).
 */
function clientPeer(clients: PeerSelector | undefined): k8s.V1NetworkPolicyPeer {
  const selector: LabelSelector = clients?.podSelector ?? {};
  const exclusions: k8s.V1LabelSelectorRequirement[] = [];
  if (!names(selector, labels.role)) {
    exclusions.push({ key: labels.role, operator: "NotIn", values: [roles.tenant] });
  }
  if (!names(selector, labels.claim)) exclusions.push({ key: labels.claim, operator: "DoesNotExist" });
  const podSelector: k8s.V1LabelSelector = {
    ...(selector.matchLabels ? { matchLabels: selector.matchLabels } : {}),
    ...(selector.matchExpressions || exclusions.length > 0
      ? { matchExpressions: [...(selector.matchExpressions ?? []), ...exclusions] }
      : {}),
  };
  return clients?.namespaceSelector
    ? { namespaceSelector: clients.namespaceSelector, podSelector }
    : { podSelector };
}

/** The operator's pods, in the operator's namespace. */
function operatorPeer(operator: OperatorPlace): k8s.V1NetworkPolicyPeer {
  return {
    namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: operator.namespace } },
    podSelector: { matchLabels: { ...operatorPodLabels } },
  };
}

function scraperRules(service: StorageService): k8s.V1NetworkPolicyIngressRule[] {
  const scrapers = service.spec.metricsScrapers;
  if (!scrapers) return [];
  const peer: k8s.V1NetworkPolicyPeer = scrapers.namespaceSelector
    ? { namespaceSelector: scrapers.namespaceSelector, podSelector: scrapers.podSelector ?? {} }
    : { podSelector: scrapers.podSelector ?? {} };
  return [{ _from: [peer], ports: [tcp(METRICS_PORT)] }];
}

function policy(
  service: StorageService,
  name: string,
  role: string,
  ingress: k8s.V1NetworkPolicyIngressRule[],
): k8s.V1NetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(service, name, { [labels.role]: role }),
    spec: { podSelector: rolePods(service, role), policyTypes: ["Ingress"], ingress },
  };
}

/** Head pods of every epoch: clients and the operator's probe on the client port, scrapers on metrics. */
export function headNetworkPolicy(service: StorageService, operator: OperatorPlace): k8s.V1NetworkPolicy {
  return policy(service, headPolicyName(service.metadata.name!), roles.head, [
    {
      _from: [clientPeer(service.spec.clients), operatorPeer(operator)],
      ports: [tcp(service.spec.head.port)],
    },
    ...scraperRules(service),
  ]);
}

/** Server pods: the service's own heads (routing, fencing) and servers (anti-entropy); scrapers on metrics. */
export function serverNetworkPolicy(service: StorageService): k8s.V1NetworkPolicy {
  return policy(service, serverPolicyName(service.metadata.name!), roles.server, [
    {
      _from: [
        { podSelector: rolePods(service, roles.head) },
        { podSelector: rolePods(service, roles.server) },
      ],
      ports: [tcp(service.spec.servers.port)],
    },
    ...scraperRules(service),
  ]);
}
