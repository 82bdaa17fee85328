// One client operation as the linearizability checker reads it: run through the real client library,
// timed, and added to a history unless it is known not to have happened. Shared by the in-process
// failover history (unit) and the e2e traffic.
import { DataplaneError, OutcomeUnknown, type DataplaneClient } from "../../src/dataplane/client.ts";
import type { KvInput, KvOperation, KvOutput } from "../../src/dataplane/register-model.ts";

/** What an operation gave: its output, or that it was refused (not_applied) or may have happened (unknown). */
export type KvResult = KvOutput | "not_applied" | "unknown";

/** Runs one operation through the client library and turns its result into a history output. */
export async function viaClient(client: DataplaneClient, input: KvInput): Promise<KvResult> {
  try {
    switch (input.kind) {
      case "get": {
        const r = await client.get(input.key);
        return { kind: "get", value: r.value, version: r.version };
      }
      case "put":
        return { kind: "write", version: (await client.put(input.key, input.value)).version };
      case "delete":
        return { kind: "write", version: (await client.delete(input.key)).version };
      case "cas": {
        const r = await client.cas(input.key, input.expectedVersion, input.value);
        return r.ok
          ? { kind: "cas", ok: true, version: r.version }
          : { kind: "cas", ok: false, version: r.currentVersion };
      }
    }
  } catch (err) {
    if (err instanceof OutcomeUnknown) return "unknown";
    if (err instanceof DataplaneError) return "not_applied";
    throw err;
  }
}

/**
 * Runs `run`, timed, and adds it to `history`: an unknown outcome as an operation that may take
 * effect at any time after its call; a refused one (not_applied) not at all.
 */
export async function recordOperation(
  history: KvOperation[],
  clientId: number,
  input: KvInput,
  run: () => Promise<KvResult>,
): Promise<{ result: KvResult; call: number; ret: number }> {
  const call = performance.now();
  const result = await run();
  const ret = performance.now();
  if (result === "unknown") history.push({ clientId, input, output: undefined, call, ret: Infinity });
  else if (result !== "not_applied") history.push({ clientId, input, output: result, call, ret });
  return { result, call, ret };
}
