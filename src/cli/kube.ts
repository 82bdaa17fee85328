// Connecting as kubectl would: --kubeconfig or $KUBECONFIG, --context, and the context's namespace.
import { KubeClient } from "../kube/client.ts";
import { loadKubeConfig } from "../kube/config.ts";

export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
}

export interface Connection {
  client: KubeClient;
  /** The namespace of the chosen context, else "default": what -n defaults to. */
  namespace: string;
}

export function connect(options: ConnectOptions): Connection {
  const kc = loadKubeConfig(options.kubeconfig);
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new Error(
        `context "${options.context}" not found in the kubeconfig (known: ${known.join(", ") || "none"})`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace || "default";
  return { client: new KubeClient(kc, "understudy-cli"), namespace };
}
