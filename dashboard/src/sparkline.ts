/**
 * A fleet row's trend: the values seen while the page is open (the newest of each half second, for
 * the last minute), drawn by hand on a tiny canvas.
 */
/** 120 slots of half a second: the last minute. */
export const SPARK_SLOTS = 120;
const SLOT_MS = 500;
const MIN_SPAN_SLOTS = 24;

export class SparkRing {
  readonly values = new Float64Array(SPARK_SLOTS);
  /** Index of the next write. */
  head = 0;
  count = 0;
  private slotStart = -Infinity;
  private lastTime = -Infinity;

  /** Adds a reading; returns false when it is not newer than the last one. */
  push(value: number, time: number): boolean {
    if (!(time > this.lastTime) || !Number.isFinite(value)) return false;
    this.lastTime = time;
    if (this.count > 0 && time - this.slotStart < SLOT_MS) {
      this.values[(this.head + SPARK_SLOTS - 1) % SPARK_SLOTS] = value;
      return true;
    }
    this.slotStart = time;
    this.values[this.head] = value;
    this.head = (this.head + 1) % SPARK_SLOTS;
    if (this.count < SPARK_SLOTS) this.count++;
    return true;
  }
}

/** Sizes a canvas for the screen's pixel ratio once; returns it. */
export function sparkCanvas(cssWidth: number, cssHeight: number): HTMLCanvasElement {
  const c = document.createElement('canvas');
  const dpr = Math.min(window.devicePixelRatio || 1, 3);
  c.width = Math.round(cssWidth * dpr);
  c.height = Math.round(cssHeight * dpr);
  c.style.width = `${cssWidth}px`;
  c.style.height = `${cssHeight}px`;
  c.className = 'spark';
  c.dataset.dpr = String(dpr);
  return c;
}

export function drawSparkline(canvas: HTMLCanvasElement, ring: SparkRing | undefined, color: string): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (!ring || ring.count === 0) return;
  const n = ring.count;
  const start = (ring.head - n + SPARK_SLOTS) % SPARK_SLOTS;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = ring.values[(start + i) % SPARK_SLOTS]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const pad = Math.max(1, h * 0.12);
  const span = max - min || 1;
  // Newest at the right edge. The first half minute spreads wider, so a page just opened shows a trend.
  const step = w / (Math.max(n, MIN_SPAN_SLOTS) - 1);
  const x0 = w - (n - 1) * step;
  const y = (v: number) => (max === min ? h / 2 : h - pad - ((v - min) / span) * (h - 2 * pad));
  const dpr = Number(canvas.dataset.dpr) || 1; // not clientWidth: reading layout here would force a reflow per row
  ctx.lineWidth = 1.25 * dpr;
  ctx.lineJoin = 'round';
  ctx.strokeStyle = color;
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const px = x0 + i * step;
    const py = y(ring.values[(start + i) % SPARK_SLOTS]!);
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  }
  ctx.stroke();
  // The newest value as a dot.
  const lastY = y(ring.values[(start + n - 1) % SPARK_SLOTS]!);
  ctx.fillStyle = color;
  ctx.beginPath();
  ctx.arc(w - 2 * dpr, lastY, 1.75 * dpr, 0, Math.PI * 2);
  ctx.fill();
}
