/**
 * A live line chart for one channel (Chart.js): linear x axis in ms since epoch labelled with local
 * HH:MM:SS (no date adapter), no animation, no parsing, min/max decimation to the chart's width.
 * The points live in a Series that the chart reads; render() slides the window and redraws.
 */
import { Chart, Decimation, Filler, LinearScale, LineController, LineElement, PointElement, Tooltip, type ChartConfiguration } from 'chart.js';
import { alarmMarksPlugin, marksDrawn, setMarks } from './alarm-marks.js';
import type { AlarmMark } from './alarms.js';
import type { ChannelInfo } from './channels.js';
import { axisLabels, clock, reading } from './format.js';
import { Series } from './series.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, Tooltip, Decimation, Filler);

Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue('--font').trim() || 'system-ui, sans-serif';
Chart.defaults.font.size = 11;
Chart.defaults.color = '#5b6472';

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].map((s) => s * 1000);
/** Room one HH:MM:SS label needs, in CSS pixels. */
const LABEL_PX = 72;

/** The smallest round tick spacing whose labels fit the plot's width. */
function tickStep(windowMs: number, widthPx: number): number {
  const fit = Math.max(2, Math.floor(widthPx / LABEL_PX));
  return STEPS.find((s) => windowMs / s <= fit) ?? STEPS[STEPS.length - 1]!;
}

/** Ticks at whole multiples of the step (local time for whole minutes in every usual zone), between min and max. */
function alignedTicks(min: number, max: number, step: number): { value: number }[] {
  const offset = new Date(min).getTimezoneOffset() * 60_000;
  const ticks: { value: number }[] = [];
  for (let t = Math.ceil((min - offset) / step) * step + offset; t <= max; t += step) ticks.push({ value: t });
  return ticks;
}

const PALETTE = ['#2563eb', '#0d9488', '#d97706', '#7c3aed', '#db2777', '#4d7c0f', '#0891b2', '#b91c1c'];

export class ChannelChart {
  readonly series = new Series();
  readonly root: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly valueEl: HTMLElement;
  private readonly chart: Chart<'line', { x: number; y: number }[]>;
  private windowMs: number;
  /** performance.now() of the last draw. */
  private drawnAt = -Infinity;
  /** Points arrived since the last draw. */
  private dirty = true;

