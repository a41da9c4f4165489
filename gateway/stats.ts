/** The gateway's counters in one object (the live `stats` message), with per-second rates since the previous call. */
import type { GatewayStats as StatsJson } from '../devices/api/json.js';
import type { CommandService } from './commands/commands.js';
import type { DeviceTable } from './devices.js';
import type { Ingest } from './ingest.js';

export class GatewayStats {
  private lastAt = Date.now();
  private lastFrames = 0;
  private lastReadings = 0;
  private framesPerSec = 0;
  private readingsPerSec = 0;
  private readonly startedAt = Date.now();

  constructor(
    private readonly devices: DeviceTable,
    private readonly ingest: Ingest,
    private readonly commands: CommandService,
    /** What other modules count: live clients and drops, storage health. */
    private readonly extra: () => Pick<StatsJson, 'liveClients' | 'liveDropped' | 'storage'>,
  ) {}

  /** Recomputes the rates when at least a second has passed since the last sample. */
  sample(now = Date.now()): StatsJson {
    const s = this.ingest.stats;
    const dt = (now - this.lastAt) / 1000;
    if (dt >= 1) {
      this.framesPerSec = Math.round((s.frames - this.lastFrames) / dt);
      this.readingsPerSec = Math.round((s.readings - this.lastReadings) / dt);
      this.lastAt = now;
      this.lastFrames = s.frames;
      this.lastReadings = s.readings;
    }
    let gaps = 0;
    for (const d of this.devices.all()) gaps += d.gaps;
    return {
      devicesOnline: this.devices.online,
      devicesKnown: this.devices.size,
      framesPerSec: this.framesPerSec,
      readingsPerSec: this.readingsPerSec,
      frames: s.frames,
      readings: s.readings,
      duplicates: s.duplicates,
      gaps,
      errors: s.errors,
      errorsByCode: Object.fromEntries(s.errorsByCode),
      commands: this.commands.counts(),
      uptimeSec: Math.round((now - this.startedAt) / 1000),
      ...this.extra(),
    };
  }
}
