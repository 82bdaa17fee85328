// Locale-independent comparisons, so every decision sorts the same way on every machine.

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders numbers including infinities (a plain subtraction gives NaN for -Infinity - -Infinity). */
export function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
