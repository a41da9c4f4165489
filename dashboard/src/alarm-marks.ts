/**
 * A Chart.js plugin that draws a vertical line where an alarm was raised, coloured by severity
 * (dashed once the alarm is cleared), with a small flag at the top. The marks of a chart are set with
 * setMarks(); the plugin remembers which it drew in the last draw (marksDrawn(), for the page's test
 * hook), so a test sees what is on the canvas, not what was meant to be.
 */
import type { Chart, Plugin } from 'chart.js';
import type { AlarmMark } from './alarms.js';
import type { AlarmSeverity } from './types.js';

export const SEVERITY_COLORS: Record<AlarmSeverity, string> = {
  critical: '#b91c1c',
  major: '#ea580c',
  minor: '#ca8a04',
  warning: '#2563eb',
};

const marks = new WeakMap<Chart, readonly AlarmMark[]>();
const drawn = new WeakMap<Chart, number[]>();

/** The marks a chart draws from its next update on. */
export function setMarks(chart: Chart, list: readonly AlarmMark[]): void {
  marks.set(chart, list);
}

/** The times of the marks drawn in the chart's last draw (those inside its x range). */
export function marksDrawn(chart: Chart): number[] {
  return drawn.get(chart) ?? [];
}

const FLAG = 5;

export const alarmMarksPlugin: Plugin = {
  id: 'alarmMarks',
  afterDatasetsDraw(chart) {
    const list = marks.get(chart);
    const x = chart.scales.x;
    const area = chart.chartArea;
    const shown: number[] = [];
    if (list && list.length > 0 && x && area) {
      const ctx = chart.ctx;
      ctx.save();
      ctx.lineWidth = 1.5;
      for (const m of list) {
        if (m.at < x.min || m.at > x.max) continue;
        const px = Math.round(x.getPixelForValue(m.at)) + 0.5;
        const color = SEVERITY_COLORS[m.severity] ?? SEVERITY_COLORS.warning;
        ctx.strokeStyle = color;
        ctx.fillStyle = color;
        ctx.setLineDash(m.cleared ? [4, 3] : []);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        // A flag at the top, so a mark reads as an event rather than a grid line.
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px + FLAG * 1.6, area.top + FLAG);
        ctx.lineTo(px, area.top + FLAG * 2);
        ctx.closePath();
        ctx.fill();
        shown.push(m.at);
      }
      ctx.restore();
    }
    drawn.set(chart, shown);
  },
};
