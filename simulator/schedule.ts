/**
 * When each device is due next: a binary min-heap of (due time, device) in two parallel arrays, so
 * one timer per fleet serves thousands of devices at O(log n) per tick and no allocation in steady
 * state. Entries are never removed early: a device whose due time changed (set-interval) gets a new
 * entry, and the stale one is recognised by its time no longer matching and skipped.
 */
export class DueQueue<T extends { due: number }> {
  readonly #times: number[] = [];
  readonly #items: T[] = [];

  get size(): number {
    return this.#times.length;
  }

  /** Due time of the earliest entry (Infinity when empty). */
  get next(): number {
    return this.#times.length > 0 ? this.#times[0]! : Infinity;
  }

  /** Sets item.due and queues it. */
  push(item: T, due: number): void {
    item.due = due;
    const times = this.#times;
    const items = this.#items;
    let i = times.length;
    times.push(due);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent]! <= due) break;
      times[i] = times[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    times[i] = due;
    items[i] = item;
  }

  /** Removes and returns the earliest item if due at or before `now` and still current, else undefined (stale entries are dropped on the way). */
  popDue(now: number): T | undefined {
    while (this.#times.length > 0 && this.#times[0]! <= now) {
      const due = this.#times[0]!;
      const item = this.#pop();
      if (item.due === due) return item;
    }
    return undefined;
  }

  #pop(): T {
    const times = this.#times;
    const items = this.#items;
    const top = items[0]!;
    const lastTime = times.pop()!;
    const lastItem = items.pop()!;
    const n = times.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && times[r]! < times[l]! ? r : l;
        if (times[c]! >= lastTime) break;
        times[i] = times[c]!;
        items[i] = items[c]!;
        i = c;
      }
      times[i] = lastTime;
      items[i] = lastItem;
    }
    return top;
  }
}
