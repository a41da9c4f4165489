import { afterEach, describe, expect, it } from 'vitest';
import { deviceToken, spawnGateway, startGateway, tempDir, type ChildGateway, type TestGateway } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

let gw: TestGateway | undefined;
let child: ChildGateway | undefined;
const devices: RawDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) d.terminate();
  await gw?.close();
  gw = undefined;
  await child?.stop('SIGKILL');
  child = undefined;
});

function rawSocket(d: RawDevice): import('node:net').Socket {
  return (d.ws as unknown as { _socket: import('node:net').Socket })._socket;
}

describe('heartbeats', () => {
  it('marks a device that stops answering offline (cause timeout) within idle timeout + 4 s', async () => {
    const idle = 8;
    gw = await startGateway({ idleTimeout: idle });
    const d = await RawDevice.connect(gw.ws, 'mute', deviceToken('mute'));
    devices.push(d);
    // Stop reading: the gateway's pings go unanswered, as with a cut cable or a hung device.
    rawSocket(d).pause();
    const silentSince = Date.now();
    const state = await waitFor(async () => {
      const { body } = await gw!.api('/api/devices/mute');
      return body.online ? undefined : body;
    }, 'the silent device to go offline', (idle + 6) * 1000, 100);
    const tookMs = Date.now() - silentSince;
    expect(state.offlineCause).toBe('timeout');
    expect(tookMs).toBeLessThanOrEqual((idle + 4) * 1000 + 500);
  });

  it('keeps a quiet device that answers pings online', async () => {
    const idle = 8;
    gw = await startGateway({ idleTimeout: idle });
    const d = await RawDevice.connect(gw.ws, 'quiet', deviceToken('quiet'));
    devices.push(d);
    await new Promise((r) => setTimeout(r, (idle + 3) * 1000));
    expect((await gw.api('/api/devices/quiet')).body.online).toBe(true);
  });
});

describe('send budget', () => {
  it('does not grow gateway memory for a device that stops reading', async () => {
    const budget = 64 * 1024;
    gw = await startGateway({ deviceSendBudget: budget });
    const d = await RawDevice.connect(gw.ws, 'stuck', deviceToken('stuck'));
    devices.push(d);
    rawSocket(d).pause();
    const link = await waitFor(() => gw!.gateway.devices.get('stuck')?.link, 'the device link');
    const chunk = new Uint8Array(64 * 1024);
    const before = process.memoryUsage().rss;
    const results = { sent: 0, queued: 0, dropped: 0 };
    let maxBuffered = 0;
    // 2,000 x 64 KiB = 125 MiB offered: with no bound, all of it would sit in gateway memory.
    for (let i = 0; i < 2000; i++) {
      results[link.send(chunk)]++;
      maxBuffered = Math.max(maxBuffered, link.bufferedAmount());
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    const grewMiB = (process.memoryUsage().rss - before) / 1024 / 1024;
    expect(results.dropped).toBeGreaterThan(1500);
    expect(maxBuffered).toBeLessThanOrEqual(budget + chunk.byteLength);
    expect(grewMiB).toBeLessThan(40);
  });
});

describe('uWebSockets.js native check', () => {
  it('refuses to start on the slow ws fallback unless --allow-uws-fallback', async () => {
    const dataDir = tempDir();
    await expect(spawnGateway(['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir], { UWS_USE_FALLBACK: '1' })).rejects.toThrow(/UWS_NOT_NATIVE.*--allow-uws-fallback/s);
    child = await spawnGateway(['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--allow-uws-fallback'], { UWS_USE_FALLBACK: '1' });
    expect((await fetch(child.http + '/healthz')).status).toBe(200);
  });

  it('starts natively and prints the URL it listens on', async () => {
    child = await spawnGateway(['--host', '127.0.0.1', '--port', '0', '--data-dir', tempDir(), '--operator-token', 'op']);
    expect(child.output()).toMatch(/^gateway listening on http:\/\/127\.0\.0\.1:\d+ /m);
    expect(child.output()).not.toContain('op)');
  });
});
