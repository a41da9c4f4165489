/** The MQTT 3.1.1 body checks the embedded broker's socket guard runs on rare packets (gateway/mqtt/strict.ts). */
import { describe, expect, it } from 'vitest';
import { badFilter, badPublish, checkConnect, checkSubscribe } from '../../gateway/mqtt/strict.js';

const str = (s: string): number[] => {
  const b = Buffer.from(s, 'utf8');
  return [b.length >> 8, b.length & 0xff, ...b];
};
const connectBody = (o: { name?: string; level?: number; flags?: number; tail?: number[] } = {}): Uint8Array =>
  Uint8Array.from([...str(o.name ?? 'MQTT'), o.level ?? 4, (o.flags ?? 0x02) | 0xc0, 0, 30, ...str('dev'), ...str('dev'), ...str('tok'), ...(o.tail ?? [])]);

describe('checkConnect', () => {
  it('accepts a well-formed MQTT 3.1.1 CONNECT', () => {
    expect(checkConnect(connectBody(), 0)).toBeUndefined();
  });
  it('closes on bytes after the last field, a short body, an unknown protocol name', () => {
    expect(checkConnect(connectBody({ tail: [1] }), 0)).toEqual({ close: expect.stringMatching(/1 bytes after the last CONNECT field/) });
    expect(checkConnect(connectBody().subarray(0, 20), 0)).toEqual({ close: 'CONNECT ends inside a field' });
    expect(checkConnect(connectBody({ name: 'HTTP' }), 0)).toEqual({ close: expect.stringMatching(/unknown protocol name/) });
  });
  it('answers CONNACK 1 for levels other than MQTT/4 and MQIsdp/3 (MQTT 5 included)', () => {
    for (const [name, level] of [['MQTT', 5], ['MQTT', 6], ['MQTT', 3], ['MQIsdp', 4]] as const) {
      expect(checkConnect(connectBody({ name, level }), 0), `${name} ${level}`).toHaveProperty('unsupportedLevel');
    }
  });
  it('closes 3.1.1 on reserved bits, ignores them on 3.1 and says where the flags are', () => {
    expect(checkConnect(connectBody({ flags: 0x03 }), 0)).toHaveProperty('close');
    expect(checkConnect(connectBody(), 2)).toHaveProperty('close');
    expect(checkConnect(connectBody({ name: 'MQIsdp', level: 3, flags: 0x03 }), 2)).toEqual({ mqtt31: { flagsAt: 9 } });
  });
  it('walks the will fields when the will flag is set', () => {
    const withWill = Uint8Array.from([...str('MQTT'), 4, 0xc6, 0, 30, ...str('dev'), ...str('devices/dev/status'), ...str('gone'), ...str('dev'), ...str('tok')]);
    expect(checkConnect(withWill, 0)).toBeUndefined();
    expect(checkConnect(withWill.subarray(0, withWill.length - 1), 0)).toEqual({ close: 'CONNECT ends inside a field' });
  });
});

describe('checkSubscribe and badFilter', () => {
  it('accepts valid filters, wildcards where 3.1.1 allows them', () => {
    expect(checkSubscribe(Uint8Array.from([0, 1, ...str('devices/a/commands'), 1]), true)).toBeUndefined();
    expect(checkSubscribe(Uint8Array.from([0, 1, ...str('a/+/b'), ...str('#'), ...str('a/#')]), false)).toBeUndefined();
  });
  it.each([
    ['no filter', [0, 1], false, /no topic filter/],
    ['packet id 0', [0, 0, ...str('a')], false, /packet id 0/],
    ['ill-formed UTF-8', [0, 1, 0, 2, 0xc3, 0x28], false, /ill-formed UTF-8/],
    ['an encoded surrogate', [0, 1, 0, 3, 0xed, 0xa0, 0x80], false, /ill-formed UTF-8/],
    ['U+0000', [0, 1, ...str('a\u0000')], false, /U\+0000/],
    ['an empty filter', [0, 1, 0, 0], false, /empty topic filter/],
    ['a cut filter', [0, 1, 0, 5, 0x61], false, /ends inside a topic filter/],
    ['no QoS byte', [0, 1, ...str('a')], true, /without its QoS byte/],
    ['QoS 3', [0, 1, ...str('a'), 3], true, /requested QoS/],
  ] as const)('refuses %s', (_name, body, subscribe, reason) => {
    expect(checkSubscribe(Uint8Array.from(body), subscribe)).toMatch(reason);
  });
  it.each(['a+', 'a/#/b', '#/a', 'a/b#', '+a/b'])('refuses the filter %s', (f) => {
    expect(badFilter(f)).toBeDefined();
  });
});

describe('badPublish', () => {
  it('refuses packet id 0 at QoS 1 and 2, not at QoS 0', () => {
    expect(badPublish({ topic: 'devices/a/telemetry', qos: 1, messageId: 0 })).toMatch(/packet id 0/);
    expect(badPublish({ topic: 'devices/a/telemetry', qos: 2, messageId: 0 })).toMatch(/packet id 0/);
    expect(badPublish({ topic: 'devices/a/telemetry', qos: 0 })).toBeUndefined();
    expect(badPublish({ topic: 'devices/a/telemetry', qos: 1, messageId: 9 })).toBeUndefined();
  });
});
