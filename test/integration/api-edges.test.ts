/**
 * The HTTP API, /api/live (SSE) and /live driven from outside with what integrators send by
 * mistake or by habit: broken percent-encoding, lenient times, other methods, odd resume values.
 * Each answer must be the documented refusal, and nothing else may be lost or half-done.
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { deviceToken, OPERATOR_TOKEN, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await gw?.close();
  gw = undefined;
});

async function device(id: string): Promise<RawDevice> {
  const d = await RawDevice.connect(gw!.ws, id, deviceToken(id));
  closers.push(() => d.terminate());
  return d;
}

function frame(seq: number, value: number): Uint8Array {
  return encodeTelemetry({ epoch: 1, seq, timestamp: Date.now() }, [{ channel: 1, value }]);
}

/** Sends raw bytes on one TCP connection and returns all the gateway answered until it closed (bounded). */
function rawHttp(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let got = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, 5000);
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('end', () => {
      clearTimeout(t);
      resolve(got);
    });
    s.on('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

/** An SSE stream read into `text` until aborted. */
async function sse(path: string, headers: Record<string, string> = {}): Promise<{ status: number; text: () => string; abort: () => void }> {
  const ctrl = new AbortController();
  closers.push(() => ctrl.abort());
  const res = await fetch(gw!.http + path, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, ...headers }, signal: ctrl.signal });
  let text = '';
  if (res.body) {
    const reader = res.body.getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += new TextDecoder().decode(value);
      }
    })().catch(() => {});
  }
  return { status: res.status, text: () => text, abort: () => ctrl.abort() };
}

/** A /live client that keeps every message as the text it came as (a malformed one too). */
async function liveRaw(): Promise<{ ws: WebSocket; texts: string[]; json: () => any[] }> {
  const ws = new WebSocket(`${gw!.ws}/live?token=${OPERATOR_TOKEN}`);
  const texts: string[] = [];
  ws.on('message', (d: Buffer) => texts.push(d.toString()));
  ws.on('error', () => {});
  closers.push(() => ws.terminate());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, texts, json: () => texts.map((t) => (t.startsWith('{') ? JSON.parse(t) : { unparsable: t })) };
}

describe('paths with broken percent-encoding', () => {
  it('get the route\'s own refusal after the operator check, not a 500', async () => {
    gw = await startGateway();
    // Without a token: 401 as for any /api path (not an internal error before the check).
    expect((await fetch(`${gw.http}/api/devices/%ZZ`)).status).toBe(401);
    const bad = await gw.api('/api/devices/%ZZ');
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'BAD_DEVICE_ID' } } });
    expect(await gw.api('/api/devices/%E0%A4%A/history?channel=1')).toMatchObject({ status: 400, body: { error: { code: 'BAD_DEVICE_ID' } } });
    expect(await gw.api('/api/%E0%A4%A')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    // Valid encoding still decodes: %2D is "-".
    await gw.api('/api/devices', { method: 'POST', body: JSON.stringify({ id: 'pct-1' }) });
    expect(await gw.api('/api/devices/pct%2D1')).toMatchObject({ status: 200, body: { id: 'pct-1' } });
  });
});

describe('history times', () => {
  it('takes ms and ISO 8601 only: "-5", "1.5" or "March 7" are 400 BAD_QUERY, not a day in 2001', async () => {
    gw = await startGateway();
    await gw.api('/api/devices', { method: 'POST', body: JSON.stringify({ id: 'hist-1' }) });
    for (const from of ['-5', '1.5', 'March%207', '%205', '1e3', '2026-01-01T00:00:00%2002:00']) {
      const r = await gw.api(`/api/devices/hist-1/history?channel=1&from=${from}&to=1800000000000`);
      expect(r, `from=${from}`).toMatchObject({ status: 400, body: { error: { code: 'BAD_QUERY' } } });
    }
    const ok = await gw.api('/api/devices/hist-1/history?channel=1&from=2026-01-01T00:00:00%2B02:00&to=2026-01-02');
    expect(ok).toMatchObject({ status: 200, body: { from: Date.parse('2026-01-01T00:00:00+02:00'), to: Date.parse('2026-01-02') } });
    expect(await gw.api('/api/devices/hist-1/history?channel=1&from=1000&to=2000')).toMatchObject({ status: 200, body: { from: 1000, to: 2000 } });
  });
});

