import type * as k8s from "@kubernetes/client-node";
import { labels, roles } from "../../src/controllers/labels.ts";
import { Informer } from "../../src/kube/informer.ts";
import { core } from "../../src/kube/resources.ts";

// Records every state of the slot Leases and of the pods on slots (tenant pods, and head pods a
// failover started on a slot) a test can observe, then checks the ledger's invariants over the whole
// history. Positions are etcd revisions (resourceVersions of one etcd are one global counter), which
// orders a Lease change against a pod creation.

export interface LeaseState {
  rv: number;
  lease: string;
  holder: string;
}
export interface PodLife {
  name: string;
  role: "tenant" | "head";
  slot: string;
  /**
   * The holder identity the slot's Lease must name while the pod may run: claim:… or service:….
   * A tenant's own pod (workload mode) joins the history when it is given a slot (labelled with it).
   */
  owner: string;
  createdRv: number;
  deletedRv?: number;
}

export class LedgerHistory {
  readonly leases: LeaseState[] = [];
  readonly pods = new Map<string, PodLife>();
  private readonly leaseInformer: Informer<k8s.V1Lease>;
  private readonly podInformer: Informer<k8s.V1Pod>;
  private lastRv = 0;

  constructor(kc: k8s.KubeConfig, operatorNamespace: string, tenantNamespace: string, pool: string) {
    this.leaseInformer = new Informer<k8s.V1Lease>(kc, {
      resource: core.leases,
      namespace: operatorNamespace,
      labelSelector: `understudy.dev/pool=${pool}`,
    });
    this.podInformer = new Informer<k8s.V1Pod>(kc, {
      resource: core.pods,
      namespace: tenantNamespace,
      labelSelector: "understudy.dev/role in (tenant,head),understudy.dev/slot",
    });
    this.leaseInformer.on((e) => {
      const rv = Number(e.object.metadata!.resourceVersion);
      this.lastRv = Math.max(this.lastRv, rv);
      const holder = e.type === "delete" ? "<deleted>" : (e.object.spec?.holderIdentity ?? "");
      this.leases.push({ rv, lease: e.object.metadata!.name!, holder });
    });
    this.podInformer.on((e) => {
      const pod = e.object;
      const uid = pod.metadata!.uid!;
      const rv = Number(pod.metadata!.resourceVersion);
      this.lastRv = Math.max(this.lastRv, rv);
      if (e.type === "add" && !this.pods.has(uid)) {
        const podLabels = pod.metadata!.labels!;
        const head = podLabels[labels.role] === roles.head;
        this.pods.set(uid, {
          name: pod.metadata!.name!,
          role: head ? "head" : "tenant",
          slot: podLabels[labels.slot]!,
          owner: head
            ? `service:${pod.metadata!.namespace}/${podLabels[labels.service]}`
            : `claim:${pod.metadata!.namespace}/${podLabels[labels.claim]}`,
          createdRv: rv,
        });
      } else if (e.type === "delete" || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") {
        // A finished pod occupies its slot no more than a deleted one.
        const life = this.pods.get(uid);
        if (life && life.deletedRv === undefined) life.deletedRv = rv;
      }
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.leaseInformer.start(), this.podInformer.start()]);
  }

  stop(): void {
    this.leaseInformer.stop();
    this.podInformer.stop();
  }

  /** The holder of a lease as of revision `rv` (the last change at or before it). */
  holderAt(lease: string, rv: number): string | undefined {
    let holder: string | undefined;
    for (const s of this.leases) if (s.lease === lease && s.rv <= rv) holder = s.holder;
    return holder;
  }

  /** Every broken invariant, in words; empty when the history is clean. */
  violations(): string[] {
    const out: string[] = [];
    this.leases.sort((a, b) => a.rv - b.rv);
    const bySlot = new Map<string, PodLife[]>();
    for (const life of this.pods.values()) {
      // A pod is created on a slot only while its owner (claim or service) holds the slot.
      const holder = this.holderAt(life.slot, life.createdRv);
      if (holder !== life.owner)
        out.push(`pod ${life.name} created at ${life.createdRv} on ${life.slot} held by "${holder}"`);
      // A head gives its slot back only once it is gone (a tenant's is taken first, then its pod goes).
      if (life.role === "head") {
        const end = life.deletedRv ?? Number.POSITIVE_INFINITY;
        const lost = this.leases.find(
          (s) => s.lease === life.slot && s.rv > life.createdRv && s.rv < end && s.holder !== life.owner,
        );
        if (lost)
          out.push(
            `slot ${life.slot} went to "${lost.holder}" at ${lost.rv} while head ${life.name} existed`,
          );
      }
      bySlot.set(life.slot, [...(bySlot.get(life.slot) ?? []), life]);
    }
    // No slot ever has two pods at once.
    for (const [slot, lives] of bySlot) {
      lives.sort((a, b) => a.createdRv - b.createdRv);
      for (let i = 1; i < lives.length; i++) {
        const prev = lives[i - 1]!;
        if (prev.deletedRv === undefined || prev.deletedRv > lives[i]!.createdRv)
          out.push(
            `slot ${slot}: pod ${lives[i]!.name} created at ${lives[i]!.createdRv} while ${prev.name} still existed`,
          );
      }
    }
    return out;
  }
}
