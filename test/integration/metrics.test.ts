import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { DeviceClient } from '../../devices/sdk/index.js';
import { waitFor } from '../helpers/wait.js';
import { deviceToken, startGateway, type TestGateway } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** Parses Prometheus text exposition into "name{labels}" → value, checking every line's syntax. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|[Nn]a[Nn]|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    out.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return out;
}

describe('/metrics', () => {
  it('is Prometheus text whose counters move with traffic', async () => {
    gw = await startGateway({ ackInterval: 5 });
    const before = parse(await (await fetch(gw.http + '/metrics')).text());
    expect(before.get('gateway_frames_total')).toBe(0);
    expect(before.get('gateway_devices_online')).toBe(0);
    expect(before.has('gateway_nodejs_eventloop_lag_seconds')).toBe(true);
    const d = await RawDevice.connect(gw.ws, 'm1', deviceToken('m1'));
    for (let s = 0; s < 10; s++) d.send(encodeTelemetry({ epoch: 1, seq: s, timestamp: 1000 + s }, [{ channel: 1, value: s }, { channel: 2, value: true }]));
    d.send(encodeTelemetry({ epoch: 1, seq: 3, timestamp: 1003 }, [{ channel: 1, value: 3 }]));
    await d.waitAck(1, 9);
    d.send(new Uint8Array([9, 9, 9]));
    await d.closed;
    const res = await fetch(gw.http + '/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const after = parse(await res.text());
    expect(after.get('gateway_frames_total')).toBe(10);
    expect(after.get('gateway_readings_total')).toBe(20);
    expect(after.get('gateway_duplicates_total')).toBe(1);
    expect(after.get('gateway_errors_total{code="FRAME_TRUNCATED"}')).toBe(1);
    expect(after.get('gateway_refusals_total{code="FRAME_TRUNCATED",transport="ws"}')).toBe(1);
    expect(after.get('gateway_acks_sent_total')).toBeGreaterThan(0);
    expect(after.get('gateway_devices_known')).toBe(1);
    expect(after.get('gateway_connections{transport="ws"}')).toBe(0);
  });

  it('counts open file descriptors without listing them during the scrape: each scrape answers the count the previous one started', async () => {
    gw = await startGateway({});
    const fds = async () => parse(await (await fetch(gw!.http + '/metrics')).text()).get('gateway_process_open_fds');
    const idle = await waitFor(async () => {
      const n = await fds();
      return n !== undefined && n > 0 ? n : undefined;
    }, 'a first fd count', 5000, 50);
    const devices = await Promise.all(Array.from({ length: 40 }, (_, i) => RawDevice.connect(gw!.ws, `fd${i}`, deviceToken(`fd${i}`))));
    // The first scrape after they connected may still answer the count from before.
    const busy = await waitFor(async () => {
      const n = await fds();
      return n !== undefined && n >= idle + 40 ? n : undefined;
    }, 'the count with 40 more connections', 5000, 50);
    expect(busy).toBeGreaterThanOrEqual(idle + 40);
    for (const d of devices) d.close();
  });
});

/** The `# TYPE` of every metric family. */
function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

describe('/metrics naming (issue 16)', () => {
  it('follows the Prometheus naming rules promtool checks: counters end in _total, nothing else does, no doubled prefix', async () => {
    gw = await startGateway();
    const text = await (await fetch(gw.http + '/metrics')).text();
    const t = types(text);
    expect(t.size).toBeGreaterThan(20);
    for (const [name, type] of t) {
      expect(name, name).toMatch(/^gateway_/);
      expect(name, name).not.toMatch(/^gateway_process_process_|^gateway_process_nodejs_/);
      if (type === 'counter') expect(name, `${name} is a counter`).toMatch(/_total$/);
      else expect(name, `${name} is a ${type}`).not.toMatch(/_total$/);
    }
    expect(t.get('gateway_process_cpu_seconds_total')).toBe('counter');
    expect(t.get('gateway_nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('splits storage into gauges (levels, flags) and counters (running totals)', async () => {
    gw = await startGateway();
    const text = await (await fetch(gw.http + '/metrics')).text();
    const t = types(text);
    expect(t.has('gateway_storage')).toBe(false);
    for (const g of ['gateway_storage_buffered_points', 'gateway_storage_spill_bytes', 'gateway_storage_spilled_points', 'gateway_storage_degraded', 'gateway_storage_down']) expect(t.get(g), g).toBe('gauge');
    for (const c of ['gateway_storage_points_written_total', 'gateway_storage_write_retries_total', 'gateway_storage_frames_refused_total', 'gateway_storage_points_rejected_total', 'gateway_storage_points_lost_total']) {
      expect(t.get(c), c).toBe('counter');
    }
    const v = parse(text);
    expect(v.get('gateway_storage_degraded')).toBe(0);
    expect(v.get('gateway_storage_down')).toBe(0);
  });

  it('counts command outcomes', async () => {
    gw = await startGateway();
    const d = new DeviceClient({ url: gw.ws, deviceId: 'cmd-1', token: deviceToken('cmd-1') });
    d.on('error', () => {});
    d.onCommand('ping', () => 'pong');
    await d.connect();
    try {
      const send = async (name: string) => {
        const { body } = await gw!.api('/api/devices/cmd-1/commands', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
        return waitFor(async () => {
          const c = (await gw!.api(`/api/commands/${body.id}`)).body;
          return ['acked', 'failed'].includes(c.state) ? c.state : undefined;
        }, `${name} to finish`);
      };
      expect(await send('ping')).toBe('acked');
      expect(await send('ping')).toBe('acked');
      expect(await send('no-such-command')).toBe('failed');
      const v = parse(await (await fetch(gw.http + '/metrics')).text());
      expect(v.get('gateway_command_outcomes_total{outcome="acked"}')).toBe(2);
      expect(v.get('gateway_command_outcomes_total{outcome="failed"}')).toBe(1);
      expect(v.get('gateway_command_outcomes_total{outcome="expired"}')).toBe(0);
    } finally {
      await d.close();
    }
  });
});
