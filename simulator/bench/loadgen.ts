/**
 * The load generator, a child process of bench.ts pinned to its own core. It gets its config as JSON
 * in argv[2], connects, says `ready`, and then follows the orchestrator's commands over IPC
 * (`start`, `stats`, `stop`, `exit`). It exits on its own when the orchestrator goes away or when
 * its time limit (`BENCH_MAX_LIFE_MS`, default 120 s) runs out.
 */
import { readFileSync } from 'node:fs';
import { FrameBlock, WS_FRAME_HEADER } from './frames.js';
import { parseCounterFile } from './hot-counter.js';
import { AckLedger } from './load/acks.js';
import { Dashboard } from './load/dashboard.js';
import { connectDevices, downstream, type WsDevice } from './load/devices.js';
import { RawLineWriter } from './load/influx-raw.js';
import { LatencyRecorder } from './load/latency.js';
import { CountingSubscriber, MqttPublishers } from './load/mqtt.js';
import { connectMqttDevices, ProbeSubscriber } from './load/mqtt-paced.js';
import { PacedSender, wsPacedTarget, type PacedTarget } from './load/paced.js';
import { WindowedFlood } from './load/window.js';
import { JsonHttpLoad, JsonMqttLoad } from './load/json.js';
import type { Command, LoadConfig, LoadStats, Report } from './protocol.js';

const maxLife = Number(process.env.BENCH_MAX_LIFE_MS ?? 120_000);
setTimeout(() => {
  process.stderr.write(`loadgen: time limit of ${maxLife} ms reached, exiting\n`);
  process.exit(3);
}, maxLife).unref();
process.on('disconnect', () => process.exit(0));

function report(r: Report): void {
  process.send?.(r);
}

/** What every mode offers the command loop. */
interface Load {
  start(): void;
  stats(): LoadStats;
  stop(): void;
  close(): void;
}

/**
 * Acks of one gateway flush reach thousands of sockets; the generator reads them over one or more
 * of its own loop turns. Flushes younger than this may be only partly read: they are counted later.
 */
const ACK_MARGIN_MS = 1000;

function ackStats(ledger: AckLedger): { acked: number; ackedAt: number } {
  const a = ledger.countAt(Date.now() - ACK_MARGIN_MS);
  return { acked: a.frames, ackedAt: a.t };
}

async function wsFlood(c: Extract<LoadConfig, { mode: 'ws-flood' }>): Promise<Load> {
  const base = Date.now();
  const ledger = new AckLedger();
  const devices = await connectDevices(c, c.devices, base, ledger);
  const dashboard = c.dashboard ? await Dashboard.open({ host: c.host, port: c.port, ...c.dashboard, deviceIds: devices.map((d) => d.id) }) : undefined;
  const targets = devices.map((d) => ({
    socket: d.socket,
    blocks: [new FrameBlock(WS_FRAME_HEADER, d.template, c.framesPerWrite), new FrameBlock(WS_FRAME_HEADER, d.template, c.framesPerWrite)],
    refill: (b: FrameBlock, count: number) => {
      d.seq = b.stamp(d.seq, base, count);
    },
  }));
  let consumed = () => ledger.total;
  let poll: NodeJS.Timeout | undefined;
  let flood: WindowedFlood;
  if (c.consumed !== 'acks') {
    const { file, divisor } = c.consumed;
    let last = 0;
    consumed = () => last;
    poll = setInterval(() => {
      try {
        const n = Math.floor(parseCounterFile(readFileSync(file, 'utf8')).frames / divisor);
        if (n !== last) {
          last = n;
          flood.poke();
        }
      } catch {
        // Being rewritten: the next poll reads it.
      }
    }, 1);
  }
  flood = new WindowedFlood(targets, c.window, () => consumed(), c.backlogMs);
  ledger.onAck = () => flood.poke();
  return {
    start: () => flood.start(),
    stop: () => {
      flood.stop();
      if (poll) clearInterval(poll);
    },
    stats: () => {
      const down = downstream(devices);
      return {
        sent: flood.sent,
        delivered: dashboard?.reader.messages ?? 0,
        dashboardBytes: dashboard?.reader.bytes ?? 0,
        downstreamBytes: down.bytes,
        closed: down.closed,
        at: Date.now(),
        window: flood.window,
        ...ackStats(ledger),
      };
    },
    close: () => {
      dashboard?.close();
      for (const d of devices) d.socket.destroy();
    },
  };
}

