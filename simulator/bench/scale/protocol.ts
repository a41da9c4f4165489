/**
 * What the scaling section's orchestrator (measure.ts) tells its load generator (loadgen.ts), and
 * the stats it gets back: the generic IPC commands and reports of ../protocol.ts, with a config
 * of its own and two more counters in the stats.
 */
import type { LoadStats } from '../protocol.js';
import type { AckTimeline } from './ack-timeline.js';

interface Common {
  host: string;
  /** The fleet is split into contiguous slices, one per port (one per instance; devices connect to theirs). */
  devicePorts: number[];
  fleetKey: string;
  devices: number;
  viewers: {
    operatorToken: string;
    /** Where the fleet view and the device page connect. */
    fleetPort: number;
    devicePagePort: number;
    /** The device the device page shows. */
    deviceId: string;
  };
}

export type ScaleLoadConfig =
  | (Common & { mode: 'paced'; /** Frames/s in total, one frame per write, devices in turn. */ ratePerSec: number })
  | (Common & {
      mode: 'flood';
      framesPerWrite: number;
      /** Flow control, as in ../load/window.ts: frames in flight at first, then this many ms of throughput, at least `minWindow`. */
      window: number;
      backlogMs: number;
      minWindow: number;
    });

/** ../protocol.ts LoadStats (`delivered`, `dashboardBytes`: both viewers) and the viewers' own counts. */
export interface ScaleLoadStats extends LoadStats {
  fleetViewMessages: number;
  /** `device` messages the device page received. */
  devicePageDeviceMessages: number;
  viewersClosed: number;
  /** Every ack so far by the gateway's flush time: the orchestrator counts its windows from it. */
  ackTimeline: AckTimeline;
}
