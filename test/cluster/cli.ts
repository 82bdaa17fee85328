import { binaries, kubeconfigPath } from "./config.ts";
import { down, isUp, up } from "./cluster.ts";

// `npm run cluster:up` / `cluster:down` / `node test/cluster/cli.ts status`.
const command = process.argv[2];
try {
  if (command === "up") {
    const { kubeconfig } = await up();
    console.log(`The test cluster is up. Use it with kubectl:
  export KUBECONFIG=${kubeconfig}
  ${binaries.kubectl} get nodes -L topology.kubernetes.io/zone
Stop it with: npm run cluster:down`);
  } else if (command === "down") {
    await down();
    console.log("The test cluster is down and its state removed.");
  } else if (command === "status") {
    const running = await isUp();
    console.log(running ? `up (KUBECONFIG=${kubeconfigPath})` : "down");
    process.exitCode = running ? 0 : 1;
  } else {
    console.error("usage: node test/cluster/cli.ts up|down|status");
    process.exitCode = 2;
  }
} catch (err) {
  console.error(`cluster ${command}: ${(err as Error).message}`);
  process.exitCode = 1;
}
