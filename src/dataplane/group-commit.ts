// Group commit: writes that arrive close together share one durable transaction,
// and each caller is answered only once that transaction has committed.

export interface GroupCommitOptions<Op, Result> {
  /** Runs one batch inside one transaction; returns one result per op, in order. Throws to fail them all. */
  readonly commit: (ops: readonly Op[]) => Result[];
  /** Extra wait after the first op of a batch arrives; 0 = the next turn of the event loop. */
  readonly windowMs: number;
  readonly maxBatch: number;
  readonly onBatch?: (ops: readonly Op[], seconds: number) => void;
}

interface Pending<Op, Result> {
  readonly op: Op;
  readonly resolve: (r: Result) => void;
  readonly reject: (e: unknown) => void;
}

export class GroupCommitter<Op, Result> {
  readonly #options: GroupCommitOptions<Op, Result>;
  #queue: Pending<Op, Result>[] = [];
  #scheduled = false;
  #idle: (() => void)[] = [];

  constructor(options: GroupCommitOptions<Op, Result>) {
    this.#options = options;
  }

  submit(op: Op): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#queue.push({ op, resolve, reject });
      this.#schedule();
    });
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Resolves once every op submitted so far has been committed (or failed). */
  drained(): Promise<void> {
    if (this.#queue.length === 0 && !this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const flush = () => this.#flush();
    if (this.#options.windowMs > 0) setTimeout(flush, this.#options.windowMs);
    else setImmediate(flush);
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue.splice(0, this.#options.maxBatch);
    if (batch.length > 0) {
      const started = performance.now();
      try {
        const ops = batch.map((p) => p.op);
        const results = this.#options.commit(ops);
        this.#options.onBatch?.(ops, (performance.now() - started) / 1000);
        batch.forEach((p, i) => p.resolve(results[i]!));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    if (this.#queue.length > 0) this.#schedule();
    else for (const done of this.#idle.splice(0)) done();
  }
}
