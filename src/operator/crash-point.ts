// Fault injection for crash-safety tests (UNDERSTUDY_CRASH_AT): a controller calls its crash point
// before every effect it applies once a step is recorded. The first call with a step answers to the
// step's name, the n-th to `<step>:<n>`, so a test can crash between two effects of one step as well
// (for instance SlotChosen:2: the slot taken, the tenant not yet told). Each operator has its own.

export type CrashPoint = (step: string) => void;

/**
 * The crash point of an operator configured to crash at `crashAt` (none: never): it exits the process
 * with 137, as if SIGKILLed, after `beforeCrash` (log it, flush the logs).
 */
export function crashPointAt(
  crashAt: string | undefined,
  beforeCrash: (step: string) => void = () => {},
): CrashPoint {
  const calls = new Map<string, number>();
  return (step) => {
    if (crashAt === undefined) return;
    const n = (calls.get(step) ?? 0) + 1;
    calls.set(step, n);
    const name = n === 1 ? step : `${step}:${n}`;
    if (name !== crashAt) return;
    try {
      beforeCrash(name);
    } finally {
      process.exit(137);
    }
  };
}
