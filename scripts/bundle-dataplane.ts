// The second half of `npm run build`: bundles the data plane's compiled program (dist/src/dataplane/
// program.js, tsc's output) and everything it imports into a few files under dist/dataplane/.
// A new head then loads those few files instead of about 300 (zod, prom-client, pino, commander
// and the project's own modules), which halves what it spends before it listens: a failover
// waits for that start (docs/BENCHMARKS.md, "Head start"). dist/src/dataplane/main.js loads the
// bundle when it is there; each role stays its own chunk, loaded when the role starts.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "rolldown";

const REPO = join(import.meta.dirname, "..");
// src/dataplane/main.ts (built: dist/src/dataplane/main.js) loads ../../dataplane/program.js.
const dir = join(REPO, "dist/dataplane");

rmSync(dir, { recursive: true, force: true }); // chunk names carry hashes: no stale chunk stays
await build({
  input: { program: join(REPO, "dist/src/dataplane/program.js") },
  platform: "node",
  logLevel: "warn",
  output: { dir, format: "esm", entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js" },
});