  constructor(
    readonly channel: ChannelInfo,
    windowMs: number,
    index: number,
  ) {
    this.windowMs = windowMs;
    const isBool = channel.type === 'bool';
    const color = PALETTE[index % PALETTE.length]!;

    this.root = document.createElement('figure');
    this.root.className = 'chart-card';
    const cap = document.createElement('figcaption');
    const name = document.createElement('span');
    name.className = 'chart-name';
    name.textContent = channel.name;
    const unit = document.createElement('span');
    unit.className = 'muted chart-unit';
    unit.textContent = channel.unit ? `(${channel.unit})` : '';
    this.valueEl = document.createElement('span');
    this.valueEl.className = 'chart-value';
    this.valueEl.textContent = '–';
    cap.append(name, unit, this.valueEl);
    const box = document.createElement('div');
    box.className = 'chart-box';
    this.canvas = document.createElement('canvas');
    this.canvas.dataset.testid = 'device-chart';
    this.canvas.dataset.channel = String(channel.id);
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', `${channel.name} over time`);
    box.append(this.canvas);
    this.root.append(cap, box);

    const now = Date.now();
    const config: ChartConfiguration<'line', { x: number; y: number }[]> = {
      type: 'line',
      plugins: [alarmMarksPlugin],
      data: {
        datasets: [
          {
            label: channel.name,
            data: this.series.points,
            borderColor: color,
            backgroundColor: `${color}1a`,
            borderWidth: 1.5,
            pointRadius: 0,
            pointBackgroundColor: color,
            pointHitRadius: 6,
            fill: isBool ? false : 'start',
            stepped: isBool ? 'before' : false,
            tension: 0,
          },
        ],
      },
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        plugins: {
          legend: { display: false },
          decimation: { enabled: true, algorithm: 'min-max' },
          tooltip: {
            displayColors: false,
            callbacks: {
              title: (items) => (items[0] ? clock(items[0].parsed.x ?? 0) : ''),
              label: (item) => reading(isBool ? item.parsed.y === 1 : item.parsed.y ?? undefined, channel.unit),
            },
          },
        },
        scales: {
          x: {
            type: 'linear',
            min: now - windowMs,
            max: now,
            ticks: { maxRotation: 0, autoSkip: false, callback: (v) => clock(Number(v)) },
            afterBuildTicks: (scale) => {
              scale.ticks = alignedTicks(scale.min, scale.max, tickStep(this.windowMs, scale.width || this.canvas.clientWidth || 600));
            },
            grid: { color: '#eef0f3' },
          },
          y: isBool
            ? {
                min: -0.15,
                max: 1.15,
                ticks: { callback: (v) => (v === 1 ? 'on' : v === 0 ? 'off' : '') },
                afterBuildTicks: (scale) => {
                  scale.ticks = [{ value: 0 }, { value: 1 }];
                },
                grid: { color: '#eef0f3' },
              }
            : {
                grace: '5%',
                ticks: { maxTicksLimit: 6 },
                // Labelled together: the decimals depend on the spacing of all the ticks.
                afterTickToLabelConversion: (scale) => {
                  const labels = axisLabels(scale.ticks.map((t) => t.value));
                  scale.ticks.forEach((t, i) => (t.label = labels[i]!));
                },
                grid: { color: '#eef0f3' },
              },
        },
      },
    };
    this.chart = new Chart(this.canvas, config);
  }

  /** The y axis's labels as drawn (tests check they tell the ticks apart). */
  axisLabels(): string[] {
    return this.chart.scales.y?.ticks.map((t) => String(t.label)) ?? [];
  }

  /** The value header's text (the newest reading and its unit). */
  get valueText(): string {
    return this.valueEl.textContent ?? '';
  }

  /** Width of the plot in CSS pixels: how many history buckets are worth asking for. */
  get widthPx(): number {
    return Math.max(100, Math.round(this.chart.chartArea?.width || this.canvas.clientWidth || 600));
  }

  /** Where alarms were raised on this channel (alarm-marks.ts): drawn from the next render on. */
  setMarks(list: readonly AlarmMark[]): void {
    setMarks(this.chart, list);
  }

  /** Times of the alarm marks on the canvas as last drawn. */
  get marksDrawn(): number[] {
    return marksDrawn(this.chart);
  }

  setWindow(windowMs: number): void {
    this.windowMs = windowMs;
    this.dirty = true;
  }

  /** Adds a live or replayed point; booleans are drawn as 1/0. */
  add(x: number, y: number | boolean): void {
    if (this.series.add(x, typeof y === 'boolean' ? (y ? 1 : 0) : y)) this.dirty = true;
  }

  /**
   * Redraws when due. Drawing more often than the window moves by a pixel shows nothing new, so a
   * chart redraws at most once per pixel's worth of time (about 5 times a second for a minute on a
   * 330 px chart, once a second for longer windows), however fast points arrive. `force` draws now.
   */
  render(now: number, force = false): void {
    const wall = performance.now();
    if (!force) {
      const perPixel = Math.min(1000, Math.max(100, this.windowMs / this.widthPx));
      if (wall - this.drawnAt < perPixel) return;
    }
    this.drawnAt = wall;
    const from = now - this.windowMs;
    this.series.dropBefore(from);
    const x = this.chart.options.scales!.x!;
    x.min = from;
    x.max = now;
    // The decimation plugin may have swapped `data` for its own array: hand it ours again.
    const dataset = this.chart.data.datasets[0]!;
    dataset.data = this.series.points;
    // A line needs two points: a lone reading (a device that sends rarely, e.g. JSON by curl) is a dot.
    // Chart.js keeps point options shared across 'none' updates, so a change of radius needs a full one.
    const radius = this.series.points.length === 1 ? 3 : 0;
    if (dataset.pointRadius !== radius) {
      dataset.pointRadius = radius;
      this.chart.update();
    } else this.chart.update('none');
    if (this.dirty) {
      const last = this.series.points[this.series.points.length - 1];
      const text = last ? reading(this.channel.type === 'bool' ? last.y === 1 : last.y, this.channel.unit) : '–';
      if (this.valueEl.textContent !== text) this.valueEl.textContent = text;
      this.dirty = false;
    }
  }

  destroy(): void {
    this.chart.destroy();
    this.root.remove();
  }
}
