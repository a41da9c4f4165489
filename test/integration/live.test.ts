/** The live stream (gateway/LIVE.md) against a real gateway: /live, /api/live SSE, and the dashboard files. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { hashToken } from '../../gateway/auth.js';
import { deviceToken, OPERATOR_TOKEN, startGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { LiveClient } from '../helpers/live-client.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await gw?.close();
  gw = undefined;
});

async function live(): Promise<LiveClient> {
  const c = await LiveClient.connect(gw!.ws, OPERATOR_TOKEN);
  closers.push(() => c.close());
  return c;
}

async function device(id: string): Promise<RawDevice> {
  const d = await RawDevice.connect(gw!.ws, id, deviceToken(id));
  closers.push(() => d.terminate());
  return d;
}

function frame(seq: number, value: number, t = Date.now()): Uint8Array {
  return encodeTelemetry({ epoch: 1, seq, timestamp: t }, [{ channel: 1, value }]);
}

describe('/live', () => {
  it('refuses a missing or wrong operator token with 401 and no upgrade', async () => {
    gw = await startGateway();
    await expect(LiveClient.connect(gw.ws, 'wrong')).rejects.toMatchObject({ status: 401 });
    await expect(LiveClient.connect(gw.ws, '')).rejects.toMatchObject({ status: 401 });
  });

  it('gives a dashboard on a fleet bigger than one snapshot slice every device in one snapshot, then the deltas', async () => {
    // 1,300 devices: three slices of the snapshot writer, and a snapshot over the 1 MiB budget with real summaries.
    const dir = tempDir('live-big-');
    const registry = join(dir, 'devices.json');
    const ids = Array.from({ length: Number(process.env.BIGN ?? 1300) }, (_, i) => `big-${String(i).padStart(5, '0')}`);
    writeFileSync(registry, JSON.stringify({ devices: ids.map((id) => ({ id, tokenHash: hashToken(deviceToken(id)) })) }));
    gw = await startGateway({ registry, liveFlushMs: 100 });
    const c = await live();
    c.send({ op: 'subscribe', streams: ['fleet'] });
    const snap = await c.waitFor((m) => m.type === 'fleet' && m.full, 'fleet snapshot');
    expect(snap.devices.map((x: { id: string }) => x.id).sort()).toEqual(ids);
    const d = await device('big-00007');
    d.send(frame(0, 20.5));
    const delta = await c.waitFor((m) => m.type === 'fleet' && !m.full && m.devices.some((x: { id: string; counters: { frames: number } }) => x.id === 'big-00007' && x.counters.frames === 1), 'a delta with the frame');
    expect(delta.devices.find((x: { id: string }) => x.id === 'big-00007')).toMatchObject({ online: true });
    expect(c.messages.filter((m) => m.type === 'fleet' && m.full)).toHaveLength(1);
    expect(c.messages.filter((m) => m.type === 'missed')).toEqual([]);
  });

  it('keeps a client slower than its own fleet snapshot on the fleet view: the deltas after it wait behind it, none skipped or missed', async () => {
    // A snapshot of 30,000 devices (~9 MB, more than loopback's socket buffers take) against a 4 KiB
    // budget: before, the snapshot alone made the client congested (the delta missed, then a `missed`
    // message and the next snapshot, which made it congested again).
    const dir = tempDir('live-slow-');
    const registry = join(dir, 'devices.json');
    const ids = Array.from({ length: 30_000 }, (_, i) => `slow-${String(i).padStart(5, '0')}`);
    writeFileSync(registry, JSON.stringify({ devices: ids.map((id) => ({ id, tokenHash: hashToken(deviceToken(id)) })) }));
    const budget = 4096;
    gw = await startGateway({ registry, liveFlushMs: 100, liveBudget: budget });
    const hub = gw.gateway.live;
    const c = await live();
    c.socket.pause(); // a browser far away: the snapshot waits in the gateway
    c.send({ op: 'subscribe', streams: ['fleet'] });
    await waitFor(() => {
      const k = [...hub.clients][0];
      return k?.snapshotBytes !== undefined && k.conn.bufferedAmount() > 4 * budget ? true : undefined;
    }, 'the snapshot sent and waiting in the gateway beyond 4× the budget');
    const published = new Promise<void>((resolve) => hub.onPublish((topic) => topic === 'fleet' && resolve()));
    const d = await device('slow-00007');
    d.send(frame(0, 20.5));
    await published; // the delta went out while the snapshot still waits
    c.socket.resume();
    await c.waitFor((m) => m.type === 'fleet' && !m.full && m.devices.some((x: { id: string; counters: { frames: number } }) => x.id === 'slow-00007' && x.counters.frames === 1), 'the delta behind the snapshot', 10_000);
    expect(c.messages.filter((m) => m.type === 'fleet' && m.full)).toHaveLength(1);
    expect(c.messages.filter((m) => m.type === 'missed')).toEqual([]);
  });

  it('says hello, sends a fleet snapshot then deltas, and streams a device: at once when quiet, then coalesced per flush', async () => {
    gw = await startGateway({ liveFlushMs: 100 });
    const d = await device('climate-0001');
    const c = await live();
    await c.waitFor((m) => m.type === 'hello', 'hello');
    c.send({ op: 'subscribe', streams: ['fleet', 'device:climate-0001', 'stats'] });
    const snap = await c.waitFor((m) => m.type === 'fleet' && m.full, 'fleet snapshot');
    expect(snap.devices.map((x: { id: string }) => x.id)).toEqual(['climate-0001']);
    expect(snap.devices[0]).toMatchObject({ online: true, type: 'climate' });
    d.send(frame(0, 20.5));
    const first = await c.waitFor((m) => m.type === 'device', 'a device message');
    expect(first).toMatchObject({ id: 'climate-0001', seq: 1, downsampled: false });
    expect(first.points['1'].map((p: [number, number]) => p[1])).toEqual([20.5]);
    d.send(frame(1, 21.5));
    d.send(frame(2, 22.5));
    // Whatever messages they come in, each reading arrives once, in order, with the seq growing by one.
    await c.waitFor((m) => m.type === 'device' && m.points['1']?.some((p: [number, number]) => p[1] === 22.5), 'the last reading');
    const msgs = c.messages.filter((m) => m.type === 'device');
    expect(msgs.map((m) => m.seq)).toEqual(msgs.map((_, i) => i + 1));
    expect(msgs.flatMap((m) => m.points['1'].map((p: [number, number]) => p[1]))).toEqual([20.5, 21.5, 22.5]);
    await c.waitFor((m) => m.type === 'fleet' && !m.full && m.devices[0]?.last?.['1']?.value === 22.5, 'a fleet delta');
    const stats = await c.waitFor((m) => m.type === 'stats', 'stats', 3000);
    expect(stats.stats).toMatchObject({ devicesOnline: 1, frames: 3 });
  });

  it('sends the reading of a quiet device at once, not at the next flush interval (adaptive flush)', async () => {
    // A 10 s interval: the message can only come within waitFor's 5 s through the next-turn flush.
    gw = await startGateway({ liveFlushMs: 10_000 });
    const d = await device('quiet');
    const c = await live();
    c.send({ op: 'subscribe', streams: ['fleet', 'device:quiet'] });
    await c.waitFor((m) => m.type === 'fleet' && m.full, 'fleet snapshot');
    d.send(frame(0, 7.5));
    const msg = await c.waitFor((m) => m.type === 'device', 'the device message before the 10 s flush');
    expect(msg.points['1']).toEqual([[expect.any(Number), 7.5]]);
    await c.waitFor((m) => m.type === 'fleet' && !m.full && m.devices[0]?.last?.['1']?.value === 7.5, 'the fleet delta before the 10 s flush');
  });

  it('puts a device in at most one fleet delta per interval, plus one after a quiet spell', async () => {
    // A 10 s interval: within this test only the next-turn deltas of quiet devices can come.
    gw = await startGateway({ liveFlushMs: 10_000 });
    const busy = await device('chatty');
    const quiet = await device('sentinel');
    const c = await live();
    c.send({ op: 'subscribe', streams: ['fleet'] });
    await c.waitFor((m) => m.type === 'fleet' && m.full, 'fleet snapshot');
    busy.send(frame(0, 1));
    await c.waitFor((m) => m.type === 'fleet' && !m.full && m.devices.some((x: { id: string }) => x.id === 'chatty'), 'the quiet device at once');
    for (let i = 1; i <= 20; i++) busy.send(frame(i, i + 1));
    await waitFor(async () => (await gw!.api('/api/devices/chatty')).body.counters?.frames === 21, 'the 20 frames taken');
    // Messages on one socket keep their order: a delta of the sentinel's frame, sent after the 20
    // were taken, comes after any delta those frames caused.
    quiet.send(frame(0, 99));
    await c.waitFor((m) => m.type === 'fleet' && !m.full && m.devices.some((x: { id: string }) => x.id === 'sentinel'), "the sentinel's delta");
    const deltas = c.messages.filter((m) => m.type === 'fleet' && !m.full);
    expect(deltas.filter((m) => m.devices.some((x: { id: string }) => x.id === 'chatty'))).toHaveLength(1);
  });

  it('downsamples a fast device to the min and max of each flush', async () => {
    gw = await startGateway({ liveFlushMs: 200 });
    const d = await device('fast');
    const c = await live();
    c.send({ op: 'subscribe', streams: ['device:fast'] });
    await new Promise((r) => setTimeout(r, 50));
    // The first reading of a quiet stream goes out at once; what follows within the interval is coalesced.
    d.send(frame(0, 10));
    await c.waitFor((m) => m.type === 'device', 'the first device message');
    const t0 = Date.now();
    for (let i = 1; i <= 50; i++) d.send(frame(i, i === 17 ? -5 : i === 33 ? 99 : 10, t0 + i));
    const msg = await c.waitFor((m) => m.type === 'device' && m.seq === 2, 'the coalesced device message');
    expect(msg.downsampled).toBe(true);
    expect(msg.points['1']).toEqual([[t0 + 17, -5], [t0 + 33, 99]]);
  });

  it('answers unknown streams and bad messages with an error and keeps the connection', async () => {
    gw = await startGateway();
    const c = await live();
    c.send({ op: 'subscribe', streams: ['nope'] });
    c.ws.send('not json');
    await waitFor(() => c.of('error').length === 2, 'two errors');
    expect(c.of('error').map((m) => m.code)).toEqual(['UNKNOWN_STREAM', 'BAD_MESSAGE']);
    c.send({ op: 'subscribe', streams: ['fleet'] });
    await c.waitFor((m) => m.type === 'fleet', 'fleet after errors');
  });

  it('resumes a device stream after a reconnect with no gap, and says too_old beyond the ring', async () => {
    gw = await startGateway({ liveFlushMs: 20, liveReplay: 1000, liveMaxPoints: 100 });
    const d = await device('resumer');
    const first = await live();
    first.send({ op: 'subscribe', streams: ['device:resumer'] });
    let seq = 0;
    const timer = setInterval(() => d.send(frame(seq, seq++)), 5);
    closers.push(() => clearInterval(timer));
    await waitFor(() => first.of('device').length >= 5, 'five messages');
    first.close();
    const lastSeen = first.of('device').at(-1)!;
    await new Promise((r) => setTimeout(r, 300)); // messages keep coming while nobody listens
    const second = await live();
    second.send({ op: 'subscribe', streams: ['device:resumer'], resume: { 'device:resumer': lastSeen.seq } });
    const ack = await second.waitFor((m) => m.type === 'resume', 'resume answer');
    expect(ack).toMatchObject({ status: 'ok', from: lastSeen.seq });
    await waitFor(() => second.of('device').length >= 20, 'replayed and live messages');
    clearInterval(timer);
    const seqs = second.of('device').map((m) => m.seq);
    expect(seqs[0]).toBe(lastSeen.seq + 1);
    seqs.forEach((s, i) => expect(s).toBe(seqs[0] + i));
    // The values carried across the reconnect are contiguous too.
    const values = [...first.of('device'), ...second.of('device')].flatMap((m) => m.points['1'].map((p: [number, number]) => p[1]));
    values.forEach((v, i) => expect(v).toBe(i));
    const third = await live();
    third.send({ op: 'subscribe', streams: ['device:resumer'], resume: { 'device:resumer': 999_999 } });
    expect(await third.waitFor((m) => m.type === 'resume', 'resume answer')).toMatchObject({ status: 'too_old' });
    // Seqs another gateway process counted (its bootId, from its hello) are void here, whatever their value.
    const fourth = await live();
    fourth.send({ op: 'subscribe', streams: ['device:resumer'], resume: { 'device:resumer': lastSeen.seq }, bootId: 'another-process' });
    expect(await fourth.waitFor((m) => m.type === 'resume', 'resume answer')).toMatchObject({ status: 'too_old' });
    const fifth = await live();
    const hello = await fifth.waitFor((m) => m.type === 'hello', 'hello');
    fifth.send({ op: 'subscribe', streams: ['device:resumer'], resume: { 'device:resumer': lastSeen.seq }, bootId: hello.bootId });
    expect(await fifth.waitFor((m) => m.type === 'resume', 'resume answer')).toMatchObject({ status: 'ok' });
  });

  it('streams commands as they change', async () => {
    gw = await startGateway();
    await device('cmd-dev');
    const c = await live();
    c.send({ op: 'subscribe', streams: ['commands'] });
    await new Promise((r) => setTimeout(r, 50));
    const { body } = await gw.api('/api/devices/cmd-dev/commands', { method: 'POST', body: JSON.stringify({ name: 'reboot' }) });
    const states = await waitFor(() => {
      const s = c.of('command').filter((m) => m.command.id === body.id).map((m) => m.command.state);
      return s.length >= 2 ? s : undefined;
    }, 'queued and sent');
    expect(states.slice(0, 2)).toEqual(['queued', 'sent']);
  });
});

describe('a dashboard client that never reads', () => {
  it('does not slow ingest or another client, stays bounded in memory, and is told what it missed', async () => {
    const budget = 64 * 1024;
    gw = await startGateway({ liveFlushMs: 10, liveBudget: budget, ackInterval: 50 });
    const N = 40;
    const devs = await Promise.all(Array.from({ length: N }, (_, i) => device(`load-${i}`)));
    const streams = ['fleet', ...devs.map((_, i) => `device:load-${i}`)];
    const fast = await live();
    fast.send({ op: 'subscribe', streams });
    let seq = 0;
    /** Sends for `ms`, returns frames ingested per second and the fast client's median delay. */
    async function phase(ms: number): Promise<{ rate: number; p50: number }> {
      const before = gw!.gateway.ingest.stats.frames;
      const start = Date.now();
      const delays: number[] = [];
      const seenBefore = fast.messages.length;
      while (Date.now() - start < ms) {
        const t = Date.now();
        for (const d of devs) d.send(frame(seq, seq, t));
        seq++;
        await new Promise((r) => setTimeout(r, 2));
      }
      const rate = ((gw!.gateway.ingest.stats.frames - before) * 1000) / (Date.now() - start);
      for (const m of fast.messages.slice(seenBefore)) if (m.type === 'device') delays.push(m.at - m.points['1'].at(-1)[0]);
      delays.sort((a, b) => a - b);
      return { rate, p50: delays[Math.floor(delays.length / 2)] ?? Infinity };
    }
    const alone = await phase(1500);
    const slow = await live();
    slow.send({ op: 'subscribe', streams });
    await slow.waitFor((m) => m.type === 'fleet', 'the slow client is subscribed');
    slow.socket.pause(); // a frozen tab: nothing is read from now on
    const rssBefore = process.memoryUsage().rss;
    const withSlow = await phase(4000);
    const rssGrowthMiB = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    // Ratios in one test, with room for a loaded 2-core machine: the slow client costs the others little.
    expect(withSlow.rate).toBeGreaterThan(alone.rate * 0.6);
    expect(withSlow.p50).toBeLessThan(Math.max(alone.p50 * 3, alone.p50 + 50));
    expect(rssGrowthMiB).toBeLessThan(100);
    const client = [...gw.gateway.live.clients].find((c) => c.congested);
    expect(client, 'the slow client went over its budget').toBeDefined();
    expect(client!.conn.bufferedAmount()).toBeLessThanOrEqual(budget * 4);
    // Reading again, it learns how much it missed and gets a fresh fleet snapshot.
    slow.socket.resume();
    const missed = await slow.waitFor((m) => m.type === 'missed', 'the missed message', 15_000);
    expect(missed.count).toBeGreaterThan(0);
    expect(missed.streams.length).toBeGreaterThan(0);
    await slow.waitFor((m) => m.type === 'fleet' && m.full && m.at >= missed.at, 'a fresh snapshot');
    expect(gw.gateway.live.dropped).toBeGreaterThanOrEqual(missed.count);
  });
});

