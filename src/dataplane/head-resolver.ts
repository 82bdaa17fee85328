// Finding the current head from inside the cluster: the head Service selects only the
// current epoch's head pod, so its ready EndpointSlice endpoint is the head to talk to.
import { DiscoveryV1Api, KubeConfig, type V1EndpointSlice } from "@kubernetes/client-node";
import type { HeadResolver } from "./client.ts";

/** The URL of a ready endpoint in the slices (IPv6 bracketed), or null. Pure. */
export function pickHeadUrl(slices: readonly V1EndpointSlice[], portName?: string): string | null {
  for (const slice of slices) {
    const port = (slice.ports ?? []).find((p) => portName === undefined || p.name === portName)?.port;
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const ready = endpoint.conditions?.ready !== false && endpoint.conditions?.terminating !== true;
      const address = endpoint.addresses[0];
      if (ready && address !== undefined) {
        return `http://${slice.addressType === "IPv6" ? `[${address}]` : address}:${port}`;
      }
    }
  }
  return null;
}

export interface EndpointSliceResolverOptions {
  readonly namespace: string;
  /** The head Service's name (slices carry the label kubernetes.io/service-name). */
  readonly service: string;
  readonly portName?: string;
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
  const api = kubeConfig.makeApiClient(DiscoveryV1Api);
  return async () => {
    const list = await api.listNamespacedEndpointSlice({
      namespace: options.namespace,
      labelSelector: `kubernetes.io/service-name=${options.service}`,
    });
    const url = pickHeadUrl(list.items, options.portName);
    if (url === null)
      throw new Error(`service ${options.namespace}/${options.service} has no ready head endpoint`);
    return url;
  };
}
