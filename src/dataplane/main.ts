// understudy-dataplane, the entry of the `server` and `head` roles (the program is program.ts).
// It only turns on Node's module compile cache before anything else loads, so that every module
// after this one is built from V8's cached code instead of compiled from source: a new head is
// ready sooner after a failover. The cache is NODE_COMPILE_CACHE when set (the image sets it to
// one made when the image was built) or <tmpdir>/node-compile-cache; one that cannot be written is
// still read, and one that cannot be used at all is skipped (NODE_DISABLE_COMPILE_CACHE=1 turns it off).
//
// Built (dist/src/dataplane/main.js), it then loads the program from the bundle that `npm run
// build` makes with it (scripts/bundle-dataplane.ts, into dist/dataplane/): a few files instead of
// about 300. `tsc` alone does not remake the bundle; build with `npm run build`. Run from the
// sources, the program's own modules load.
import { existsSync } from "node:fs";
import { enableCompileCache } from "node:module";

enableCompileCache();
const bundled = new URL("../../dataplane/program.js", import.meta.url);
const built = import.meta.url.endsWith(".js");
const { run } = (
  built && existsSync(bundled) ? await import(bundled.href) : await import("./program.ts")
) as typeof import("./program.ts");
run(process.argv);