async function wsPaced(c: Extract<LoadConfig, { mode: 'ws-paced' }>): Promise<Load> {
  const ledger = new AckLedger();
  const devices = await connectDevices(c, c.devices, Date.now(), ledger);
  const latency = new LatencyRecorder();
  const dashboard = c.dashboard ? await Dashboard.open({ host: c.host, port: c.port, ...c.dashboard, deviceIds: devices.map((d) => d.id) }, latency) : undefined;
  const paced = pacedRun(c, devices.map(wsPacedTarget), latency);
  return {
    ...paced,
    stats: () => {
      const down = downstream(devices);
      return { sent: paced.sender.sent, delivered: dashboard?.reader.messages ?? 0, dashboardBytes: dashboard?.reader.bytes ?? 0, downstreamBytes: down.bytes, closed: down.closed, at: Date.now(), ...ackStats(ledger) };
    },
    close: () => {
      dashboard?.close();
      for (const d of devices) d.socket.destroy();
    },
  };
}

async function mqttPaced(c: Extract<LoadConfig, { mode: 'mqtt-paced' }>): Promise<Load> {
  const latency = new LatencyRecorder();
  const sub = await ProbeSubscriber.open(c.host, c.port, latency);
  const devices = await connectMqttDevices(c.host, c.port, c.fleetKey, c.devices);
  const paced = pacedRun(c, devices, latency);
  return {
    ...paced,
    stats: () => ({
      sent: paced.sender.sent,
      delivered: sub.received,
      dashboardBytes: sub.socket.bytesRead,
      downstreamBytes: devices.reduce((n, d) => n + d.pubacks, 0),
      closed: devices.filter((d) => d.socket.destroyed).length,
      at: Date.now(),
      acked: 0,
      ackedAt: 0,
    }),
    close: () => {
      sub.close();
      for (const d of devices) d.socket.destroy();
    },
  };
}

/** The paced sender with its measurement window, shared by the WebSocket and MQTT paced modes. */
function pacedRun(c: { ratePerSec: number; warmupMs: number; windowMs: number }, targets: PacedTarget[], latency: LatencyRecorder): Pick<Load, 'start' | 'stop'> & { sender: PacedSender } {
  const sender = new PacedSender(targets, c.ratePerSec, latency);
  let sentAtStart = 0;
  let sentAtEnd = 0;
  const timers: NodeJS.Timeout[] = [];
  return {
    sender,
    start: () => {
      sender.start();
      timers.push(
        setTimeout(() => {
          latency.windowStart = performance.now();
          sentAtStart = sender.sent;
        }, c.warmupMs),
        setTimeout(() => {
          latency.windowEnd = performance.now();
          sentAtEnd = sender.sent;
        }, c.warmupMs + c.windowMs),
        // Keep the load on a little past the window so frames sent at its end are delivered normally,
        // then give the last flush time to arrive.
        setTimeout(() => sender.stop(), c.warmupMs + c.windowMs + 400),
        setTimeout(() => report({ type: 'latency', latency: latency.summary(), sentInWindow: sentAtEnd - sentAtStart, lagTicks: sender.lagTicks, unknown: latency.unknown }), c.warmupMs + c.windowMs + 800),
      );
    },
    stop: () => {
      sender.stop();
      timers.forEach(clearTimeout);
    },
  };
}

