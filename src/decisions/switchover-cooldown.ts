// Whether a requested switchover may start now. Every failover and switchover may revoke a tenant's
// slot; the cooldown bounds how often a service's owner can make that happen by hand. A failover of
// a failed head never asks: the head is down, and waiting would only lengthen the outage.

export interface SwitchoverCooldownInput {
  now: number;
  /** When the last failover or switchover reached Done; undefined when there was none. */
  lastFailoverFinishedAt?: number;
  /** spec.failover.switchoverCooldownSeconds, in milliseconds. */
  cooldownMs: number;
  /** The slot the switchover would take now is leased to a tenant claim (it would be revoked). */
  revokesTenant: boolean;
}

export type SwitchoverCooldown =
  | { kind: "start" }
  /** Not before `notBefore` (ms since the epoch); look again after `waitMs`. */
  | { kind: "wait"; notBefore: number; waitMs: number };

/**
 * A switchover that would take a free slot starts at once: it costs no tenant anything. One that would
 * revoke a tenant starts only once `cooldownMs` has passed since the last failover or switchover
 * ended (a failover of a failed head counts: it may have revoked a tenant too).
 */
export function switchoverCooldown(input: SwitchoverCooldownInput): SwitchoverCooldown {
  if (!input.revokesTenant || input.lastFailoverFinishedAt === undefined) return { kind: "start" };
  const notBefore = input.lastFailoverFinishedAt + input.cooldownMs;
  if (input.now >= notBefore) return { kind: "start" };
  return { kind: "wait", notBefore, waitMs: notBefore - input.now };
}
