// Turning CLI flags / environment variables into role options.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseServerList, type ServerAddress } from "./placement.ts";

const serverFileSchema = z.array(
  z.object({ zone: z.string().min(1), address: z.string().regex(/^[^\s:]+:\d+$/) }),
);

/** `zone=host:port,...`, or the path of a JSON file holding `[{"zone": ..., "address": "host:port"}]`. */
export function loadServers(spec: string): ServerAddress[] {
  if (spec.includes("=")) return parseServerList(spec);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(spec, "utf8"));
  } catch (err) {
    throw new Error(
      `servers "${spec}" is neither zone=host:port,... nor a readable JSON file: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const result = serverFileSchema.safeParse(parsed);
  if (!result.success) throw new Error(`server file ${spec}: ${result.error.issues[0]!.message}`);
  return result.data;
}

/** The shared token, given directly or as a file (a mounted Secret). */
export function loadToken(token: string | undefined, tokenFile: string | undefined): string {
  const value = token ?? (tokenFile !== undefined ? readFileSync(tokenFile, "utf8").trim() : undefined);
  if (value === undefined || value === "") {
    throw new Error(
      "a shared token is required: --token / UNDERSTUDY_TOKEN or --token-file / UNDERSTUDY_TOKEN_FILE",
    );
  }
  return value;
}

export function positiveInt(name: string): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`${name} must be a non-negative integer, got "${text}"`);
    return n;
  };
}