describe('GET /api/live (SSE) and other methods', () => {
  it('answers POST and DELETE with 405, and HEAD with the headers alone: the keep-alive connection goes on', async () => {
    gw = await startGateway();
    for (const method of ['POST', 'DELETE']) {
      // Bounded: a gateway that starts a stream here would never end the body.
      const r = await gw.api('/api/live?device=sse-1', { method, signal: AbortSignal.timeout(5000) });
      expect(r, method).toMatchObject({ status: 405, body: { error: { code: 'METHOD_NOT_ALLOWED' } } });
    }
    const port = new URL(gw.http).port;
    const text = await rawHttp(
      Number(port),
      `HEAD /api/live?device=sse-1&token=${OPERATOR_TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n` + 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    const [head, second] = text.split(/(?=HTTP\/1\.1 )/);
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head).toMatch(/content-type: text\/event-stream/i);
    expect(head!.endsWith('\r\n\r\n'), 'no body after the HEAD answer').toBe(true);
    expect(second).toMatch(/^HTTP\/1\.1 200[^]*"status":"ok"/);
  });

  it('replays a device named twice in the query once', async () => {
    gw = await startGateway({ liveFlushMs: 20 });
    const d = await device('twice-1');
    const first = await sse('/api/live?device=twice-1');
    for (let i = 0; i < 3; i++) {
      d.send(frame(i, i));
      await waitFor(() => first.text().includes(`id: twice-1:${i + 1}@`), `message ${i + 1}`);
    }
    const again = await sse('/api/live?device=twice-1&device=twice-1', { 'last-event-id': 'twice-1:1' });
    await waitFor(() => again.text().includes(': connected'), 'the replay');
    expect(again.text().match(/event: resume/g)).toHaveLength(1);
    expect(again.text().match(/id: twice-1:2@/g)).toHaveLength(1);
    expect(again.text().match(/id: twice-1:3@/g)).toHaveLength(1);
  });
});

describe('/live resume values', () => {
  it('refuses a resume seq that is no message\'s (a fraction, a negative, a string) with BAD_MESSAGE instead of "ok" and empty messages', async () => {
    gw = await startGateway({ liveFlushMs: 20 });
    const d = await device('res-1');
    const c = await liveRaw();
    c.ws.send(JSON.stringify({ op: 'subscribe', streams: ['device:res-1'] }));
    for (let i = 0; i < 4; i++) {
      d.send(frame(i, i));
      await waitFor(() => c.json().some((m) => m.type === 'device' && m.seq === i + 1), `message ${i + 1}`);
    }
    for (const bad of [1.5, -1, '2', null, [2]]) {
      const r = await liveRaw();
      r.ws.send(JSON.stringify({ op: 'subscribe', streams: ['device:res-1'], resume: { 'device:res-1': bad } }));
      const answer = await waitFor(() => r.json().find((m) => m.type !== 'hello'), `the answer to resume ${JSON.stringify(bad)}`);
      expect(answer, `resume ${JSON.stringify(bad)}`).toMatchObject({ type: 'error', code: 'BAD_MESSAGE' });
      // A good resume on the same socket still works, and nothing came that is not JSON.
      r.ws.send(JSON.stringify({ op: 'subscribe', streams: ['device:res-1'], resume: { 'device:res-1': 2 } }));
      await waitFor(() => r.json().some((m) => m.type === 'device' && m.seq === 4), 'the replay of a good resume');
      expect(r.json().filter((m) => m.unparsable !== undefined)).toEqual([]);
      expect(r.json().find((m) => m.type === 'resume')).toMatchObject({ status: 'ok', from: 2 });
    }
    for (const msg of [{ resume: 3 }, { resume: { 'device:res-1': 2 }, bootId: 7 }]) {
      const r = await liveRaw();
      r.ws.send(JSON.stringify({ op: 'subscribe', streams: ['device:res-1'], ...msg }));
      expect(await waitFor(() => r.json().find((m) => m.type !== 'hello'), 'the answer')).toMatchObject({ type: 'error', code: 'BAD_MESSAGE' });
    }
  });
});

