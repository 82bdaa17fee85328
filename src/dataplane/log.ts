import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(name: string, level = process.env.UNDERSTUDY_LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level });
}
