/**
 * JSON telemetry's pure parts: messages parsed (gateway/json/parse.ts), names → channels through
 * the device's type (channels.ts), and the per-device rate (rate.ts). One table of cases.
 */
import { describe, expect, it } from 'vitest';
import { TelemetryBatch, ValueType } from '../../devices/codec/index.js';
import { DeviceState } from '../../gateway/devices.js';
import { fillReadings } from '../../gateway/json/channels.js';
import { parseJsonTelemetry, type JsonMessage } from '../../gateway/json/parse.js';
import { DeviceRate } from '../../gateway/json/rate.js';

const enc = (s: string) => new TextEncoder().encode(s);

/** [body, device type, the code it is refused with, or undefined when taken]. */
const CASES: [string, string | undefined, string | undefined][] = [
  ['{"temperature": 21.5}', 'climate', undefined],
  ['{"temperature": 21.5, "humidity": 40, "battery": 99}', 'climate', undefined],
  ['{"ts": 1717171717000, "seq": 42, "epoch": 7, "values": {"temperature": 21.5}}', 'climate', undefined],
  ['{"ts": "2024-06-01T12:00:00Z", "values": {"temperature": 1}}', 'climate', undefined],
  ['[{"temperature": 1}, {"seq": 1, "values": {"humidity": 2}}]', 'climate', undefined],
  ['{"alarm": true, "velocity": 3}', 'vibration', undefined],
  ['{"seq": 4294967295, "epoch": 4294967295, "values": {"temperature": 1}}', 'climate', undefined],
  ['{"temperature": 21', 'climate', 'JSON_MALFORMED'],
  ['', 'climate', 'JSON_MALFORMED'],
  ['42', 'climate', 'JSON_MALFORMED'],
  ['[{"temperature": 1}, 2]', 'climate', 'JSON_MALFORMED'],
  ['null', 'climate', 'JSON_MALFORMED'],
  ['{"temperature": "21.5"}', 'climate', 'JSON_BAD_VALUE'],
  ['{"temperature": null}', 'climate', 'JSON_BAD_VALUE'],
  ['{"temperature": [1]}', 'climate', 'JSON_BAD_VALUE'],
  ['{"temperature": -1e400}', 'climate', 'JSON_BAD_VALUE'],
  ['{"temperature": 4e38}', 'climate', 'JSON_BAD_VALUE'],
  ['{"temperature": false}', 'climate', 'JSON_BAD_VALUE'],
  ['{"alarm": 1}', 'vibration', 'JSON_BAD_VALUE'],
  ['{"seq": 1.5, "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"seq": 4294967296, "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"seq": "1", "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"epoch": 1, "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"ts": -1, "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"ts": 1.5, "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"ts": 253402300800000, "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  // Unix seconds: stored as ms they would land in January 1970, unseen.
  ['{"ts": 1717171717, "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"ts": 99999999999, "values": {"temperature": 1}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"ts": 100000000000, "values": {"temperature": 1}}', 'climate', undefined],
  ['{"ts": "1970-01-01T00:00:02Z", "values": {"temperature": 1}}', 'climate', undefined],
  ['{"values": [1, 2]}', 'climate', 'JSON_BAD_FIELD'],
  // No readings: an answer "accepted" would promise readings that do not exist.
  ['{}', 'climate', 'JSON_BAD_FIELD'],
  // An empty batch: zero messages, not a message without readings.
  ['[]', 'climate', undefined],
  ['[{}]', 'climate', 'JSON_BAD_FIELD'],
  ['[{"temperature": 1}, {}]', 'climate', 'JSON_BAD_FIELD'],
  ['{"values": {}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"seq": 3, "values": {}}', 'climate', 'JSON_BAD_FIELD'],
  ['{"ts": 1717171717000, "seq": 3, "epoch": 1}', 'climate', 'JSON_BAD_FIELD'],
  ['{"ts": "2024-06-01T12:00:00Z"}', 'climate', 'JSON_BAD_FIELD'],
  ['{}', undefined, 'JSON_BAD_FIELD'],
  ['{"values": {"temperature": 1}, "device": "x"}', 'climate', 'JSON_BAD_FIELD'],
  ['{"pressure": 1013}', 'climate', 'UNKNOWN_CHANNEL'],
  ['{"ts": 1717171717000, "temperature": 1}', 'climate', 'UNKNOWN_CHANNEL'],
  ['{"temperature": 1}', undefined, 'UNKNOWN_CHANNEL'],
  ['{"temperature": 1}', 'no-such-type', 'UNKNOWN_CHANNEL'],
];

function take(body: string, type: string | undefined, batch = new TelemetryBatch(1024)): { code?: string; messages?: JsonMessage[] } {
  const list = parseJsonTelemetry(enc(body));
  if (!Array.isArray(list)) return { code: list.code };
  for (const m of list) {
    const p = fillReadings(type, 'dev-1', m, batch);
    if (p) return { code: p.code };
  }
  return { messages: list };
}

describe('JSON telemetry messages', () => {
  for (const [body, type, code] of CASES) {
    it(`${code ?? 'takes'} ${body.slice(0, 70)} (${type ?? 'no type'})`, () => {
      expect(take(body, type).code).toBe(code);
    });
  }

  it('says what to send for a ts in seconds', () => {
    const p = parseJsonTelemetry(enc('{"ts": 1717171717, "values": {"temperature": 1}}'));
    expect(p).toEqual({ code: 'JSON_BAD_FIELD', message: 'the message: "ts" 1717171717 is in seconds, or before 1973: send ms since 1970 (1717171717000 if it is seconds) or an ISO 8601 time' });
  });

  it('says what is missing when a message has no readings', () => {
    expect(parseJsonTelemetry(enc('{}'))).toMatchObject({ code: 'JSON_BAD_FIELD', message: expect.stringMatching(/^the message has no readings: send \{"<channel>": value/) });
    expect(parseJsonTelemetry(enc('{"seq": 3}'))).toMatchObject({ message: expect.stringContaining('go with "values"') });
    expect(parseJsonTelemetry(enc('{"seq": 3, "values": {}}'))).toMatchObject({ message: expect.stringContaining('"values" is empty') });
    expect(parseJsonTelemetry(enc('[]'))).toEqual([]);
    expect(parseJsonTelemetry(enc('[{"temperature": 1}, {}]'))).toMatchObject({ message: expect.stringMatching(/^\[1\] has no readings/) });
  });

  it('reads the long form: ts (ms or ISO), seq, epoch; the short form has none', () => {
    const [long] = take('{"ts": "2024-06-01T12:00:00.250Z", "seq": 42, "epoch": 7, "values": {"temperature": 21.5}}', 'climate').messages!;
    expect(long).toMatchObject({ ts: Date.parse('2024-06-01T12:00:00.250Z'), seq: 42, epoch: 7, names: ['temperature'] });
    const [short] = take('{"temperature": 21.5}', 'climate').messages!;
    expect(short).toMatchObject({ ts: undefined, seq: undefined, epoch: 0 });
    expect(take('{"seq": 3, "values": {"humidity": 1}}', 'climate').messages![0]).toMatchObject({ seq: 3, epoch: 0 });
  });

  it('fills the batch as a frame would: channel ids and value types from the type, bools 0/1, f32 rounded', () => {
    const batch = new TelemetryBatch(8);
    const [m] = parseJsonTelemetry(enc('{"velocity": 0.1, "alarm": true}')) as JsonMessage[];
    expect(fillReadings('vibration', 'v-1', m!, batch)).toBeUndefined();
    expect(batch.count).toBe(2);
    expect([batch.channels[0], batch.types[0], batch.values[0]]).toEqual([1, ValueType.F32, Math.fround(0.1)]);
    expect([batch.channels[1], batch.types[1], batch.values[1], batch.offsets[1]]).toEqual([3, ValueType.Bool, 1, 0]);
    const [e] = parseJsonTelemetry(enc('{"energy": 0.1}')) as JsonMessage[];
    expect(fillReadings('power', 'p-1', e!, batch)).toBeUndefined();
    expect([batch.types[0], batch.values[0]]).toEqual([ValueType.F64, 0.1]);
  });

  it('refuses more readings than the batch holds (--max-readings) with TOO_MANY_READINGS', () => {
    expect(take('{"temperature": 1, "humidity": 2, "battery": 3}', 'climate', new TelemetryBatch(2)).code).toBe('TOO_MANY_READINGS');
  });

  it('says which names a type has when one is unknown', () => {
    const [m] = parseJsonTelemetry(enc('{"temp": 1}')) as JsonMessage[];
    expect(fillReadings('climate', 'c-1', m!, new TelemetryBatch(4))?.message).toContain('temperature, humidity, battery');
  });
});

describe('the HTTP telemetry rate', () => {
  it('lets a device burst `rate` requests, then one per 1/rate s, each device on its own', () => {
    const rate = new DeviceRate(2);
    const a = new DeviceState('climate-1', undefined);
    const b = new DeviceState('climate-2', undefined);
    expect([rate.take(a, 0), rate.take(a, 0)]).toEqual([0, 0]);
    expect(rate.take(a, 0)).toBe(500);
    expect(rate.take(b, 0)).toBe(0);
    expect(rate.take(a, 250)).toBe(250);
    expect(rate.take(a, 500)).toBe(0);
    expect(new DeviceRate(0).take(a, 0)).toBe(0);
  });
});
