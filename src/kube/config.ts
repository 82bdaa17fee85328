import * as k8s from "@kubernetes/client-node";

/**
 * Loads the kubeconfig the way kubectl does: an explicit path, else $KUBECONFIG, else the in-cluster
 * service account, else ~/.kube/config.
 */
export function loadKubeConfig(path?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster())
    throw new Error("no Kubernetes cluster configured: set KUBECONFIG or run in a pod");
  return kc;
}