describe('SSE of several devices across a reconnect', () => {
  it('resumes every device of the stream from the Last-Event-ID, not only the one of the last event', async () => {
    gw = await startGateway({ liveFlushMs: 20 });
    const a = await device('multi-a');
    const b = await device('multi-b');
    const first = await sse('/api/live?device=multi-a&device=multi-b');
    const ids = () => [...first.text().matchAll(/^id: (.+)$/gm)].map((m) => m[1]!);
    a.send(frame(0, 0));
    await waitFor(() => ids().length === 1, 'the first event (multi-a)');
    b.send(frame(0, 100));
    await waitFor(() => ids().length === 2, 'the second event (multi-b)');
    const lastEventId = ids().at(-1)!; // what an EventSource sends back: the id of the last event
    first.abort(); // the connection drops
    // Both devices go on while nobody listens.
    a.send(frame(1, 1));
    b.send(frame(1, 101));
    await waitFor(() => gw!.gateway.live.replay('multi-a', 1, undefined)?.length === 1 && gw!.gateway.live.replay('multi-b', 1, undefined)?.length === 1, 'both messages built');
    const again = await sse('/api/live?device=multi-a&device=multi-b', { 'last-event-id': lastEventId });
    await waitFor(() => again.text().includes(': connected'), 'the resumed stream');
    const resumes = [...again.text().matchAll(/^data: (\{"type":"resume".*)$/gm)].map((m) => JSON.parse(m[1]!));
    expect(resumes).toEqual(expect.arrayContaining([expect.objectContaining({ stream: 'device:multi-a', status: 'ok' }), expect.objectContaining({ stream: 'device:multi-b', status: 'ok' })]));
    const values = [...again.text().matchAll(/^data: (\{"type":"device".*)$/gm)].map((m) => JSON.parse(m[1]!).points['1'][0][1]);
    expect(values.sort((x, y) => x - y)).toEqual([1, 101]);
    // The same id as ?lastEventId= (EventSource polyfills that cannot set headers send it so).
    const viaQuery = await sse(`/api/live?device=multi-a&device=multi-b&lastEventId=${encodeURIComponent(lastEventId)}`);
    await waitFor(() => viaQuery.text().includes(': connected'), 'the stream resumed by ?lastEventId=');
    expect(viaQuery.text().match(/"status":"ok"/g)).toHaveLength(2);
    // A single-device stream keeps the documented id "<device>:<seq>@<bootId>".
    const single = await sse('/api/live?device=multi-a');
    a.send(frame(2, 2));
    await waitFor(() => /^id: multi-a:3@[^,]+$/m.test(single.text()), 'a single-device id');
  });
});

describe('a /live client following many devices', () => {
  it('costs little memory per followed stream before any message (rings grow with their messages)', async () => {
    gw = await startGateway();
    const c = await liveRaw();
    const N = 20_000;
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < N; i += 2000) {
      c.ws.send(JSON.stringify({ op: 'subscribe', streams: Array.from({ length: 2000 }, (_, j) => `device:storm-${i + j}`) }));
    }
    await waitFor(() => [...gw!.gateway.live.watchedDevices()].length === N, `${N} followed streams`);
    const growthMiB = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    // Preallocated rings of --live-replay (600) messages took ~11 KB per stream: 220 MiB here.
    expect(growthMiB, `${growthMiB.toFixed(0)} MiB for ${N} streams`).toBeLessThan(80);
    expect(c.json().filter((m) => m.type === 'error')).toEqual([]);
  });
});

describe('POST /api/devices/{id}/commands with a field it does not know', () => {
  it('is 400 BAD_COMMAND naming the field, and queues nothing (a "ttl" or "timeout" typo would silently get the defaults)', async () => {
    gw = await startGateway();
    await gw.api('/api/devices', { method: 'POST', body: JSON.stringify({ id: 'typo-1' }) });
    for (const body of [{ name: 'reboot', ttl: 60_000 }, { name: 'reboot', timeout: 5000 }, { method: 'reboot', name: 'reboot', params: {} }]) {
      const r = await gw.api('/api/devices/typo-1/commands', { method: 'POST', body: JSON.stringify(body) });
      expect(r, JSON.stringify(body)).toMatchObject({ status: 400, body: { error: { code: 'BAD_COMMAND' } } });
      expect(r.body.error.message).toMatch(/unknown field "(ttl|timeout|method)"/);
    }
    expect((await gw.api('/api/devices/typo-1/commands')).body.commands).toEqual([]);
    const ok = await gw.api('/api/devices/typo-1/commands', { method: 'POST', body: JSON.stringify({ name: 'reboot', args: null, ttlMs: 60_000, timeoutMs: 5000, idempotencyKey: 'k-1' }) });
    expect(ok.status).toBe(201);
  });
});

describe('commands of an id that cannot be a device', () => {
  it('are 400 BAD_DEVICE_ID for GET and POST, as for every other /api/devices/{id} route', async () => {
    gw = await startGateway();
    for (const method of ['GET', 'POST']) {
      const r = await gw.api('/api/devices/bad%20id/commands', { method, ...(method === 'POST' ? { body: JSON.stringify({ name: 'reboot' }) } : {}) });
      expect(r, method).toMatchObject({ status: 400, body: { error: { code: 'BAD_DEVICE_ID' } } });
    }
  });
});

describe('deleting a device with unfinished commands', () => {
  it('fails them, so a device that comes back with its id gets none of the old ones', async () => {
    gw = await startGateway();
    await gw.api('/api/devices', { method: 'POST', body: JSON.stringify({ id: 'gone-1' }) });
    const old = (await gw.api('/api/devices/gone-1/commands', { method: 'POST', body: JSON.stringify({ name: 'open-valve' }) })).body;
    expect(old.state).toBe('queued');
    expect((await gw.api('/api/devices/gone-1', { method: 'DELETE' })).status).toBe(200);
    const after = (await gw.api(`/api/commands/${old.id}`)).body;
    expect(after).toMatchObject({ state: 'failed' });
    expect(after.history.at(-1).note).toMatch(/deleted/);
    // A new device of the same id: it gets its own command, not the old one (commands go in order).
    const { token } = (await gw.api('/api/devices', { method: 'POST', body: JSON.stringify({ id: 'gone-1' }) })).body;
    const d = await RawDevice.connect(gw.ws, 'gone-1', token);
    closers.push(() => d.terminate());
    const fresh = (await gw.api('/api/devices/gone-1/commands', { method: 'POST', body: JSON.stringify({ name: 'status' }) })).body;
    await waitFor(() => d.received.some((f) => f.type === 0x82 && (f as { commandId: string }).commandId === fresh.id), 'the new command');
    expect(d.received.filter((f) => f.type === 0x82).map((f) => (f as { commandId: string }).commandId)).toEqual([fresh.id]);
  });
});

describe('the alarm API and what it does not know', () => {
  it('refuses a rule with an unknown field (a "webook" or "forMS" typo) with 400 BAD_ALARM_RULE naming it, adding nothing', async () => {
    gw = await startGateway();
    const rule = { name: 'hot', severity: 'critical', deviceType: 'climate', condition: { kind: 'above', channel: 1, threshold: 30 } };
    for (const [body, field] of [
      [{ ...rule, webook: 'http://127.0.0.1:9/x' }, 'webook'],
      [{ ...rule, condition: { ...rule.condition, forMS: 10_000 } }, 'condition.forMS'],
      [{ ...rule, condition: { ...rule.condition, min: 0 } }, 'condition.min'],
    ] as const) {
      const r = await gw.api('/api/alarm-rules', { method: 'POST', body: JSON.stringify(body) });
      expect(r, field).toMatchObject({ status: 400, body: { error: { code: 'BAD_ALARM_RULE' } } });
      expect(r.body.error.message).toContain(`"${field}"`);
    }
    const rules = (await gw.api('/api/alarm-rules')).body.rules as { source: string }[];
    expect(rules.filter((r) => r.source === 'api')).toEqual([]);
    // What GET answers can be posted again (its "source" is taken and ignored).
    const ok = await gw.api('/api/alarm-rules', { method: 'POST', body: JSON.stringify({ ...rule, id: 'hot-1', webhook: 'http://127.0.0.1:9/x', source: 'api' }) });
    expect(ok.status).toBe(201);
  });

  it('refuses an unknown query parameter of GET /api/alarms (a "sevrity" typo would list every alarm)', async () => {
    gw = await startGateway();
    expect(await gw.api('/api/alarms?sevrity=critical')).toMatchObject({ status: 400, body: { error: { code: 'BAD_QUERY' } } });
    expect((await gw.api('/api/alarms?severity=critical&state=active,acknowledged&device=x-1&limit=5&_=1')).status).toBe(200);
    expect((await fetch(`${gw.http}/api/alarms?token=${OPERATOR_TOKEN}`)).status).toBe(200);
  });
});

describe('an unknown query parameter', () => {
  it('is 400 BAD_QUERY on history, the command list and SSE, not a filter silently dropped', async () => {
    gw = await startGateway();
    await gw.api('/api/devices', { method: 'POST', body: JSON.stringify({ id: 'q-1' }) });
    for (const path of ['/api/devices/q-1/history?channel=1&form=0', '/api/devices/q-1/history?channel=1&point=10', '/api/devices/q-1/commands?limt=5', '/api/live?device=q-1&alarm']) {
      const r = await gw.api(path, { signal: AbortSignal.timeout(5000) });
      expect(r, path).toMatchObject({ status: 400, body: { error: { code: 'BAD_QUERY' } } });
    }
    expect((await gw.api('/api/devices/q-1/history?channel=1&from=0&to=10&points=5&_=1')).status).toBe(200);
    expect((await gw.api('/api/devices/q-1/commands?limit=5')).status).toBe(200);
    expect((await fetch(`${gw.http}/api/devices/q-1/history?channel=1&token=${OPERATOR_TOKEN}`)).status).toBe(200);
  });
});

describe('a request body that is not UTF-8', () => {
  it('is 400 BAD_JSON and changes nothing (it was stored with U+FFFD in place of the bad bytes)', async () => {
    gw = await startGateway();
    await gw.api('/api/devices', { method: 'POST', body: JSON.stringify({ id: 'utf-1', name: 'Pump' }) });
    const body = Buffer.concat([Buffer.from('{"name":"bad '), Buffer.from([0xff]), Buffer.from(' byte"}')]);
    const r = await gw.api('/api/devices/utf-1', { method: 'PATCH', body });
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'BAD_JSON' } } });
    expect((await gw.api('/api/devices/utf-1')).body.name).toBe('Pump');
    // Real UTF-8 goes through as sent.
    expect((await gw.api('/api/devices/utf-1', { method: 'PATCH', body: JSON.stringify({ name: 'Pompe n° 7 ✓' }) })).body.name).toBe('Pompe n° 7 ✓');
  });
});

