/**
 * When a JSON message may be answered (gateway/json/safety.ts), with real ingest, the real ack ledger
 * and a real cursor file, as test/unit/acks.test.ts does: the storage's settled ticket is held by the
 * test, and a failing cursor write is injected by overriding CursorStore.append to return false.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { fleetToken } from '../../devices/token.js';
import { AckLedger } from '../../gateway/acks.js';
import { Authenticator } from '../../gateway/auth.js';
import { CursorStore } from '../../gateway/cursors.js';
import { DeviceState, DeviceTable, type DeviceLink } from '../../gateway/devices.js';
import { Ingest } from '../../gateway/ingest.js';
import { silentLogger } from '../../gateway/log.js';
import { Presence } from '../../gateway/presence.js';
import { RefusalLog } from '../../gateway/session/refusal-log.js';
import { Refusal } from '../../gateway/session/refusals.js';
import { DeviceSessions } from '../../gateway/session/sessions.js';
import { SafeWaits } from '../../gateway/json/safety.js';
import { JsonTelemetry, type JsonTaken } from '../../gateway/json/telemetry.js';
import { MemoryStorage } from '../../gateway/storage/memory.js';

class FlakyCursors extends CursorStore {
  fail = false;
  override append(entries: string): boolean {
    return this.fail ? false : super.append(entries);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const TIMEOUT_MS = 1000;

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'json-safety-'));
  dirs.push(dir);
  const settled = { durableTicket: 0 };
  const ingest = new Ingest(new MemoryStorage(100), { maxFrameBytes: 4096, maxReadings: 64 });
  const cursors = new FlakyCursors(dir);
  const ledger = new AckLedger(ingest, cursors, settled, { intervalMs: 50, sendBudget: 1 << 20, ranges: false });
  // Opens the cursor file (nothing to restore in a new folder).
  ledger.restore((id) => new DeviceState(id, undefined));
  const waits = new SafeWaits(ledger, settled, TIMEOUT_MS);
  const json = new JsonTelemetry(ingest, waits, { maxBytes: 4096, maxReadings: 64 });
  const d = new DeviceState('climate-1', undefined);
  /** Sends a body; `answered` says what its answer was once there is one. */
  const send = (body: unknown) => {
    const t = json.take(d, new TextEncoder().encode(JSON.stringify(body)), 0, 'http') as JsonTaken;
    expect(t).toHaveProperty('safe');
    const state: { answered: boolean | undefined; taken: JsonTaken } = { answered: undefined, taken: t };
    void t.safe.then((ok) => (state.answered = ok));
    return state;
  };
  const tick = () => new Promise((r) => setImmediate(r));
  return { settled, cursors, ledger, waits, d, send, tick };
}

describe('JSON answers wait until the readings are safe', () => {
  it('without seq: once storage settled the write (no cursor involved)', async () => {
    const t = setup();
    const m = t.send({ temperature: 1 });
    t.ledger.flush(1);
    await t.tick();
    expect(m.answered).toBeUndefined();
    t.settled.durableTicket = 1;
    t.ledger.flush(2);
    await t.tick();
    expect(m.answered).toBe(true);
  });

  it('with seq: only once the cursor covering it reached the file, never while the file refuses it', async () => {
    const t = setup();
    const m = t.send({ seq: 0, epoch: 5, values: { temperature: 1 } });
    t.settled.durableTicket = 1;
    t.cursors.fail = true;
    t.ledger.flush(1);
    t.ledger.flush(2);
    await t.tick();
    expect(m.answered).toBeUndefined();
    t.cursors.fail = false;
    t.ledger.flush(3);
    await t.tick();
    expect(m.answered).toBe(true);
    // A resend is a duplicate, answered at once: the cursor covers it already.
    const again = t.send({ seq: 0, epoch: 5, values: { temperature: 1 } });
    expect(again.taken).toMatchObject({ accepted: 0, duplicates: 1 });
    await t.tick();
    expect(again.answered).toBe(true);
  });

  it('with seq: a message after a missing seq waits for it, as a cumulative ack does', async () => {
    const t = setup();
    const first = t.send({ seq: 1, epoch: 5, values: { temperature: 1 } });
    const third = t.send({ seq: 3, epoch: 5, values: { temperature: 3 } });
    t.settled.durableTicket = 2;
    t.ledger.flush(1);
    await t.tick();
    expect([first.answered, third.answered]).toEqual([true, undefined]);
    const second = t.send({ seq: 2, epoch: 5, values: { temperature: 2 } });
    t.settled.durableTicket = 3;
    t.ledger.flush(2);
    await t.tick();
    expect([second.answered, third.answered]).toEqual([true, true]);
  });

  it('answers false after the timeout, and at close, and counts them', async () => {
    const t = setup();
    const late = t.send({ temperature: 1 });
    t.ledger.flush(TIMEOUT_MS - 1);
    await t.tick();
    expect(late.answered).toBeUndefined();
    t.ledger.flush(TIMEOUT_MS + 1);
    await t.tick();
    expect(late.answered).toBe(false);
    const closing = t.send({ temperature: 2 });
    t.waits.close();
    await t.tick();
    expect(closing.answered).toBe(false);
    expect(t.waits.timedOut).toBe(2);
    expect(t.waits.pending).toBe(0);
  });

  it('an array is answered once every message of it is safe', async () => {
    const t = setup();
    const m = t.send([{ seq: 0, values: { temperature: 1 } }, { values: { temperature: 2 } }]);
    expect(m.taken).toMatchObject({ accepted: 2, duplicates: 0 });
    t.settled.durableTicket = 1;
    t.ledger.flush(1);
    await t.tick();
    expect(m.answered).toBeUndefined();
    t.settled.durableTicket = 2;
    t.ledger.flush(2);
    await t.tick();
    expect(m.answered).toBe(true);
  });
});