describe('Server-Sent Events', () => {
  it('streams a device as text/event-stream and resumes from Last-Event-ID', async () => {
    gw = await startGateway({ liveFlushMs: 20 });
    const d = await device('sse-dev');
    const ctrl = new AbortController();
    closers.push(() => ctrl.abort());
    const res = await fetch(`${gw.http}/api/live?device=sse-dev&token=${OPERATOR_TOKEN}`, { signal: ctrl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += new TextDecoder().decode(value);
      }
    })().catch(() => {});
    for (let i = 0; i < 5; i++) {
      d.send(frame(i, i));
      await new Promise((r) => setTimeout(r, 30));
    }
    await waitFor(() => (text.match(/event: device/g) ?? []).length >= 3, 'three SSE events');
    const ids = [...text.matchAll(/^id: (.+)$/gm)].map((m) => m[1]!);
    const bootId = gw.gateway.live.bootId;
    expect(ids[0]).toBe(`sse-dev:1@${bootId}`);
    ctrl.abort();
    await pump;
    // Resume after the first message: the rest is replayed.
    const ctrl2 = new AbortController();
    closers.push(() => ctrl2.abort());
    const res2 = await fetch(`${gw.http}/api/live?device=sse-dev`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'last-event-id': 'sse-dev:1' }, signal: ctrl2.signal });
    const r2 = res2.body!.getReader();
    let text2 = '';
    await waitFor(async () => {
      const { value } = await r2.read();
      text2 += new TextDecoder().decode(value);
      return text2.includes(`id: sse-dev:${ids.length}@${bootId}`);
    }, 'the replay');
    expect(text2).toContain('"status":"ok"');
    expect(text2).toContain(`id: sse-dev:2@${bootId}`);
    // An id another gateway process gave (a restart, another worker) cannot be resumed from here.
    const ctrl3 = new AbortController();
    closers.push(() => ctrl3.abort());
    const res3 = await fetch(`${gw.http}/api/live?device=sse-dev`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'last-event-id': 'sse-dev:1@another-process' }, signal: ctrl3.signal });
    const r3 = res3.body!.getReader();
    let text3 = '';
    await waitFor(async () => {
      const { value } = await r3.read();
      text3 += new TextDecoder().decode(value);
      return text3.includes('event: resume');
    }, 'the resume answer');
    expect(text3).toContain('"status":"too_old"');
    expect((await fetch(`${gw.http}/api/live?device=sse-dev`)).status).toBe(401);
    expect((await fetch(`${gw.http}/api/live?token=${OPERATOR_TOKEN}`)).status).toBe(400);
  });
});

describe('dashboard files', () => {
  it('serves index.html uncached and hashed assets cached for a year, with content types', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(dir, 'assets', 'app-abc123.js'), 'console.log(1)');
    gw = await startGateway({ dashboardDir: dir });
    const index = await fetch(gw.http + '/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const js = await fetch(gw.http + '/assets/app-abc123.js');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const again = await fetch(gw.http + '/assets/app-abc123.js', { headers: { 'if-none-match': js.headers.get('etag')! } });
    expect(again.status).toBe(304);
    expect((await fetch(gw.http + '/assets/nope.js')).status).toBe(404);
    expect((await fetch(gw.http + '/../package.json')).status).toBe(404);
  });

  it('answers / with 503 and what to run when the dashboard is not built', async () => {
    gw = await startGateway({ dashboardDir: tempDir() });
    const res = await fetch(gw.http + '/');
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/npm run build/);
  });

  it('lists the device types', async () => {
    gw = await startGateway();
    const { body } = await gw.api('/api/device-types');
    expect(body.types.map((t: { type: string }) => t.type)).toEqual(['climate', 'power', 'vibration']);
  });
});
