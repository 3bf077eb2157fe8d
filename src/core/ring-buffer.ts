/**
 * A bounded buffer that keeps the most recent `capacity` items and forgets the oldest.
 * The supervisor keeps each server's stderr in one, so `gatehouse logs SERVER` answers
 * from memory however long the server has been talking.
 */
export class RingBuffer<T = string> {
  readonly #items: (T | undefined)[];
  /** Index of the oldest item. */
  #head = 0;
  #size = 0;
  #dropped = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`a ring buffer holds at least one item (capacity was ${capacity})`);
    }
    this.#items = new Array<T | undefined>(capacity);
  }

  /** How many items the buffer holds now. */
  get size(): number {
    return this.#size;
  }

  /** How many items were pushed out to make room since the buffer was made (or cleared). */
  get dropped(): number {
    return this.#dropped;
  }

  push(item: T): void {
    if (this.#size < this.capacity) {
      this.#items[(this.#head + this.#size) % this.capacity] = item;
      this.#size++;
      return;
    }
    this.#items[this.#head] = item;
    this.#head = (this.#head + 1) % this.capacity;
    this.#dropped++;
  }

  /** The last `n` items, oldest first; every item when `n` is omitted. */
  last(n?: number): T[] {
    const count = n === undefined ? this.#size : Math.max(0, Math.min(this.#size, Math.floor(n)));
    const out: T[] = [];
    for (let i = this.#size - count; i < this.#size; i++) {
      out.push(this.#items[(this.#head + i) % this.capacity] as T);
    }
    return out;
  }

  clear(): void {
    this.#items.fill(undefined);
    this.#head = 0;
    this.#size = 0;
    this.#dropped = 0;
  }
}
