/**
 * From raw results to the rows of BENCHMARKS.md: which figure is compared with which baseline, the
 * targets of the issue, and whether each is met. A target whose inputs are missing says so.
 */
import type { IngestResult } from './measure/ingest.js';
import type { MemoryResult } from './measure/memory.js';
import type { Sampled } from './measure/windows.js';
import { JSON_DEVICES, JSON_IN_FLIGHT } from './measure/json.js';
import { kb, si, type Row } from './report.js';

type Results = ReadonlyMap<string, unknown>;

/** Devices in the --workers comparison. */
export const WORKERS_DEVICES = 1000;

function ratioText(x: number, of: string): string {
  return `${x.toFixed(2)}× ${of}`;
}

/**
 * a / b. When both ran in the same rounds, the ratio is taken per round (runs next to each other
 * in time, so on about the same machine speed) and averaged; the per-round values are shown.
 */
function rel(a: Sampled, b: Sampled): { x: number; rounds: string } {
  if (a.roundRates.length > 1 && a.roundRates.length === b.roundRates.length) {
    const per = a.roundRates.map((r, i) => r / b.roundRates[i]!);
    return { x: per.reduce((s, v) => s + v, 0) / per.length, rounds: ` (rounds: ${per.map((v) => v.toFixed(2)).join(', ')})` };
  }
  return { x: a.rate / b.rate, rounds: '' };
}

export function relText(a: Sampled, b: Sampled, of: string): string {
  const r = rel(a, b);
  return ratioText(r.x, of) + r.rounds;
}

/** Which side was the limit, from the CPU each used. */
export function limit(s: { serverCpu: number; loadCpu: number }, server = 'server'): string {
  const cpu = `${server} ${s.serverCpu.toFixed(2)} cores, generator ${s.loadCpu.toFixed(2)}`;
  if (s.serverCpu >= 0.9) return `${server}-bound (${cpu})`;
  if (s.loadCpu >= 0.9) return `generator-bound (${cpu})`;
  return `neither side saturated (${cpu})`;
}

function sampledDetails(s: Sampled, extra = '', traffic = true): string {
  return (
    `windows ${si(s.min)}–${si(s.max)}/s; server ${s.serverCpu.toFixed(2)} cores, generator ${s.loadCpu.toFixed(2)} cores, other processes ${s.otherCpu.toFixed(2)} cores` +
    (traffic ? `; generator handed the kernel ${si(s.offered)}/s` : '') +
    (traffic && s.delivered > 0 ? `; client received ${si(s.delivered)} msgs/s` : '') +
    (s.dashboardBytesPerSec > 0 ? ` (${(s.dashboardBytesPerSec / 1e6).toFixed(1)} MB/s)` : '') +
    (s.closed > 0 ? `; ${s.closed} connections closed by the server` : '') +
    (s.window > 0 ? `; flow-control window ${si(s.window)} frames` : '') +
    extra
  );
}

