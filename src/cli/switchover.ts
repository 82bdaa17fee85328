// A manual switchover: the CLI writes a new value of the switchover annotation, the operator runs a
// failover for it, and the CLI recognises that failover as the first one to finish after the request.
import type { FailoverSummary } from "./model.ts";

/** A value the annotation has never had: the request time, made unique against the current value. */
export function switchoverValue(now: number, current: string | undefined): string {
  const value = new Date(now).toISOString();
  return value === current ? `${value}-1` : value;
}

/** The identity of a completed failover: two differ exactly when a new failover has finished. */
export const failoverIdentity = (f: FailoverSummary | undefined): string | undefined =>
  f ? `${f.startedAt ?? ""}|${f.finishedAt ?? ""}|${f.epoch ?? ""}` : undefined;

/**
 * True once the operator has acted on this request (status.handledSwitchover carries its value) and
 * reports a completed failover other than the one it reported before the request.
 */
export function switchoverFinished(
  request: string,
  before: FailoverSummary | undefined,
  now: { handledSwitchover?: string; lastFailover?: FailoverSummary; failingOver?: FailoverSummary },
): boolean {
  return (
    now.handledSwitchover === request &&
    now.failingOver === undefined &&
    now.lastFailover?.finishedAt !== undefined &&
    failoverIdentity(now.lastFailover) !== failoverIdentity(before)
  );
}
