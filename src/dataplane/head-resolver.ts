// Finding the current head from inside the cluster: the head Service selects only the current
// epoch's head pod, so its ready EndpointSlice endpoint is the head to talk to. The resolver also
// says whom to expect there (the endpoint's pod, the StorageService that owns the Service), so the
// client refuses another process that answers at that address.
import { CoreV1Api, DiscoveryV1Api, KubeConfig, type V1EndpointSlice } from "@kubernetes/client-node";
import type { HeadResolver, HeadTarget } from "./client.ts";

/** The first ready endpoint in the slices (IPv6 bracketed), with its pod when the slice names it. Pure. */
export function pickHead(slices: readonly V1EndpointSlice[], portName?: string): HeadTarget | null {
  for (const slice of slices) {
    const port = (slice.ports ?? []).find((p) => portName === undefined || p.name === portName)?.port;
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const ready = endpoint.conditions?.ready !== false && endpoint.conditions?.terminating !== true;
      const address = endpoint.addresses[0];
      if (ready && address !== undefined) {
        const url = `http://${slice.addressType === "IPv6" ? `[${address}]` : address}:${port}`;
        const pod = endpoint.targetRef?.kind === "Pod" ? endpoint.targetRef.name : undefined;
        return pod ? { url, pod } : { url };
      }
    }
  }
  return null;
}

/** The URL of a ready endpoint in the slices, or null. Pure. */
export function pickHeadUrl(slices: readonly V1EndpointSlice[], portName?: string): string | null {
  return pickHead(slices, portName)?.url ?? null;
}

export interface EndpointSliceResolverOptions {
  readonly namespace: string;
  /** The head Service's name (slices carry the label kubernetes.io/service-name). */
  readonly service: string;
  readonly portName?: string;
  /**
   * The StorageService's UID the head must name. By default the UID of the StorageService that owns
   * the head Service (its controller ownerReference), read with the slices.
   */
  readonly serviceUid?: string;
  readonly kubeConfig?: KubeConfig;
}

/** A HeadResolver reading the head Service's EndpointSlices. Each call asks the API server afresh. */
export function endpointSliceHeadResolver(options: EndpointSliceResolverOptions): HeadResolver {
  const kubeConfig =
    options.kubeConfig ??
    (() => {
      const kc = new KubeConfig();
      kc.loadFromDefault();
      return kc;
    })();
  const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const ownerUid = async () => {
    if (options.serviceUid !== undefined) return options.serviceUid;
    const svc = await core.readNamespacedService({ name: options.service, namespace: options.namespace });
    // A Service no StorageService owns (a user's own) gives no UID: then only role and pod are checked.
    return svc.metadata?.ownerReferences?.find((o) => o.controller && o.kind === "StorageService")?.uid;
  };
  return async () => {
    const [list, serviceUid] = await Promise.all([
      discovery.listNamespacedEndpointSlice({
        namespace: options.namespace,
        labelSelector: `kubernetes.io/service-name=${options.service}`,
      }),
      ownerUid(),
    ]);
    const head = pickHead(list.items, options.portName);
    if (head === null)
      throw new Error(`service ${options.namespace}/${options.service} has no ready head endpoint`);
    return serviceUid === undefined ? head : { ...head, serviceUid };
  };
}
