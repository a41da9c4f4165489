/**
 * One channel's points for a chart, sorted by time, at most one per millisecond. Live points usually
 * arrive in order (a push); history and replayed points are inserted where they belong. Bounded:
 * points older than the window are dropped, and past MAX_POINTS the older half is thinned to the
 * min and max of each group of four, so spikes survive.
 */
export interface Point {
  x: number;
  y: number;
}

export const MAX_POINTS = 20_000;

export class Series {
  readonly points: Point[] = [];

  get length(): number {
    return this.points.length;
  }

  get firstX(): number | undefined {
    return this.points[0]?.x;
  }

  get lastX(): number | undefined {
    return this.points[this.points.length - 1]?.x;
  }

  /** Adds a point; returns false when one at that time exists already. */
  add(x: number, y: number): boolean {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
    const p = this.points;
    const n = p.length;
    if (n === 0 || x > p[n - 1]!.x) {
      p.push({ x, y });
    } else {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (p[mid]!.x < x) lo = mid + 1;
        else hi = mid;
      }
      if (lo < n && p[lo]!.x === x) return false;
      p.splice(lo, 0, { x, y });
    }
    if (p.length > MAX_POINTS) this.thin();
    return true;
  }

  /** Drops points before `t`, keeping the last one before it so the line enters from the left edge. */
  dropBefore(t: number): void {
    const p = this.points;
    let i = 0;
    while (i < p.length && p[i]!.x < t) i++;
    if (i > 1) p.splice(0, i - 1);
  }

  clear(): void {
    this.points.length = 0;
  }

  private thin(): void {
    const p = this.points;
    const half = (p.length >>> 1) & ~3;
    const kept: Point[] = [];
    for (let i = 0; i < half; i += 4) {
      let lo = p[i]!;
      let hi = p[i]!;
      for (let j = i + 1; j < i + 4; j++) {
        const q = p[j]!;
        if (q.y < lo.y) lo = q;
        if (q.y > hi.y) hi = q;
      }
      if (lo === hi) kept.push(lo);
      else if (lo.x < hi.x) kept.push(lo, hi);
      else kept.push(hi, lo);
    }
    p.splice(0, half, ...kept);
  }
}