export function buildRows(results: Results, missing: ReadonlyMap<string, string>): Row[] {
  const get = <T>(id: string) => results.get(id) as T | undefined;
  const rows: Row[] = [];
  const absent = (id: string) => missing.get(id) ?? 'not measured';

  // --- Ingest -------------------------------------------------------------------------------
  const names = {
    sink: 'Generator headroom: do-nothing TCP sink',
    uws: 'Ceiling: uWS, handler only counts',
    ws: '`ws` baseline (tutorial: decodeFrame + JSON.stringify + one send per frame)',
    gateway: 'Gateway, full pipeline',
  } as const;
  for (const devices of [100, 10_000]) {
    const n = devices.toLocaleString('en-US');
    const uws = get<IngestResult>(`ingest-uws-${devices}`);
    const ws = get<IngestResult>(`ingest-ws-${devices}`);
    const gw = get<IngestResult>(`ingest-gateway-${devices}`);
    const dash = ', one dashboard following every device';
    for (const kind of ['sink', 'uws', 'ws', 'gateway'] as const) {
      const id = `ingest-${kind}-${devices}`;
      const r = get<IngestResult>(id);
      const setup = `${n} devices, 64-byte frames (8 readings)${kind === 'ws' || kind === 'gateway' ? dash : ''}`;
      if (!r) {
        rows.push({ measurement: names[kind], setup, missing: absent(id), ...(kind === 'gateway' && devices === 10_000 ? { target: '≥ 0.3× ceiling, ≥ 3× ws' } : {}) });
        continue;
      }
      const row: Row = { measurement: names[kind], setup, rate: r.rate, readings: r.readingsRate, details: sampledDetails(r, `; ${n} connections opened in ${(r.connectMs / 1000).toFixed(1)} s`) };
      if (kind === 'sink') {
        const fastest = [uws, ws, gw].filter((x): x is IngestResult => x !== undefined).sort((a, b) => b.rate - a.rate)[0];
        if (fastest) {
          const x = rel(r, fastest).x;
          Object.assign(row, { ratio: relText(r, fastest, 'the fastest server here'), target: '> 1× (the generator is not the limit)', met: x > 1 ? 'yes' : 'no' });
        }
        row.result = `generator ${r.loadCpu.toFixed(2)} cores, sink ${r.serverCpu.toFixed(2)} cores`;
      } else if (kind === 'gateway') {
        const parts: string[] = [];
        if (uws) parts.push(relText(r, uws, 'ceiling'));
        if (ws && devices !== 10_000) parts.push(relText(r, ws, 'ws'));
        row.ratio = parts.join('; ') || undefined;
        if (devices === 10_000) {
          row.target = '≥ 0.3× ceiling';
          row.met = uws ? (rel(r, uws).x >= 0.3 ? 'yes' : 'no') : undefined;
          if (!uws) row.ratio = `${row.ratio ?? ''} (ceiling: ${absent('ingest-uws-10000')})`;
          row.result = limit(r);
          rows.push(row);
          rows.push({
            measurement: 'Gateway, full pipeline (same run)',
            setup: `${n} devices, against the ws baseline`,
            rate: r.rate,
            readings: r.readingsRate,
            ratio: ws ? relText(r, ws, 'ws') : `ws: ${absent('ingest-ws-10000')}`,
            target: '≥ 3× ws',
            ...(ws ? { met: rel(r, ws).x >= 3 ? ('yes' as const) : ('no' as const) } : {}),
          });
          continue;
        }
      } else if (kind === 'ws' && uws) {
        row.ratio = relText(r, uws, 'ceiling');
      }
      if (kind !== 'sink') row.result = limit(r);
      rows.push(row);
    }
  }
  const w1 = get<IngestResult>('workers-1');
  const w2 = get<IngestResult>('workers-2');
  const wSetup = `${WORKERS_DEVICES.toLocaleString('en-US')} devices, 64-byte frames, one dashboard following every device; nothing pinned: the generator competes with the workers for the 2 cores`;
  for (const [n, r] of [[1, w1], [2, w2]] as const) {
    const measurement = `Gateway \`--workers ${n}\``;
    if (!r) {
      rows.push({ measurement, setup: wSetup, missing: absent(`workers-${n}`) });
      continue;
    }
    const row: Row = { measurement, setup: wSetup, rate: r.rate, readings: r.readingsRate, result: `gateway ${r.serverCpu.toFixed(2)} cores, generator ${r.loadCpu.toFixed(2)} cores`, details: sampledDetails(r) };
    if (n === 2 && w1) row.ratio = relText(r, w1, '`--workers 1`');
    rows.push(row);
  }

  // --- Memory -------------------------------------------------------------------------------
  const memWs = get<MemoryResult>('memory-ws');
  const mem = (id: string, measurement: string, target: boolean) => {
    const r = get<MemoryResult>(id);
    const setup = '10,000 idle authenticated device connections';
    if (!r) {
      rows.push({ measurement, setup, missing: absent(id), ...(target ? { target: '≤ 2 KB per connection' } : {}) });
      return;
    }
    const row: Row = {
      measurement,
      setup,
      result: `${kb(r.perConnection)} per connection`,
      details:
        `RSS ${(r.rssBefore / 2 ** 20).toFixed(1)} → ${(r.rssAfter / 2 ** 20).toFixed(1)} MiB; from 1,000 to 10,000 connections ${kb(r.marginal)} each` +
        (r.heapPerConnection !== undefined ? `; of it JS heap in use ${kb(r.heapPerConnection)} per connection (the rest native: uWS sockets and buffers)` : '') +
        (r.closed ? `; ${r.closed} connections were closed` : ''),
    };
    if (id !== 'memory-ws' && memWs) row.ratio = ratioText(r.perConnection / memWs.perConnection, 'ws');
    if (target) {
      row.target = '≤ 2 KB per connection';
      row.met = r.perConnection <= 2048 ? 'yes' : 'no';
    }
    rows.push(row);
  };
  mem('memory-gateway', 'Memory per idle device connection: gateway', true);
  mem('memory-ws', 'Memory per idle device connection: `ws` baseline', false);
  mem('memory-uws', 'Memory per idle device connection: uWS count-only server', false);

  // --- MQTT ---------------------------------------------------------------------------------
  for (const qos of [0, 1] as const) {
    const gw = get<Sampled>(`mqtt-gateway-qos${qos}`);
    const mq = get<Sampled>(`mqtt-mosquitto-qos${qos}`);
    const setup = `100 publishers, QoS ${qos} PUBLISH, 64-byte frames`;
    if (gw) {
      rows.push({
        measurement: 'MQTT ingest: gateway (embedded aedes)',
        setup,
        rate: gw.rate,
        unit: 'msgs/s',
        readings: gw.readingsRate,
        ratio: mq ? ratioText(gw.rate / mq.rate, 'Mosquitto') : `Mosquitto: ${absent(`mqtt-mosquitto-qos${qos}`)}`,
        target: '≥ 0.5× Mosquitto',
        ...(mq ? { met: gw.rate >= 0.5 * mq.rate ? ('yes' as const) : ('no' as const) } : {}),
        result: limit(gw),
        details: sampledDetails(gw, '; counted by the gateway’s acks'),
      });
    } else rows.push({ measurement: 'MQTT ingest: gateway (embedded aedes)', setup, missing: absent(`mqtt-gateway-qos${qos}`), target: '≥ 0.5× Mosquitto' });
    if (mq) {
      rows.push({
        measurement: 'MQTT ingest: Mosquitto',
        setup: `${setup}, one subscriber to devices/+/telemetry`,
        rate: mq.rate,
        unit: 'msgs/s',
        readings: mq.readingsRate,
        result: limit(mq, 'broker'),
        details: sampledDetails(mq, '; counted by the subscriber'),
      });
    } else rows.push({ measurement: 'MQTT ingest: Mosquitto', setup, missing: absent(`mqtt-mosquitto-qos${qos}`) });
  }

  // --- JSON telemetry (issue 17) ------------------------------------------------------------
  const jsonSetups = {
    'json-mqtt': ['JSON over MQTT: gateway (embedded broker)', `${JSON_DEVICES} devices, QoS 1 on devices/{id}/telemetry/json with seq, 3 readings per message, ${JSON_IN_FLIGHT.mqtt} unanswered per device`],
    'json-http': ['JSON over HTTP: gateway', `${JSON_DEVICES} devices, keep-alive POST /api/devices/{id}/telemetry without seq, 3 readings per request, ${JSON_IN_FLIGHT.http} connections per device, one request in flight on each`],
  } as const;
  for (const [id, [measurement, setup]] of Object.entries(jsonSetups)) {
    const r = get<Sampled>(id);
    if (!r) {
      rows.push({ measurement, setup, missing: absent(id) });
      continue;
    }
    rows.push({
      measurement,
      setup,
      rate: r.rate,
      unit: 'msgs/s',
      readings: r.readingsRate,
      result: `${limit(r)}; ${((r.serverCpu / r.rate) * 1e6).toFixed(1)} µs of gateway CPU per message`,
      details: sampledDetails(r, `; counted by the gateway’s answers (${id === 'json-mqtt' ? 'PUBACKs' : '202s'}), sent once the readings are safe`),
    });
  }

  // --- Storage ------------------------------------------------------------------------------
  const raw = get<Sampled>('storage-raw');
  const drain = get<Sampled>('storage-adapter');
  const sSetup = '100 devices, lines of 8 float fields, 5,000 per request, 2 in flight';
  if (raw) {
    rows.push({ measurement: 'Storage: raw line protocol into influxd', setup: sSetup, rate: raw.rate, unit: 'points/s', readings: raw.readingsRate, result: limit(raw, 'influxd'), details: sampledDetails(raw, '', false) });
  } else rows.push({ measurement: 'Storage: raw line protocol into influxd', setup: sSetup, missing: absent('storage-raw') });
  if (drain) {
    rows.push({
      measurement: 'Storage drain: gateway InfluxDB adapter (createStorage)',
      setup: `${sSetup} (adapter defaults)`,
      rate: drain.rate,
      unit: 'points/s',
      readings: drain.readingsRate,
      result: limit(drain, 'influxd').replace('generator', 'adapter'),
      ratio: raw ? ratioText(drain.rate / raw.rate, 'raw') : `raw: ${absent('storage-raw')}`,
      target: '≥ 0.9× raw',
      ...(raw ? { met: drain.rate >= 0.9 * raw.rate ? ('yes' as const) : ('no' as const) } : {}),
      details: sampledDetails(drain, '', false),
    });
  } else rows.push({ measurement: 'Storage drain: gateway InfluxDB adapter (createStorage)', setup: sSetup, missing: absent('storage-adapter'), target: '≥ 0.9× raw' });
  return rows;
}

