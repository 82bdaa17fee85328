// The informer's cache (client-go's ThreadSafeStore with Indexers): objects by key, and secondary
// indexes kept up to date on every change, so a lookup by index never scans the cache.

/**
 * A secondary key of cached objects: objects it gives no key are left out. One definition is one
 * index: a store recognizes it by identity.
 */
export interface Indexer<T> {
  name: string;
  keyOf(object: T): string | undefined;
}

const none: readonly never[] = [];

/** An index's groups, updated with every change of the store. */
class Index<T> {
  private readonly groups = new Map<string, Map<string, T>>();
  /** The array handed out per group, until the group changes (so derived views can be memoized on it). */
  private readonly lists = new Map<string, readonly T[]>();
  private readonly keyOf: (object: T) => string | undefined;

  constructor(keyOf: (object: T) => string | undefined) {
    this.keyOf = keyOf;
  }

  update(key: string, old: T | undefined, object: T | undefined): void {
    const before = old === undefined ? undefined : this.keyOf(old);
    const after = object === undefined ? undefined : this.keyOf(object);
    if (before !== undefined && before !== after) this.remove(before, key);
    if (after === undefined) return;
    let group = this.groups.get(after);
    if (!group) this.groups.set(after, (group = new Map()));
    group.set(key, object!);
    this.lists.delete(after);
  }

  get(value: string): readonly T[] {
    let list = this.lists.get(value);
    if (!list) {
      const group = this.groups.get(value);
      if (!group) return none;
      this.lists.set(value, (list = [...group.values()]));
    }
    return list;
  }

  private remove(value: string, key: string): void {
    const group = this.groups.get(value);
    if (!group?.delete(key)) return;
    if (group.size === 0) this.groups.delete(value);
    this.lists.delete(value);
  }
}

export class Store<T> {
  private readonly objects = new Map<string, T>();
  private readonly indexes = new Map<Indexer<T>, Index<T>>();

  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  entries(): IterableIterator<[string, T]> {
    return this.objects.entries();
  }

  values(): IterableIterator<T> {
    return this.objects.values();
  }

  set(key: string, object: T): void {
    const old = this.objects.get(key);
    this.objects.set(key, object);
    for (const index of this.indexes.values()) index.update(key, old, object);
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    const old = this.objects.get(key);
    if (!this.objects.delete(key)) return false;
    for (const index of this.indexes.values()) index.update(key, old, undefined);
    return true;
  }

  /**
   * The objects `indexer` keys as `value`, in no particular order. The index is built on first use
   * and from then on kept up to date with every change. The same array is returned until that group
   * changes; callers must not change it.
   */
  byIndex(indexer: Indexer<T>, value: string): readonly T[] {
    let index = this.indexes.get(indexer);
    if (!index) {
      index = new Index(indexer.keyOf);
      for (const [key, object] of this.objects) index.update(key, undefined, object);
      this.indexes.set(indexer, index);
    }
    return index.get(value);
  }
}
