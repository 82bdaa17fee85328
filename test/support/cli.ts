import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { kubeconfigPath } from "../cluster/config.ts";

// Running the `understudy` command as a user would, against the test cluster, without colour.

const root = join(import.meta.dirname, "../..");

/** The command's standard output; a non-zero exit rejects with the child's error (stderr on it). */
export async function cli(...args: string[]): Promise<string> {
  const env = { ...process.env, KUBECONFIG: process.env.KUBECONFIG ?? kubeconfigPath, NO_COLOR: "1" };
  const { stdout } = await promisify(execFile)(
    join(root, "node_modules/.bin/node"),
    [join(root, "src/cli/main.ts"), ...args],
    { env, cwd: root },
  );
  return stdout;
}
