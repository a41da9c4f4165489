/**
 * The load generator of the scaling section, a child process of bench.ts like ../loadgen.ts, but
 * for a fleet spread over several gateway instances: device i connects to the instance of its
 * slice (figures.ts fleetSlices), and every device's acks feed one ledger, so the count is the
 * cluster's. It sends either at a fixed total rate, one frame per write (`paced`), or as fast as
 * the gateways take it with flow control (`flood`, for saturation), and keeps the two viewers a
 * user has open (viewers.ts). Config as JSON in argv[2]; IPC commands and reports as ../loadgen.ts.
 */
import { FrameBlock, WS_FRAME_HEADER } from '../frames.js';
import { connectDevices, downstream, type WsDevice } from '../load/devices.js';
import { LatencyRecorder } from '../load/latency.js';
import { PacedSender, wsPacedTarget } from '../load/paced.js';
import { WindowedFlood } from '../load/window.js';
import type { Command, Report } from '../protocol.js';
import { TimelineLedger } from './ack-timeline.js';
import { fleetSlices } from './figures.js';
import type { ScaleLoadConfig, ScaleLoadStats } from './protocol.js';
import { devicePageStreams, FLEET_VIEW_STREAMS, Viewer } from './viewers.js';

const maxLife = Number(process.env.BENCH_MAX_LIFE_MS ?? 120_000);
setTimeout(() => {
  process.stderr.write(`scale loadgen: time limit of ${maxLife} ms reached, exiting\n`);
  process.exit(3);
}, maxLife).unref();
process.on('disconnect', () => process.exit(0));

function report(r: Report): void {
  process.send?.(r);
}

interface Sender {
  start(): void;
  stop(): void;
  readonly sent: number;
  readonly window?: number;
}

async function connectFleet(c: ScaleLoadConfig, ledger: TimelineLedger, base: number): Promise<WsDevice[]> {
  const slices = fleetSlices(c.devices, c.devicePorts.length);
  const perInstance = await Promise.all(
    slices.map((s, i) => connectDevices({ host: c.host, port: c.devicePorts[i]!, fleetKey: c.fleetKey }, s.count, base, ledger, s.first)),
  );
  return perInstance.flat();
}

function sender(c: ScaleLoadConfig, devices: WsDevice[], ledger: TimelineLedger, base: number): Sender {
  if (c.mode === 'paced') {
    // The recorder only notes send times here; nobody reads latencies in this section.
    const paced = new PacedSender(devices.map(wsPacedTarget), c.ratePerSec, new LatencyRecorder());
    return {
      start: () => paced.start(),
      stop: () => paced.stop(),
      get sent() {
        return paced.sent;
      },
    };
  }
  const targets = devices.map((d) => ({
    socket: d.socket,
    blocks: [new FrameBlock(WS_FRAME_HEADER, d.template, c.framesPerWrite), new FrameBlock(WS_FRAME_HEADER, d.template, c.framesPerWrite)],
    refill: (b: FrameBlock, count: number) => {
      d.seq = b.stamp(d.seq, base, count);
    },
  }));
  const flood = new WindowedFlood(targets, c.window, () => ledger.total, c.backlogMs, c.minWindow);
  ledger.onAck = () => flood.poke();
  return {
    start: () => flood.start(),
    stop: () => flood.stop(),
    get sent() {
      return flood.sent;
    },
    get window() {
      return flood.window;
    },
  };
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '{}') as ScaleLoadConfig;
  const t0 = performance.now();
  const base = Date.now();
  const ledger = new TimelineLedger();
  let devices: WsDevice[];
  let fleetView: Viewer;
  let devicePage: Viewer;
  try {
    devices = await connectFleet(c, ledger, base);
    const v = c.viewers;
    fleetView = await Viewer.open(c.host, v.fleetPort, v.operatorToken, FLEET_VIEW_STREAMS);
    devicePage = await Viewer.open(c.host, v.devicePagePort, v.operatorToken, devicePageStreams(v.deviceId));
  } catch (err) {
    report({ type: 'error', message: `scale loadgen could not connect (${c.devices} devices to ports ${c.devicePorts.join(', ')}): ${(err as Error).message}` });
    setTimeout(() => process.exit(1), 100);
    return;
  }
  const load = sender(c, devices, ledger, base);
  const stats = (): ScaleLoadStats => {
    const down = downstream(devices);
    return {
      sent: load.sent,
      delivered: fleetView.reader.messages + devicePage.reader.messages,
      dashboardBytes: fleetView.reader.bytes + devicePage.reader.bytes,
      downstreamBytes: down.bytes,
      closed: down.closed,
      at: Date.now(),
      acked: ledger.total,
      ackedAt: 0,
      ...(load.window !== undefined ? { window: load.window } : {}),
      fleetViewMessages: fleetView.reader.messages,
      devicePageDeviceMessages: devicePage.deviceMessages,
      viewersClosed: Number(fleetView.closed) + Number(devicePage.closed),
      ackTimeline: ledger.timeline(),
    };
  };
  report({ type: 'ready', connected: devices.length, connectMs: Math.round(performance.now() - t0) });
  process.on('message', (m: Command) => {
    switch (m.cmd) {
      case 'start':
        load.start();
        break;
      case 'stats':
        report({ type: 'stats', stats: stats() });
        break;
      case 'stop':
        load.stop();
        report({ type: 'stats', stats: stats() });
        break;
      case 'exit':
        load.stop();
        fleetView.close();
        devicePage.close();
        for (const d of devices) d.socket.destroy();
        setTimeout(() => process.exit(0), 50);
        break;
    }
  });
}

void main();
