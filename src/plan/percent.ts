// Shares as the planner prints them: one decimal, so 99.9% and 100.0% stay apart.
export const pct = (share: number) => `${(100 * share).toFixed(1)}%`;
