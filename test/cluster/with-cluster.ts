import { spawn } from "node:child_process";
import { kubeconfigPath } from "./config.ts";
import { down, isUp, up } from "./cluster.ts";

// Runs a command (the test runner) against the test cluster: one that is already up is used and
// left running; otherwise one is started for the run and stopped afterwards.
const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node test/cluster/with-cluster.ts <command> [args...]");
  process.exit(2);
}

const wasUp = await isUp();
if (!wasUp) await up();
const child = spawn(command, args, {
  stdio: "inherit",
  env: { ...process.env, KUBECONFIG: kubeconfigPath },
});
const code: number = await new Promise((resolve) =>
  child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0))),
);
if (!wasUp && !process.env.UNDERSTUDY_KEEP_CLUSTER) await down();
process.exit(code);
