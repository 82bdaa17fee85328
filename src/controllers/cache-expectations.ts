// What a controller wrote and its cache has not shown yet, kept as Kubernetes' ReplicaSet
// controller keeps "expectations". A decision made before the cache caught up with the
// controller's own writes would make them again: the pool would grant a claim whose first grant is
// not in the cache yet a second slot. Each entry names an object and the resourceVersion the write
// replaced; it is met once the cache shows the object at any other version (the write, or one after
// it) or not at all, or after a timeout (a watch that missed it is relisted well before).
export class CacheExpectations {
  private readonly pending = new Map<string, Map<string, { replaced: string; at: number }>>();
  private readonly timeoutMs: number;

  constructor(timeoutMs = 10_000) {
    this.timeoutMs = timeoutMs;
  }

  /** `owner` wrote over version `replaced` of object `name` at `now`. */
  expect(owner: string, name: string, replaced: string, now: number): void {
    let entries = this.pending.get(owner);
    if (!entries) this.pending.set(owner, (entries = new Map()));
    entries.set(name, { replaced, at: now });
  }

  /**
   * Whether the cache shows every write of `owner`; `cachedVersion` gives an object's
   * resourceVersion in the cache (undefined when absent). Met entries are forgotten.
   */
  met(owner: string, cachedVersion: (name: string) => string | undefined, now: number): boolean {
    const entries = this.pending.get(owner);
    if (!entries) return true;
    for (const [name, { replaced, at }] of entries)
      if (cachedVersion(name) !== replaced || now - at > this.timeoutMs) entries.delete(name);
    if (entries.size > 0) return false;
    this.pending.delete(owner);
    return true;
  }
}
