// Fault injection for crash-safety tests, over the operator's crash point (UNDERSTUDY_CRASH_AT):
// the failover calls crashPoint(step) before every effect it applies once `step` is recorded. The
// first effect after a step answers to the step's name, the n-th to `<step>:<n>`, so a test can crash
// between two effects of one step as well (for instance SlotChosen:2: the slot taken, the tenant not
// yet told).
import { crashPoint as operatorCrashPoint } from "../../operator/settings.ts";

const effects = new Map<string, number>();

export function crashPoint(step: string): void {
  const n = (effects.get(step) ?? 0) + 1;
  effects.set(step, n);
  operatorCrashPoint(n === 1 ? step : `${step}:${n}`);
}
