/**
 * Where rate-limit and quota state lives: numbers by key, each with a time after which it may be
 * forgotten. The SQLite adapter (src/node/quotas/sqlite-quota-store.ts) keeps them in the state
 * directory, so a restart resets nothing; the memory store serves tests and benchmarks.
 */

export interface QuotaTx {
  get(key: string): number | undefined;
  /** `expiresAt` (epoch ms): after it the value means nothing and may be dropped. */
  set(key: string, value: number, expiresAt: number): void;
}

export interface QuotaStore {
  /**
   * Runs `fn` on the current values. What it sets is applied, atomically, only when it returns
   * true; nothing else runs in between (the daemon is the only writer, and `fn` is synchronous).
   * Throws when the change cannot be stored, and then nothing is applied.
   */
  update(fn: (tx: QuotaTx) => boolean): boolean;
  /** Every key and value, for status. */
  entries(): Iterable<[string, number]>;
  /** Forgets values whose time is over. */
  sweep(now: number): void;
}

export class MemoryQuotaStore implements QuotaStore {
  private readonly values = new Map<string, { value: number; expiresAt: number }>();

  update(fn: (tx: QuotaTx) => boolean): boolean {
    const writes = new Map<string, { value: number; expiresAt: number }>();
    const commit = fn({
      get: (key) => (writes.get(key) ?? this.values.get(key))?.value,
      set: (key, value, expiresAt) => void writes.set(key, { value, expiresAt }),
    });
    if (!commit) return false;
    for (const [key, entry] of writes) this.values.set(key, entry);
    return true;
  }

  *entries(): Iterable<[string, number]> {
    for (const [key, entry] of this.values) yield [key, entry.value];
  }

  sweep(now: number): void {
    for (const [key, entry] of this.values) if (entry.expiresAt <= now) this.values.delete(key);
  }
}
