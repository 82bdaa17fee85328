// Seeded randomness for simulations (the planner's and the benchmarks') and for churn and traffic in
// tests: the same seed replays the same choices, so a failing run can be repeated from the seed it
// prints.
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/** Uniform numbers in [0, 1) from `seed` (xoroshiro128+). */
export function seededRandom(seed: number): () => number {
  const generator = xoroshiro128plus(seed);
  return () => uniformFloat64(generator);
}