export function notes(
  lat: { devices: number; warmupMs: number; windowMs: number },
  plan: { warmupMs: number; windowMs: number; windows: number },
  rounds: number,
): string[] {
  return [
    'One 2-core (virtual) machine runs everything: each server in turn on core 0, the load generator on core 1. Both cores are busy during a run, and on this kind of machine one busy core slows the other down (shared caches, a neighbour on the host): the core probe in the header shows how much the speed moved.',
    `Ingest rates are counted by the server, with the server's own clock: the bench servers write their counts from the message handler to a file every 2 ms (simulator/bench/hot-counter.ts); the gateway's count is what it acks to its devices, stamped with the gateway's time of the ack flush (load/acks.ts), so neither depends on a busy event loop answering a request. ${rounds > 1 ? `Each ingest measurement runs ${rounds} times, interleaved with the others; each run has` : 'Each ingest measurement runs once, with'} a ${plan.warmupMs / 1000} s warm-up and ${plan.windows} windows of at least ${plan.windowMs / 1000} s (a window ends at the first count stamped that much later); the figure is the median over all windows, their spread is in Details. MQTT: one run, 2 windows of 3 s; storage: one run, 3 windows of 3 s.`,
    'The load generator (simulator/bench/loadgen.ts, Node) does a normal WebSocket upgrade per device (`/device?id=…` with the fleet token), then writes pre-encoded, pre-masked frames in large batches to the raw TCP socket (256 frames per write with 100 devices, 64 with 10,000), two batches per socket. The masking key is all zeros: legal per RFC 6455 (the server XORs whatever key the client sends) but unusual (browsers pick random keys); it makes masking a no-op so the seq and timestamp of every frame are patched in place before each write. Every frame has a fresh per-device seq, so the gateway’s dedupe counts it as new.',
    'Flow control: the generator keeps at most 100 ms of the server’s own recent throughput (at least 8,192 frames) in flight beyond what the server has counted (for the gateway: acked), as devices keep a bounded outbox. Without it the kernel queues megabytes per connection and every server (uWS or Node) then spends seconds per event-loop turn reading them, so that acks, dashboard updates and requests wait seconds: that is not a sustained rate. The final window is in Details.',
    'The headroom rows drive the same load into a do-nothing TCP sink: the generator’s own ceiling. Where it is not well above a server’s figure, that server figure is a lower bound.',
    'What limits each row: “server-bound” means the server process used ≥ 0.9 of its core over the windows (the server itself is the limit), “generator-bound” the same for the generator. At its maximum the gateway runs its timers (acks every `--ack-interval`, live flushes every `--live-flush-ms`) once per event-loop turn, so the dashboard gets fewer, larger updates: its message rate is in Details.',
    'The dashboard: for the gateway one `/live` client subscribed to `fleet`, `stats`, `commands` and the `device:<id>` stream of every device (LIVE.md has no wildcard); for the `ws` baseline one client that gets every frame as JSON. It runs inside the generator process and only counts what arrives during throughput runs.',
    `The headline rows (the shape real fleets have): ${lat.devices.toLocaleString('en-US')} devices, one 64-byte frame of 8 readings per message (one write each), paced every millisecond at a fixed total rate spread round robin over the devices, from 1 Hz per device up; ${lat.warmupMs / 1000} s warm-up, ${lat.windowMs / 1000} s window; every server gets the same load in the same run. The gateway’s dashboard is a user’s: one /live client on the fleet view (\`fleet\`, \`stats\`, \`commands\`) plus one device page (\`device:<first id>\`); the stress row follows every device’s stream. The \`ws\` baseline sends every frame to its one dashboard as JSON. The count-only uWS server has no dashboard (its CPU is the floor for one JS callback per message). Mosquitto gets the same number of MQTT clients, each publishing one QoS 1 PUBLISH per frame (PUBACKs read), and one subscriber to devices/+/telemetry (QoS 0) as its dashboard. Latency: channel 1 of each frame carries a scrambled probe id; the sender notes the send time, the dashboard (same process, same clock) the first arrival of the reading, in a device message or as a device’s last value in a fleet delta. Ingest is counted as in the throughput rows (the gateway by its acks, Mosquitto by its subscriber). µs per frame = server cores / frames per second taken.`,
    'Memory: RSS of the server process (VmRSS, the median of 8 readings over 2 s) before any device and after 10,000 idle authenticated connections, divided by 10,000 (one-time costs included; the 1,000 → 10,000 step is in Details). Kernel socket buffers are not in RSS; garbage not yet collected is, so this figure moves by a few tenths of a KB from run to run.',
    'MQTT: 100 publishers (client id = username = device id, password = fleet token) flood pre-encoded PUBLISH packets with valid frames and fresh seqs (QoS 1: fresh packet ids; PUBACKs are read and discarded, no in-flight window), 256 per write. The gateway is counted as for WebSocket devices, by its acks (QoS 0 PUBLISH on each device’s commands topic, stamped with the gateway’s clock); Mosquitto 2 (temp config, `allow_anonymous true`, `persistence false`, pinned to core 0) is counted by one subscriber to `devices/+/telemetry` at QoS 0 in the generator process, so Mosquitto writes every message to a socket while the gateway consumes in-process: that is the architecture compared. No flow control here: the kernel socket buffers fill during the warm-up and hold the backlog, so what the generator hands the kernel during the windows can be near 0.',
    'Storage: each side gets a fresh influxd (same binary and config, temp folder, pinned to core 0); the writer runs on core 1. The raw side POSTs hand-built line protocol, the same lines the adapter writes, 5,000 per request, 2 requests in flight (the adapter’s defaults). The adapter side calls `write()` of `createStorage({ influx })` with a bounded backlog kept below its spill threshold, and counts `health().written`. A point is one line: one frame’s 8 readings as 8 fields.',
    `JSON telemetry (\`--only json-\`): ${JSON_DEVICES} devices of type climate, each message 3 named readings (\`{"temperature", "humidity", "battery"}\`). \`json-mqtt\`: raw MQTT 3.1.1 sockets publishing QoS 1 with seq and epoch (exactly once: each PUBACK waits for the ack flush that writes the device’s cursor), ${JSON_IN_FLIGHT.mqtt} unanswered per device. \`json-http\`: Node http keep-alive clients POSTing the short form without seq (at least once: each 202 waits until storage settled it), ${JSON_IN_FLIGHT.http} connections per device with one request in flight each, \`--http-telemetry-rate 0\`. Counted by those answers in the generator, timed by its clock; one run, 1.5 s warm-up, 2 windows of 2 s. The binary rows are unaffected by JSON: the binary path does no JSON work.`,
    'The micro-benchmarks of the decoder (test/bench, vitest bench: decode speed and allocations) are separate: `npx vitest bench --run --project unit`.',
  ];
}
