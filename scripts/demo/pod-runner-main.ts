// The demo's stand-in for the kubelet, as a process of its own: runs the real head and server
// processes for the storage service pods KWOK reports Running, until SIGTERM.
//   node scripts/demo/pod-runner-main.ts <namespace> <root folder>
import { loadKubeConfig } from "../../src/kube/config.ts";
import { PodRunner } from "../../test/support/pod-runner.ts";

const [namespace, root] = process.argv.slice(2);
if (!namespace || !root) {
  console.error("usage: node scripts/demo/pod-runner-main.ts <namespace> <root folder>");
  process.exit(2);
}
const runner = await PodRunner.start({
  kubeConfig: loadKubeConfig(process.env.KUBECONFIG),
  namespaces: [namespace],
  root,
  extraEnv: { UNDERSTUDY_LOG_LEVEL: "info" },
  log: (message) => console.log(`${new Date().toISOString()} ${message}`),
});
console.log(`pod runner watching namespace ${namespace}; processes and data under ${root}`);
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    void runner.stop().then(() => process.exit(0));
  });
}
