import { join } from "node:path";
import { binaries, clusterDir, podCidr, ports, serviceCidr } from "./config.ts";

// How each control-plane process of the test cluster is started. Flags follow what envtest and
// kwokctl give a local API server; everything listens on loopback only.

export const componentNames = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kwok",
] as const;
export type ComponentName = (typeof componentNames)[number];

export const paths = {
  pki: join(clusterDir, "pki"),
  etcdData: join(clusterDir, "etcd"),
  logs: join(clusterDir, "logs"),
  pids: join(clusterDir, "pids"),
  tokens: join(clusterDir, "pki", "tokens.csv"),
  serviceAccountKey: join(clusterDir, "pki", "service-account.key"),
  serviceAccountPub: join(clusterDir, "pki", "service-account.pub"),
  // kube-apiserver writes a self-signed serving certificate (with its CA) here.
  servingCert: join(clusterDir, "pki", "apiserver.crt"),
  stages: join(clusterDir, "kwok-stages.yaml"),
  componentKubeconfig: join(clusterDir, "component.kubeconfig"),
};

export function commandFor(name: ComponentName): { binary: string; args: string[] } {
  // What the controller manager and the scheduler share: the API server through the component
  // kubeconfig, one instance each, serving on loopback.
  const controlLoopArgs = [
    `--kubeconfig=${paths.componentKubeconfig}`,
    `--authentication-kubeconfig=${paths.componentKubeconfig}`,
    `--authorization-kubeconfig=${paths.componentKubeconfig}`,
    "--leader-elect=false",
    "--bind-address=127.0.0.1",
  ];
  switch (name) {
    case "etcd":
      return {
        binary: binaries.etcd,
        args: [
          "--name=understudy-test",
          `--data-dir=${paths.etcdData}`,
          `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
          `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
          `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
          `--initial-cluster=understudy-test=http://127.0.0.1:${ports.etcdPeer}`,
          // A test cluster trades durability for speed; nothing here outlives the run.
          "--unsafe-no-fsync=true",
          "--quota-backend-bytes=8589934592",
        ],
      };
    case "kube-apiserver":
      return {
        binary: binaries.kubeApiserver,
        args: [
          `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${ports.apiserver}`,
          `--cert-dir=${paths.pki}`,
          `--service-cluster-ip-range=${serviceCidr}`,
          "--authorization-mode=RBAC",
          `--token-auth-file=${paths.tokens}`,
          "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
          `--service-account-key-file=${paths.serviceAccountPub}`,
          `--service-account-signing-key-file=${paths.serviceAccountKey}`,
          "--allow-privileged=true",
          // Clients of a test cluster are many and bursty (the scale benchmark); lift the defaults.
          "--max-requests-inflight=2000",
          "--max-mutating-requests-inflight=1000",
          "--enable-priority-and-fairness=false",
        ],
      };
    case "kube-controller-manager":
      return {
        binary: binaries.kubeControllerManager,
        args: [
          ...controlLoopArgs,
          `--secure-port=${ports.controllerManager}`,
          `--service-account-private-key-file=${paths.serviceAccountKey}`,
          `--root-ca-file=${paths.servingCert}`,
          `--service-cluster-ip-range=${serviceCidr}`,
          "--kube-api-qps=500",
          "--kube-api-burst=1000",
          "--concurrent-statefulset-syncs=10",
        ],
      };
    case "kube-scheduler":
      return {
        binary: binaries.kubeScheduler,
        args: [...controlLoopArgs, `--secure-port=${ports.scheduler}`],
      };
    case "kwok":
      return {
        binary: binaries.kwok,
        args: [
          `--kubeconfig=${paths.componentKubeconfig}`,
          `--config=${paths.stages}`,
          "--manage-all-nodes=false",
          "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
          `--cidr=${podCidr}`,
          "--node-ip=127.0.0.1",
          "--node-lease-duration-seconds=40",
          `--server-address=127.0.0.1:${ports.kwok}`,
        ],
      };
  }
}
