import { homedir } from "node:os";
import { join } from "node:path";

// Versions of the test cluster's components; build-binaries.sh reads the same values from the environment.
export const versions = {
  kubernetes: process.env.KUBE_VERSION ?? "v1.36.3",
  etcd: process.env.ETCD_VERSION ?? "v3.6.16",
  kwok: process.env.KWOK_VERSION ?? "v0.8.0",
  helm: process.env.HELM_VERSION ?? "v3.21.4",
  prometheus: process.env.PROMETHEUS_VERSION ?? "v0.316.0",
} as const;

export const cacheDir = process.env.UNDERSTUDY_CACHE ?? join(homedir(), ".cache", "understudy");
const binDir = join(cacheDir, "bin");
export const clusterDir = process.env.UNDERSTUDY_CLUSTER_DIR ?? join(cacheDir, "cluster");
export const kubeconfigPath = join(clusterDir, "kubeconfig");

export const binaries = {
  etcd: join(binDir, `etcd-${versions.etcd}`),
  kubeApiserver: join(binDir, `kube-apiserver-${versions.kubernetes}`),
  kubeControllerManager: join(binDir, `kube-controller-manager-${versions.kubernetes}`),
  kubeScheduler: join(binDir, `kube-scheduler-${versions.kubernetes}`),
  kubectl: join(binDir, `kubectl-${versions.kubernetes}`),
  kwok: join(binDir, `kwok-${versions.kwok}`),
  helm: join(binDir, `helm-${versions.helm}`),
} as const;

/** Built beside the cluster's binaries, not needed to start it: the alert rule tests run promtool. */
export const tools = {
  promtool: join(binDir, `promtool-${versions.prometheus}`),
} as const;

// Every listener is on loopback; the base moves them all when another cluster already uses the ports.
const base = Number(process.env.UNDERSTUDY_CLUSTER_PORT_BASE ?? 16400);
export const ports = {
  apiserver: base + 43,
  etcdClient: base + 79,
  etcdPeer: base + 80,
  controllerManager: base + 57,
  scheduler: base + 59,
  kwok: base + 47,
} as const;

// KWOK hands pod IPs from this loopback range, so test tooling can bind real processes to them.
export const podCidr = process.env.UNDERSTUDY_POD_CIDR ?? "127.10.0.0/16";
export const serviceCidr = "10.96.0.0/16";

export const zones = ["zone-a", "zone-b", "zone-c"] as const;
export const nodesPerZone = 2;
export const adminToken = "understudy-test-admin";
