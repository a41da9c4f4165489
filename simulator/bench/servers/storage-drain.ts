/**
 * Storage drain: the gateway's InfluxDB adapter (createStorage with `influx`, its defaults) fed the
 * bench frames of 100 devices as fast as it drains them. The feeder keeps a bounded backlog in the
 * adapter's memory (below the level where it would spill to disk), so what is measured is how fast
 * the adapter gets points into influxd, not the disk. Counts come from the adapter's health().
 * Usage (child of bench.ts, IPC): node storage-drain.js '{"influx":"http://127.0.0.1:P/bench","dataDir":"…","devices":100}'
 */
import { TelemetryBatch, ValueType } from '../../../devices/codec/index.js';
import { createStorage, STORAGE_DEFAULTS } from '../../../gateway/storage/index.js';
import type { Command, Report } from '../protocol.js';
import { deviceId } from '../load/devices.js';

interface Config {
  influx: string;
  dataDir: string;
  devices: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
setTimeout(() => process.exit(3), Number(process.env.BENCH_MAX_LIFE_MS ?? 120_000)).unref();
process.on('disconnect', () => process.exit(0));
const send = (r: Report) => process.send?.(r);

const storage = createStorage({ influx: config.influx, dataDir: config.dataDir, memoryPoints: 1000 });
const batch = new TelemetryBatch(8);
const values = [0, 21.5, 48.25, 1013.5, 3.75, 412, 1, 0];
batch.count = 8;
for (let i = 0; i < 8; i++) {
  batch.channels[i] = i + 1;
  batch.types[i] = i < 6 ? ValueType.F32 : ValueType.Bool;
  batch.values[i] = values[i]!;
  batch.offsets[i] = 0;
}
const ids = Array.from({ length: config.devices }, (_, i) => deviceId(i));
// Below the adapter's spill threshold (bufferPoints), with room for a few batches in flight.
const backlog = Math.min(STORAGE_DEFAULTS.bufferPoints / 2, STORAGE_DEFAULTS.batchPoints * 4);
let running = false;
let fed = 0;
let t = Date.now() - 3_600_000;
let d = 0;
let v = 0;

function feed(): void {
  if (!running) return;
  const h = storage.health();
  let room = backlog - h.buffered;
  while (room-- > 0) {
    if (d === ids.length) {
      d = 0;
      t++;
    }
    v = (v + 1) % 1000;
    batch.values[0] = v;
    storage.write(ids[d++]!, 'bench', t, batch);
    fed++;
  }
  setTimeout(feed, 2);
}

async function main(): Promise<void> {
  try {
    await storage.start();
  } catch (err) {
    send({ type: 'error', message: `storage did not start: ${(err as Error).message}` });
    setTimeout(() => process.exit(1), 100);
    return;
  }
  send({ type: 'ready', connected: 1, connectMs: 0 });
  const stats = () => {
    const h = storage.health();
    return { sent: fed, delivered: h.written, dashboardBytes: h.spilledPoints, downstreamBytes: h.rejected + h.lost, closed: h.retried, at: Date.now(), acked: 0, ackedAt: 0 };
  };
  process.on('message', (m: Command) => {
    if (m.cmd === 'start') {
      running = true;
      feed();
    } else if (m.cmd === 'stats') send({ type: 'stats', stats: stats() });
    else if (m.cmd === 'stop') {
      running = false;
      send({ type: 'stats', stats: stats() });
    } else if (m.cmd === 'exit') {
      running = false;
      // No need to flush the backlog into influxd: the measurement is over.
      setTimeout(() => process.exit(0), 50);
    }
  });
}

void main();
