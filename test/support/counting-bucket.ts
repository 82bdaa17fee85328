import { TokenBucket, type Lane } from "../../src/operator/rate-limiter.ts";

/** A rate-limit bucket that counts the tokens taken: every API request through its config takes one. */
export class CountingBucket extends TokenBucket {
  taken = 0;
  override take(lane?: Lane): Promise<void> {
    this.taken++;
    return super.take(lane);
  }
}