async function wsIdle(c: Extract<LoadConfig, { mode: 'ws-idle' }>): Promise<Load> {
  const devices: WsDevice[] = await connectDevices(c, c.devices, Date.now(), undefined, c.first ?? 0);
  return {
    start: () => {},
    stop: () => {},
    stats: () => {
      const down = downstream(devices);
      return { sent: 0, delivered: 0, dashboardBytes: 0, downstreamBytes: down.bytes, closed: down.closed, at: Date.now(), acked: 0, ackedAt: 0 };
    },
    close: () => devices.forEach((d) => d.socket.destroy()),
  };
}

async function mqttFlood(c: Extract<LoadConfig, { mode: 'mqtt-flood' }>): Promise<Load> {
  const sub = c.subscriber ? await CountingSubscriber.open(c.host, c.port) : undefined;
  const pubs = await MqttPublishers.connect(c, Date.now());
  return {
    start: () => pubs.start(),
    stop: () => pubs.stop(),
    stats: () => ({
      sent: pubs.sent,
      delivered: sub?.received ?? 0,
      dashboardBytes: sub?.socket.bytesRead ?? 0,
      downstreamBytes: pubs.pubacks,
      closed: pubs.sockets.filter((s) => s.destroyed).length,
      at: Date.now(),
      ...ackStats(pubs.ledger),
    }),
    close: () => {
      pubs.close();
      sub?.close();
    },
  };
}

async function influxRaw(c: Extract<LoadConfig, { mode: 'influx-raw' }>): Promise<Load> {
  const w = new RawLineWriter(c);
  await w.ensureSchema();
  return {
    start: () => w.start(),
    stop: () => w.stop(),
    stats: () => ({ sent: w.written, delivered: w.written, dashboardBytes: 0, downstreamBytes: w.failed, closed: 0, at: Date.now(), acked: 0, ackedAt: 0 }),
    close: () => w.close(),
  };
}

/** JSON telemetry: the gateway's answers (PUBACK, 202) count as acks, timed by this process's clock. */
async function jsonLoad(c: Extract<LoadConfig, { mode: 'json-mqtt' | 'json-http' }>): Promise<Load> {
  const l = c.mode === 'json-mqtt' ? await JsonMqttLoad.connect(c) : await JsonHttpLoad.connect(c);
  return {
    start: () => l.start(),
    stop: () => l.stop(),
    stats: () => {
      const s = l.stats();
      const at = Date.now();
      return { sent: s.sent, delivered: s.answered, dashboardBytes: 0, downstreamBytes: s.refused, closed: s.closed, at, acked: s.answered, ackedAt: at };
    },
    close: () => l.close(),
  };
}

async function setUp(c: LoadConfig): Promise<Load> {
  switch (c.mode) {
    case 'ws-flood':
      return wsFlood(c);
    case 'ws-paced':
      return wsPaced(c);
    case 'mqtt-paced':
      return mqttPaced(c);
    case 'ws-idle':
      return wsIdle(c);
    case 'mqtt-flood':
      return mqttFlood(c);
    case 'influx-raw':
      return influxRaw(c);
    case 'json-mqtt':
    case 'json-http':
      return jsonLoad(c);
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
  const t0 = performance.now();
  let load: Load;
  try {
    load = await setUp(config);
  } catch (err) {
    report({ type: 'error', message: `loadgen could not set up ${config.mode}: ${(err as Error).message}` });
    setTimeout(() => process.exit(1), 100);
    return;
  }
  const connected = config.mode === 'ws-flood' || config.mode === 'ws-paced' || config.mode === 'mqtt-paced' || config.mode === 'ws-idle' || config.mode === 'json-mqtt' || config.mode === 'json-http' ? config.devices : config.mode === 'mqtt-flood' ? config.publishers : 0;
  report({ type: 'ready', connected, connectMs: Math.round(performance.now() - t0) });
  process.on('message', (m: Command) => {
    switch (m.cmd) {
      case 'start':
        load.start();
        break;
      case 'stats':
        report({ type: 'stats', stats: load.stats() });
        break;
      case 'stop':
        load.stop();
        report({ type: 'stats', stats: load.stats() });
        break;
      case 'exit':
        load.stop();
        load.close();
        setTimeout(() => process.exit(0), 50);
        break;
    }
  });
}

void main();
