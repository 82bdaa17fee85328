// The data plane's programmatic API (tests, the e2e harness, the operator).
export { startServer, type ServerHandle, type ServerOptions } from "./server.ts";
export { startHead, type HeadHandle, type HeadOptions } from "./head.ts";
export {
  createClient,
  DataplaneClient,
  DataplaneError,
  OutcomeUnknown,
  type CasResult,
  type ClientOptions,
  type HeadResolver,
} from "./client.ts";
export { endpointSliceHeadResolver, pickHeadUrl } from "./head-resolver.ts";
export { checkOperations, type CheckResult, type Model, type Operation } from "./linearizability.ts";
export { kvModel, type KvInput, type KvOperation, type KvOutput } from "./register-model.ts";
export { parseServerList, partitionOfKey, placePartitions, type ServerAddress } from "./placement.ts";
export { readRecordsOnDisk } from "./server-store.ts";
