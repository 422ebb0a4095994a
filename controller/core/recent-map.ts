/**
 * RecentMap keeps the values of the keys set most recently, at most `capacity` of them, in two
 * generations of capacity/2: when the newer fills, the older is forgotten at once. Constant time,
 * unlike evicting a Map's oldest key one by one; at least the newest half is always kept.
 */
export class RecentMap<V> {
  private current = new Map<string, V>();
  private previous = new Map<string, V>();
  /** capacity 0 keeps nothing. */
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(key: string): V | undefined {
    return this.current.get(key) ?? this.previous.get(key);
  }

  set(key: string, value: V): void {
    if (this.capacity <= 0) return;
    if (!this.current.has(key) && this.current.size >= Math.max(1, Math.floor(this.capacity / 2))) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }
}
