import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
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
    expect(before.has('gateway_process_nodejs_eventloop_lag_seconds')).toBe(true);
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
});
