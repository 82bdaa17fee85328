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
  type HeadTarget,
} from "./client.ts";
export {
  formatIdentity,
  identityMismatch,
  parseIdentity,
  IDENTITY_HEADER,
  type ExpectedIdentity,
  type Identity,
} from "./identity.ts";
export { endpointSliceHeadResolver, pickHead, pickHeadUrl } from "./head-resolver.ts";
export { checkOperations, type CheckResult, type Model, type Operation } from "./linearizability.ts";
export { kvModel, type KvInput, type KvOperation, type KvOutput } from "./register-model.ts";
export { parseServerList, partitionOfKey, placePartitions, type ServerAddress } from "./placement.ts";
export { readRecordsOnDisk } from "./server-store.ts";
