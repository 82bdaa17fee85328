// The operator's decisions: pure functions over an observed snapshot. Controllers observe, call one
// of these, apply what it returns and record the outcome; nothing here talks to the API server.
export * from "./types.ts";
export * from "./names.ts";
export * from "./order.ts";
export * from "./quantity.ts";
export * from "./node-fit.ts";
export * from "./slot-placement.ts";
export * from "./pod-security.ts";
export * from "./claim-admission.ts";
export * from "./grants.ts";
export * from "./expiry.ts";
export * from "./head-health.ts";
export * from "./failover-slot.ts";
export * from "./failover-steps.ts";
export * from "./failover-record.ts";
export * from "./switchover-cooldown.ts";
