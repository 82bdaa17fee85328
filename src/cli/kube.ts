// Connecting as kubectl would: --kubeconfig or $KUBECONFIG, --context, and the context's namespace.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
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

/**
 * Whether any kubeconfig source exists. Without one the client library falls back to
 * http://localhost:8080, whose refusal would say nothing useful.
 */
export function hasKubeconfigSource(env: NodeJS.ProcessEnv = process.env, home = homedir()): boolean {
  return !!env.KUBECONFIG || !!env.KUBERNETES_SERVICE_HOST || existsSync(join(home, ".kube", "config"));
}

export function connect(options: ConnectOptions): Connection {
  if (!options.kubeconfig && !hasKubeconfigSource())
    throw new Error("no kubeconfig: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config");
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
