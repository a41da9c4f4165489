/**
 * The device-session port with real parts (device table, authenticator, ingest into memory
 * storage, presence) and links that record what a transport would do; the refusal log with a
 * captured logger and fake timers.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CLOSE_CODES, decodeFrame, encodeTelemetry, ERROR_CODES } from '../../devices/codec/index.js';
import { fleetToken } from '../../devices/token.js';
import { Authenticator } from '../../gateway/auth.js';
import { DeviceTable, type DeviceLink, type OfflineCause } from '../../gateway/devices.js';
import { Ingest } from '../../gateway/ingest.js';
import { silentLogger } from '../../gateway/log.js';
import { Presence } from '../../gateway/presence.js';
import { RefusalLog } from '../../gateway/session/refusal-log.js';
import { Refusal } from '../../gateway/session/refusals.js';
import { DeviceSessions, Session, type SessionPolicy } from '../../gateway/session/sessions.js';
import { MemoryStorage } from '../../gateway/storage/memory.js';

const KEY = 'unit-fleet-key';

class RecordingLink implements DeviceLink {
  readonly sent: Uint8Array[] = [];
  closed: { code: number; reason: string } | undefined;
  closingCause: OfflineCause | undefined;
  constructor(
    readonly transport: 'ws' | 'mqtt' = 'ws',
    readonly remoteAddress = '10.0.0.1',
    readonly shared = false,
  ) {}
  send(bytes: Uint8Array): 'sent' {
    this.sent.push(bytes.slice());
    return 'sent';
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  bufferedAmount(): number {
    return 0;
  }
}

/** A logger whose lines land in an array (pino writes synchronously to a Writable). */
function capturedLogger(): { log: pino.Logger; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

function setup(policy: Partial<SessionPolicy> = {}, log = silentLogger()) {
  const devices = new DeviceTable([]);
  const ingest = new Ingest(new MemoryStorage(100), { maxFrameBytes: 1024, maxReadings: 16 });
  const presence = new Presence(devices, silentLogger());
  const refusalLog = new RefusalLog(log, 10_000);
  const sessions = new DeviceSessions(devices, new Authenticator(new Map(), KEY, 'op'), ingest, presence, refusalLog, { maxDevices: 10, duplicateId: 'replace', ...policy });
  const admit = (id: string, token = fleetToken(KEY, id), transport: 'ws' | 'mqtt' = 'ws') => {
    const link = new RecordingLink(transport === 'ws' ? 'ws' : 'mqtt');
    return { link, s: sessions.admit({ transport, id, remote: '10.0.0.1', credentials: { token } }, link) };
  };
  return { devices, ingest, sessions, refusalLog, admit };
}

function admitted(x: { s: Session | Refusal }): Session {
  if (x.s instanceof Refusal) throw new Error(`refused: ${x.s.code}`);
  return x.s;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('DeviceSessions.admit', () => {
  it('refuses in a fixed order, each refusal counted once by code and transport', () => {
    const { sessions, admit, ingest } = setup({ maxDevices: 1, duplicateId: 'reject' });
    expect((admit('') .s as Refusal).code).toBe('DEVICE_ID_MISSING');
    expect((admit('bad id!').s as Refusal).code).toBe('BAD_DEVICE_ID');
    expect((admit('a', 'wrong').s as Refusal).code).toBe('UNAUTHORIZED');
    expect((admit('a', '', 'mqtt').s as Refusal).code).toBe('UNAUTHORIZED');
    admitted(admit('a')).open();
    expect((admit('a').s as Refusal).code).toBe('DEVICE_ALREADY_CONNECTED');
    expect((admit('b').s as Refusal).code).toBe('TOO_MANY_DEVICES');
    // Authentication comes before capacity: a wrong token on a full gateway is still UNAUTHORIZED.
    expect((admit('b', 'wrong').s as Refusal).code).toBe('UNAUTHORIZED');
    sessions.shutDown();
    expect((admit('c').s as Refusal).code).toBe('SHUTTING_DOWN');
    const counts = Object.fromEntries([...sessions.refusals.entries()].map((e) => [`${e.code}/${e.transport}`, e.n]));
    expect(counts).toEqual({
      'DEVICE_ID_MISSING/ws': 1,
      'BAD_DEVICE_ID/ws': 1,
      'UNAUTHORIZED/ws': 2,
      'UNAUTHORIZED/mqtt': 1,
      'DEVICE_ALREADY_CONNECTED/ws': 1,
      'TOO_MANY_DEVICES/ws': 1,
      'SHUTTING_DOWN/ws': 1,
    });
    // The totals by code (gateway_errors_total, errorsByCode) are the same counts.
    expect(ingest.stats.errors).toBe(8);
    expect(ingest.stats.errorsByCode.get('UNAUTHORIZED')).toBe(3);
  });

  it('maps each refusal to the answer of every transport from the one table', () => {
    const { admit } = setup();
    const r = admit('a', 'wrong').s as Refusal;
    expect(r.spec).toMatchObject({ http: 401, connack: 4 });
    expect(JSON.parse(r.body())).toEqual({ error: { code: 'UNAUTHORIZED', message: 'the token is not valid for this device id' } });
  });

  it('lets a newcomer replace an online device under --duplicate-id replace', () => {
    const { admit, devices } = setup({ maxDevices: 1 });
    const first = admit('a');
    admitted(first).open();
    const second = admit('a');
    admitted(second).open();
    expect(first.link.closed).toEqual({ code: CLOSE_CODES.REPLACED, reason: 'REPLACED' });
    expect(devices.get('a')).toMatchObject({ online: true, link: second.link });
  });

  it('admits a broker-authenticated device without a token, but not an invalid id', () => {
    const { sessions } = setup({ maxDevices: 0 });
    const link = new RecordingLink('mqtt', 'via broker', true);
    expect(sessions.admit({ transport: 'bridge', id: 'x', remote: 'via broker', credentials: 'broker' }, link)).toBeInstanceOf(Session);
    expect(sessions.admit({ transport: 'bridge', id: 'no good', remote: 'via broker', credentials: 'broker' }, link)).toMatchObject({ code: 'BAD_DEVICE_ID' });
    expect(sessions.refusals.get('BAD_DEVICE_ID', 'bridge')).toBe(1);
  });
});

describe('Session', () => {
  it('an idle connected device holds no per-frame state until its first frame (dedupe, acks, last values)', () => {
    const { admit, devices } = setup();
    const session = admitted(admit('a'));
    session.open();
    const d = devices.get('a')!;
    // Idle connections are many: what only a sending device needs is made with its first frame.
    expect({ online: d.online, dedupe: (d as unknown as { sequence?: unknown }).sequence, ack: d.ack, last: d.last }).toEqual({ online: true, dedupe: undefined, ack: undefined, last: undefined });
    expect(d.toJSON()).toMatchObject({ epoch: null, ackedSeq: null, counters: { gaps: 0 } });
    session.frame(encodeTelemetry({ epoch: 7, seq: 1, timestamp: 1000 }, [{ channel: 1, value: 1 }]), Date.now());
    expect(d.toJSON()).toMatchObject({ epoch: 7 });
  });

  it('hands frames to ingest and kicks a bad one: error frame, mapped close, cause kicked with the code', () => {
    const { admit, sessions, devices } = setup();
    const { s, link } = admit('a');
    const session = admitted({ s });
    session.open();
    expect(session.frame(encodeTelemetry({ epoch: 1, seq: 0, timestamp: 1000 }, [{ channel: 1, value: 1 }]), Date.now())).toBeUndefined();
    const r = session.frame(new Uint8Array([1, 2, 3]), Date.now());
    expect(r?.code).toBe('FRAME_TRUNCATED');
    const err = decodeFrame(link.sent.at(-1)!);
    expect(err).toMatchObject({ code: ERROR_CODES.FRAME_TRUNCATED });
    expect(link.closed).toEqual({ code: CLOSE_CODES.BAD_FRAME, reason: 'FRAME_TRUNCATED' });
    session.end('connection_lost', undefined, CLOSE_CODES.BAD_FRAME);
    expect(devices.get('a')).toMatchObject({ online: false, offlineCause: 'kicked', offlineDetail: 'FRAME_TRUNCATED', errors: 1, lastErrorCode: 'FRAME_TRUNCATED', frames: 1 });
    expect(sessions.refusals.get('FRAME_TRUNCATED', 'ws')).toBe(1);
  });

  it('counts a refusal the transport carries out itself, and one that keeps the session open', () => {
    const { admit, sessions, devices } = setup();
    const { s, link } = admit('a', undefined, 'mqtt');
    const session = admitted({ s });
    session.open();
    session.refuse('MQTT_SUBSCRIBE_REFUSED', 'not yours', 'stay');
    expect(link.closingCause).toBeUndefined();
    session.refuse('MQTT_FOREIGN_TOPIC', 'not yours', 'closed-by-transport');
    expect(link.sent).toEqual([]); // MQTT codes have no error frame
    expect(link.closed).toBeUndefined(); // aedes closes it
    session.end('connection_lost');
    expect(devices.get('a')).toMatchObject({ offlineCause: 'kicked', offlineDetail: 'MQTT_FOREIGN_TOPIC', errors: 2 });
    expect(sessions.refusals.get('MQTT_SUBSCRIBE_REFUSED', 'mqtt')).toBe(1);
    expect(sessions.refusals.get('MQTT_FOREIGN_TOPIC', 'mqtt')).toBe(1);
  });

  it('cannot close a broker-held connection: the bad frame gets its error frame, the device stays online', () => {
    const { sessions, devices } = setup();
    const link = new RecordingLink('mqtt', 'via broker', true);
    const session = sessions.admit({ transport: 'bridge', id: 'b', remote: 'via broker', credentials: 'broker' }, link) as Session;
    session.open();
    expect(session.frame(new Uint8Array([9]), Date.now())?.code).toBe('FRAME_TRUNCATED');
    expect(decodeFrame(link.sent[0]!)).toMatchObject({ code: ERROR_CODES.FRAME_TRUNCATED });
    expect(link.closed).toBeUndefined();
    expect(link.closingCause).toBeUndefined();
    expect(devices.get('b')?.online).toBe(true);
    expect(sessions.refusals.get('FRAME_TRUNCATED', 'bridge')).toBe(1);
  });
});

describe('RefusalLog', () => {
  it('logs the first refusal of a quiet interval at once and the rest as one line per interval, losing no count', () => {
    vi.useFakeTimers();
    const { log, lines } = capturedLogger();
    const { admit, refusalLog } = setup({}, log);
    for (let i = 0; i < 5000; i++) admit(`dev-${i % 50}`, `secret-token-${i}`);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ code: 'UNAUTHORIZED', transport: 'ws', device: 'dev-0', remote: '10.0.0.1' });
    vi.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ refused: { 'UNAUTHORIZED/ws': 4999 }, total: 4999 });
    expect(lines[1]!.examples).toHaveLength(5);
    // A quiet interval: nothing logged, and the next refusal is logged at once again.
    vi.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(2);
    vi.advanceTimersByTime(10_000);
    admit('late', 'nope');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ code: 'UNAUTHORIZED', device: 'late' });
    admit('later', 'nope');
    refusalLog.close();
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatchObject({ total: 1 });
    // Tokens never reach the log.
    expect(JSON.stringify(lines)).not.toMatch(/secret-token|nope/);
  });
});
