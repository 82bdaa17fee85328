// Structured JSON logs (pino). Every line a controller writes about an object names the object, so
// `jq 'select(.name=="x")'` follows one object through every controller.
import pino from "pino";
import { parseKey } from "./keys.ts";

export type Logger = pino.Logger;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stdout by default (synchronously, so nothing is lost on exit). */
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { component: "understudy-operator" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** The logger of one object in one controller: `{controller, kind, namespace, name}`. */
function objectLogger(
  parent: Logger,
  object: { controller?: string; kind?: string; namespace?: string; name: string },
): Logger {
  const bindings: Record<string, string> = {};
  if (object.controller) bindings.controller = object.controller;
  if (object.kind) bindings.kind = object.kind;
  if (object.namespace) bindings.namespace = object.namespace;
  bindings.name = object.name;
  return parent.child(bindings);
}

/** objectLogger for a work-queue key (`namespace/name` or `name`). */
export function keyLogger(parent: Logger, controller: string, kind: string | undefined, key: string): Logger {
  return objectLogger(parent, { controller, kind, ...parseKey(key) });
}
