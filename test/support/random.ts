// Tests draw their seeded randomness from the same generator as the planner's simulation.
export { seededRandom } from "../../src/plan/random.ts";
