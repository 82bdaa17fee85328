import { pino, type Logger } from "pino";

export type { Logger };

// No pino transports: they find their worker files by __dirname, which the bundled data plane
// (scripts/bundle-dataplane.ts) does not have. Logs go to stdout as JSON lines.
export function createLogger(name: string, level = process.env.UNDERSTUDY_LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level });
}
