// What a network plugin that enforces NetworkPolicy (Calico, Cilium, ...) would let through, for
// ingress, following the Kubernetes rules: a pod selected by no policy takes everything; a pod
// selected by one takes only what some rule of a selecting policy allows (peers and ports). The
// test cluster has no such plugin, so the tests ask this of the policies the operator wrote.
import type * as k8s from "@kubernetes/client-node";

export interface PodPlace {
  readonly namespace: string;
  /** Labels of the namespace (kubernetes.io/metadata.name is added). */
  readonly namespaceLabels?: Record<string, string>;
  readonly labels: Record<string, string>;
}

function selects(selector: k8s.V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const ok =
      e.operator === "In"
        ? has && (e.values ?? []).includes(labels[e.key]!)
        : e.operator === "NotIn"
          ? !has || !(e.values ?? []).includes(labels[e.key]!)
          : e.operator === "Exists"
            ? has
            : e.operator === "DoesNotExist"
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

const namespaceLabelsOf = (p: PodPlace) => ({
  ...p.namespaceLabels,
  "kubernetes.io/metadata.name": p.namespace,
});

function peerAdmits(peer: k8s.V1NetworkPolicyPeer, policyNamespace: string, from: PodPlace): boolean {
  if (peer.ipBlock) return false;
  if (peer.namespaceSelector) {
    return selects(peer.namespaceSelector, namespaceLabelsOf(from)) && selects(peer.podSelector, from.labels);
  }
  return from.namespace === policyNamespace && selects(peer.podSelector, from.labels);
}

/** Whether the plugin would let `from` open a TCP connection to `to` on `port`. */
export function admitted(
  policies: readonly k8s.V1NetworkPolicy[],
  from: PodPlace,
  to: PodPlace,
  port: number,
): boolean {
  const selecting = policies.filter(
    (p) =>
      p.metadata!.namespace === to.namespace &&
      (p.spec!.policyTypes ?? ["Ingress"]).includes("Ingress") &&
      selects(p.spec!.podSelector, to.labels),
  );
  if (selecting.length === 0) return true;
  return selecting.some((p) =>
    (p.spec!.ingress ?? []).some((rule) => {
      const portOk =
        rule.ports === undefined ||
        rule.ports.length === 0 ||
        rule.ports.some(
          (rp) => (rp.protocol ?? "TCP") === "TCP" && (rp.port === undefined || rp.port === port),
        );
      const peers = rule._from;
      const fromOk =
        peers === undefined ||
        peers.length === 0 ||
        peers.some((peer) => peerAdmits(peer, p.metadata!.namespace!, from));
      return portOk && fromOk;
    }),
  );
}