describe('JSON on a device session', () => {
  class Link implements DeviceLink {
    readonly transport = 'mqtt';
    readonly remoteAddress = '10.0.0.1';
    readonly sent: Uint8Array[] = [];
    closed = false;
    send(bytes: Uint8Array): 'sent' {
      this.sent.push(bytes.slice());
      return 'sent';
    }
    close(): void {
      this.closed = true;
    }
    bufferedAmount(): number {
      return 0;
    }
  }

  it('waits with the frames while the session gate is shut (cluster handover), then is taken in order and answered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'json-session-'));
    dirs.push(dir);
    const devices = new DeviceTable([]);
    const storage = new MemoryStorage(100);
    const ingest = new Ingest(storage, { maxFrameBytes: 4096, maxReadings: 64 });
    const ledger = new AckLedger(ingest, new CursorStore(dir), storage, { intervalMs: 50, sendBudget: 1 << 20, ranges: false });
    ledger.restore((id) => devices.getOrCreate(id, undefined));
    const json = new JsonTelemetry(ingest, new SafeWaits(ledger, storage, TIMEOUT_MS), { maxBytes: 4096, maxReadings: 64 });
    const sessions = new DeviceSessions(devices, new Authenticator(new Map(), 'k', 'op'), ingest, new Presence(devices, silentLogger()), new RefusalLog(silentLogger(), 10_000), { maxDevices: 10, duplicateId: 'replace' }, json);
    let open!: () => void;
    sessions.gateFrames(() => new Promise<void>((r) => (open = r)));
    const s = sessions.admit({ transport: 'mqtt', id: 'climate-7', remote: '10.0.0.1', credentials: { token: fleetToken('k', 'climate-7') } }, new Link());
    if (s instanceof Refusal) throw new Error(s.code);
    s.open();
    const enc = new TextEncoder();
    expect(s.frame(encodeTelemetry({ epoch: 1, seq: 0, timestamp: 1000 }, [{ channel: 1, type: 'f32', value: 1 }]), 0)).toBeUndefined();
    const answer = s.json(enc.encode('{"seq": 1, "epoch": 1, "ts": 1717171717000, "values": {"temperature": 2}}'), 0);
    expect(answer).toBeInstanceOf(Promise);
    let answered: boolean | undefined;
    void (answer as Promise<boolean>).then((ok) => (answered = ok));
    await new Promise((r) => setImmediate(r));
    expect([s.device.frames, answered]).toEqual([0, undefined]);
    open();
    await new Promise((r) => setImmediate(r));
    // Taken after the frame before it: one contiguous sequence of the device.
    expect(s.device.frames).toBe(2);
    expect(s.device.seq.current?.contig).toBe(1);
    ledger.flush(1);
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(true);
  });
});
