// A child process running the pool, claim and storage service controllers through the test driver,
// for crash-safety tests: UNDERSTUDY_NAMESPACE (slot Leases), UNDERSTUDY_TEST_SCOPE (which objects it
// sees), UNDERSTUDY_CRASH_AT (the failover step at which it exits with 137). Logs JSON on stdout.
import { pino } from "pino";
import { claimControllerSpec, poolControllerSpec } from "../../src/controllers/specs.ts";
import {
  startStorageServiceSupport,
  storageServiceControllerSpec,
} from "../../src/controllers/storage-service/index.ts";
import { startDriver } from "./controller-driver.ts";

const namespace = process.env.UNDERSTUDY_NAMESPACE;
const scope = process.env.UNDERSTUDY_TEST_SCOPE;
if (!namespace || !scope) {
  process.stderr.write("driver-main: UNDERSTUDY_NAMESPACE and UNDERSTUDY_TEST_SCOPE are required\n");
  process.exit(2);
}
const log = pino({ level: process.env.UNDERSTUDY_LOG_LEVEL ?? "info" });
const driver = await startDriver({
  specs: [poolControllerSpec, claimControllerSpec, storageServiceControllerSpec],
  namespace,
  scope,
  log,
  support: (ctx, enqueue) =>
    startStorageServiceSupport(ctx, (key) => enqueue(storageServiceControllerSpec.name, key)),
});
log.info({ namespace, scope, crashAt: process.env.UNDERSTUDY_CRASH_AT }, "controllers started");

const stop = () => {
  void driver.stop().then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
