// A kubelet stand-in for head pods whose process would start in no time: it claims each head pod of
// the given namespace (so KWOK leaves its readiness to us, see test/cluster/stages.ts) and reports
// it Ready as soon as KWOK shows it Running. Without it, KWOK makes an unclaimed head Ready only
// after a fixed delay meant for the pod runner to claim it first, and that delay would be timed as
// the operator's. It records when it reported each pod Ready, so the operator's own reaction
// (Ready reported -> Service switched) can be told apart from the head's start.
import type * as k8s from "@kubernetes/client-node";
import { labels } from "../src/controllers/labels.ts";
import { mergePatchOptions, type KubeClient } from "../src/kube/client.ts";
import { isNotFound } from "../src/kube/errors.ts";
import { Informer } from "../src/kube/informer.ts";
import { core } from "../src/kube/resources.ts";
import { kubeletAnnotation } from "../test/cluster/stages.ts";
import { claimAsKubelet, kubeletStatusPatch } from "../test/support/pod-runner.ts";

export class InstantKubelet {
  readonly #client: KubeClient;
  readonly #pods: Informer<k8s.V1Pod>;
  /** Pods (by uid) claimed or being claimed. */
  readonly #claimed = new Set<string>();
  /** When each pod (by name) was last reported Ready, in ms since the epoch. */
  readonly #readyAt = new Map<string, number>();

  constructor(kubeConfig: k8s.KubeConfig, client: KubeClient, namespace: string) {
    this.#client = client;
    this.#pods = new Informer<k8s.V1Pod>(kubeConfig, {
      resource: core.pods,
      namespace,
      labelSelector: `${labels.role}=head`,
      resyncMs: 5_000,
      maxBackoffMs: 500,
    });
    this.#pods.on((e) => {
      if (e.type !== "delete") void this.#handle(e.object);
    });
  }

  start(): Promise<void> {
    return this.#pods.start();
  }

  stop(): void {
    this.#pods.stop();
  }

  /** When `pod` was reported Ready (ms since the epoch), if it was. */
  readyAt(pod: string): number | undefined {
    return this.#readyAt.get(pod);
  }

  async #handle(pod: k8s.V1Pod): Promise<void> {
    const { name, namespace, uid } = pod.metadata!;
    if (pod.metadata?.deletionTimestamp) return;
    try {
      if (!pod.metadata?.annotations?.[kubeletAnnotation]) {
        if (this.#claimed.has(uid!)) return;
        this.#claimed.add(uid!);
        await claimAsKubelet(this.#client, pod, "bench");
        return;
      }
      if (pod.status?.phase !== "Running") return;
      const patch = kubeletStatusPatch(
        pod,
        { running: true, ready: true, restartCount: 0 },
        new Date().toISOString(),
      );
      if (!patch) return;
      const reported = Date.now();
      await this.#client.core.patchNamespacedPodStatus(
        { name: name!, namespace: namespace!, body: patch },
        mergePatchOptions,
      );
      if (patch.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
        this.#readyAt.set(name!, reported);
    } catch (err) {
      if (!isNotFound(err)) console.error(`instant kubelet: ${name}: ${String(err)}`);
    }
  }
}