describe('a /live client asking for the fleet again and again', () => {
  /** A gateway whose registry lists `n` devices, so a fleet snapshot is big. */
  async function withFleet(n: number, liveBudget: number, liveFlushMs = 100): Promise<void> {
    const path = join(tempDir(), 'registry.json');
    writeFileSync(path, JSON.stringify({ devices: Array.from({ length: n }, (_, i) => ({ id: `reg-${i}`, tokenHash: `sha256:${'0'.repeat(64)}`, name: `Registry device ${i}` })) }));
    gw = await startGateway({ registry: path, liveBudget, liveFlushMs });
  }

  it('gets one snapshot for a stream named many times in one message', async () => {
    await withFleet(50, 1024 * 1024);
    const c = await liveRaw();
    c.ws.send(JSON.stringify({ op: 'subscribe', streams: Array(300).fill('fleet') }));
    c.ws.send(JSON.stringify({ op: 'subscribe', streams: ['types'] }));
    await waitFor(() => c.json().some((m) => m.type === 'types'), 'the types message after it');
    expect(c.json().filter((m) => m.type === 'fleet' && m.full)).toHaveLength(1);
  });

  it('builds no snapshot for a client with its budget waiting already: it gets missed and a fresh one when it reads again', async () => {
    // Flushes (which also check budgets) 5 s apart: only the check at the ask can stop the building.
    await withFleet(2000, 64 * 1024, 5000);
    const live = gw!.gateway.live;
    let asked = 0;
    const subscribe = live.subscribe.bind(live);
    live.subscribe = (client, stream) => (stream === 'fleet' && asked++, subscribe(client, stream));
    const c = await liveRaw();
    await waitFor(() => c.json().some((m) => m.type === 'hello'), 'hello');
    const socket = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause(); // a frozen tab that keeps asking
    const asks = 100;
    // One ask at a time, each after the last snapshot was written (asks that come while one is
    // being written share it).
    for (let i = 0; i < asks; i++) {
      c.ws.send(JSON.stringify({ op: 'subscribe', streams: ['fleet'] }));
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(() => (asked === asks ? true : undefined), 'every ask taken');
    await waitFor(() => [...live.clients].some((x) => x.congested), 'the client over its budget');
    // Each snapshot is ~0.8 MB against a 64 KiB budget: once the kernel's socket buffers are full
    // (a few MB on loopback) nothing more is built; without the check every ask builds one.
    const built = live.fleetSnapshotsBuilt;
    expect(built, `${built} snapshots built for ${asks} asks`).toBeLessThan(asks / 3);
    socket.resume();
    await waitFor(() => c.json().some((m) => m.type === 'missed'), 'the missed message', 15_000);
    const missedAt = c.json().findIndex((m) => m.type === 'missed');
    await waitFor(() => c.json().slice(missedAt).some((m) => m.type === 'fleet' && m.full), 'a fresh snapshot after it');
  });
});
