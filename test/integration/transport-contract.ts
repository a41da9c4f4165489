/**
 * The transport contract: what the gateway promises a device whichever way it connects (WebSocket,
 * the embedded MQTT broker, the bridge to an external broker), as one suite every transport runs
 * (as hono's routers all run common.case.test.ts). A case that cannot apply to a transport is
 * reported as skipped, with the reason in its name.
 *
 * Black-box on purpose: gateway processes of the built CLI, stopped (or SIGKILLed) by PID and
 * restarted on the same data folder; devices are raw clients sending hand-made frames, or the SDK.
 * Every wait is bounded and waits on what the device received or the API says, never on time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_CODES, encodeTelemetry, ERROR_CODES } from '../../devices/codec/index.js';
import type { DeviceClient } from '../../devices/sdk/index.js';
import { ConnectionLog, sdkDevice, stream, untilAcked } from '../helpers/devices.js';
import { gatewayArgs, historyValues, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { errorFrameOf, waitAcked as waitAckedWithin, type FrameDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

export type ContractCase =
  | 'resend'
  | 'resend after a restart'
  | 'resend after a SIGKILL'
  | 'SDK across a restart'
  | 'SDK across a SIGKILL'
  | 'replacement'
  | 'replacement across transports'
  | 'bad frame'
  | 'normal close';

export interface TransportUnderTest {
  name: string;
  /** Cases that do not apply to this transport, each with the reason. */
  skip?: Partial<Record<ContractCase, string>>;
  /** Skips the whole suite (a program it needs is missing); undefined to run. */
  unavailable?: string | undefined;
  /** After a bad frame's error frame the gateway closes the connection (a bridged device's connection is the broker's). */
  kicksBadDevice: boolean;
  /** The transport reports close codes (WebSocket does; MQTT 3.1.1 has none, the error frame is the reason). */
  closeCodes: boolean;
  /** Starts what the gateway needs beside it, once per suite; returns the gateway flags for it (given a free port for an embedded broker). */
  start(): Promise<{ flags(mqttPort: number): string[]; stop(): Promise<void> }>;
  /** Resolves once the gateway takes this transport's traffic (the bridge: its shared subscription is live). */
  ready?(gw: ChildGateway): Promise<void>;
  /** A raw device of the test fleet on this transport of gateway `gw`. */
  connect(gw: ChildGateway, id: string): Promise<FrameDevice>;
  /** The URL an SDK device uses for gateway `gw`. */
  sdkUrl(gw: ChildGateway): string;
  /** A raw device on another transport of the same gateway, for replacement across transports. */
  other?: { name: string; connect(gw: ChildGateway, id: string): Promise<FrameDevice> };
}

const BASE = 1_700_000_000_000;
const EPOCH = 7;
const frame = (seq: number, epoch = EPOCH): Uint8Array => encodeTelemetry({ epoch, seq, timestamp: BASE + seq }, [{ channel: 1, value: seq }]);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
/** Acks come every 10 ms; the bound is for a loaded machine, and an ack that never comes fails the case. */
const waitAcked = (d: FrameDevice, epoch: number, from: number, to: number) => waitAckedWithin(d, epoch, from, to, 10_000);

export function transportContract(t: TransportUnderTest): void {
  describe.skipIf(t.unavailable !== undefined)(`transport contract: ${t.name}`, () => {
    let env: Awaited<ReturnType<TransportUnderTest['start']>> | undefined;
    const procs: ChildGateway[] = [];
    const raws: FrameDevice[] = [];
    const sdks: DeviceClient[] = [];

    beforeAll(async () => {
      env = await t.start();
    });
    afterAll(async () => {
      await env?.stop();
    });
    afterEach(async () => {
      for (const d of raws.splice(0)) d.terminate();
      for (const c of sdks.splice(0)) await c.close().catch(() => {});
      for (const g of procs.splice(0)) await g.stop('SIGKILL');
    });

    /** A gateway process on fixed ports and data folder, so a restart is found where the first one was. */
    async function gateway(dataDir: string, port: number, mqttPort: number): Promise<ChildGateway> {
      const g = await spawnGateway(gatewayArgs(dataDir, '--port', String(port), '--ack-interval', '10', ...env!.flags(mqttPort)));
      procs.push(g);
      await t.ready?.(g);
      return g;
    }

    async function device(gw: ChildGateway, id: string): Promise<FrameDevice> {
      const d = await t.connect(gw, id);
      raws.push(d);
      return d;
    }

    const state = async (gw: ChildGateway, id: string) => (await gw.api(`/api/devices/${id}`)).body;

    /** Runs `fn` as case `name`, or reports it skipped with the transport's reason. */
    function contractCase(name: ContractCase, title: string, fn: () => Promise<void>): void {
      const reason = t.skip?.[name];
      if (reason !== undefined) it.skip(`${name}: skipped for ${t.name}: ${reason}`, () => {});
      else it(`${name}: ${title}`, fn);
    }

    for (const [signal, name] of [['SIGTERM', 'resend after a restart'], ['SIGKILL', 'resend after a SIGKILL']] as const) {
      contractCase(name, 'frames acked before are duplicates when resent: acked at once, none stored again, no false gap', async () => {
        const id = `${t.name}-resend-${signal.toLowerCase()}`;
        const [dataDir, port, mqttPort] = [tempDir(), await freePort(), await freePort()];
        const N = 40;
        const first = await gateway(dataDir, port, mqttPort);
        const before = await device(first, id);
        for (let s = 0; s < N; s++) before.send(frame(s));
        await waitAcked(before, EPOCH, 0, N - 1);
        expect((await state(first, id)).counters).toMatchObject({ frames: N, duplicates: 0 });
        // The acks went out, so their cursors are on disk: a SIGKILL must not forget them.
        await first.stop(signal);
        before.terminate();

        const second = await gateway(dataDir, port, mqttPort);
        const after = await device(second, id);
        // A device that missed the acks resends everything: the gateway knows it holds them.
        for (let s = 0; s < N; s++) after.send(frame(s));
        await waitAcked(after, EPOCH, 0, N - 1);
        for (let s = N; s < N + 10; s++) after.send(frame(s));
        await waitAcked(after, EPOCH, N, N + 9);
        const dev = await state(second, id);
        expect(dev.counters).toMatchObject({ frames: 10, duplicates: N, gaps: 0, errors: 0 });
        // The in-memory history died with the first process: only the new frames are stored here.
        expect(await historyValues(second.http, id, 1, BASE, N + 10)).toEqual(range(N, N + 10));
      });
    }

    for (const [signal, name] of [['SIGTERM', 'SDK across a restart'], ['SIGKILL', 'SDK across a SIGKILL']] as const) {
      contractCase(name, 'the SDK device loses nothing and nothing it had acked is stored again', async () => {
        const id = `${t.name}-sdk-${signal.toLowerCase()}`;
        const [dataDir, port, mqttPort] = [tempDir(), await freePort(), await freePort()];
        const N = 400;
        const first = await gateway(dataDir, port, mqttPort);
        // One reading per frame: a frame's seq is its reading's index.
        const c = sdkDevice(t.sdkUrl(first), id, sdks, { batchMs: 0, maxReadingsPerFrame: 1 });
        const log = new ConnectionLog(c);
        await c.connect();
        let second: ChildGateway | undefined;
        await stream(c, 0, N, BASE, {
          onEach: async (i) => {
            if (i === 150) {
              await untilAcked(c, 100);
              await first.stop(signal);
            }
            if (i === 250) second = await gateway(dataDir, port, mqttPort);
          },
        });
        await untilAcked(c, N);
        await c.close();
        expect(c.stats).toMatchObject({ sent: N, acked: N, unacked: 0, dropped: 0 });
        expect(c.stats.reconnects).toBeGreaterThanOrEqual(1);
        const got = await historyValues(second!.http, id, 0, BASE, N);
        // What the second gateway stored is one run to the end with nothing twice; it starts where
        // the first one's acks ended (after a SIGKILL, maybe a little later: a cursor can reach the
        // file just before the kill and its ack never go out; those frames come back as duplicates).
        const start = got[0]!;
        expect(got).toEqual(range(start, N));
        if (signal === 'SIGTERM') expect(start).toBe(log.ackedByFirst);
        else expect(start).toBeGreaterThanOrEqual(log.ackedByFirst);
        const dev = await state(second!, id);
        expect(dev.counters).toMatchObject({ frames: N - start, gaps: 0, errors: 0 });
      });
    }

    describe('on one running gateway', () => {
      let gw: ChildGateway;
      beforeAll(async () => {
        gw = await spawnGateway(gatewayArgs(tempDir(), '--ack-interval', '10', ...env!.flags(await freePort())));
        await t.ready?.(gw);
      });
      afterAll(async () => {
        await gw?.stop('SIGKILL');
      });

      contractCase('resend', 'frames resent on a new connection are duplicates: acked again, stored once', async () => {
        const id = `${t.name}-again`;
        const first = await device(gw, id);
        for (let s = 0; s < 20; s++) first.send(frame(s));
        await waitAcked(first, EPOCH, 0, 19);
        first.terminate();
        const again = await device(gw, id);
        for (let s = 0; s < 25; s++) again.send(frame(s));
        await waitAcked(again, EPOCH, 0, 24);
        expect((await state(gw, id)).counters).toMatchObject({ frames: 25, duplicates: 20, gaps: 0 });
        expect(await historyValues(gw.http, id, 1, BASE, 25)).toEqual(range(0, 25));
      });

      contractCase('replacement', 'the same id connecting again closes the older connection with REPLACED; the newer one is online', async () => {
        const id = `${t.name}-twin`;
        const older = await device(gw, id);
        const newer = await device(gw, id);
        const closed = await older.closed;
        expect(await waitFor(() => errorFrameOf(older), 'the REPLACED error frame', 2000)).toMatchObject({ code: ERROR_CODES.REPLACED });
        if (t.closeCodes) expect(closed.code).toBe(CLOSE_CODES.REPLACED);
        // The older connection's close came after the newer one's connect: it must not mark the device offline.
        newer.send(frame(0));
        await waitAcked(newer, EPOCH, 0, 0);
        expect(await state(gw, id)).toMatchObject({ online: true, counters: { connections: 2, frames: 1 } });
        const listed = (await gw.api('/api/devices')).body.devices.filter((d: { id: string }) => d.id === id);
        expect(listed).toMatchObject([{ online: true }]);
        newer.close();
        await waitFor(async () => (await state(gw, id)).offlineCause === 'closed', 'the newer connection to close as closed');
      });

      contractCase('replacement across transports', 'a connection of the id on the other transport replaces this one, and the older close arriving later changes nothing', async () => {
        const other = t.other!;
        const id = `${t.name}-cross`;
        const older = await device(gw, id);
        const newer = await other.connect(gw, id);
        raws.push(newer);
        await older.closed;
        expect(await waitFor(() => errorFrameOf(older), 'the REPLACED error frame', 2000)).toMatchObject({ code: ERROR_CODES.REPLACED });
        // The newer connection is the device's link: its frames are acked, whenever the older close was handled.
        newer.send(frame(0));
        await waitAcked(newer, EPOCH, 0, 0);
        expect(await state(gw, id)).toMatchObject({ online: true, transport: other.name, counters: { connections: 2 } });
        newer.close();
        await waitFor(async () => (await state(gw, id)).offlineCause === 'closed', 'the newer connection to close as closed');
      });

      contractCase('bad frame', 'a bad frame gets an error frame with its code, is counted, and other devices carry on', async () => {
        const id = `${t.name}-bad`;
        const bad = await device(gw, id);
        const good = await device(gw, `${t.name}-good`);
        bad.send(new Uint8Array([1, 1, 0, 0, 9]));
        expect(await waitFor(() => errorFrameOf(bad), 'the error frame')).toMatchObject({ code: ERROR_CODES.FRAME_TRUNCATED });
        if (t.kicksBadDevice) {
          const closed = await bad.closed;
          if (t.closeCodes) expect(closed.code).toBe(CLOSE_CODES.BAD_FRAME);
          await waitFor(async () => (await state(gw, id)).online === false, 'the bad device to be offline');
          expect(await state(gw, id)).toMatchObject({ offlineCause: 'kicked' });
        }
        expect(await state(gw, id)).toMatchObject({ lastError: 'FRAME_TRUNCATED', counters: { errors: 1, frames: 0 } });
        const metrics = await (await fetch(`${gw.http}/metrics`)).text();
        expect(metrics).toMatch(/^gateway_errors_total\{code="FRAME_TRUNCATED"\} 1$/m);
        good.send(frame(0));
        await waitAcked(good, EPOCH, 0, 0);
      });

      contractCase('normal close', 'a device that closes normally is offline with cause closed', async () => {
        const id = `${t.name}-bye`;
        const d = await device(gw, id);
        d.send(frame(0));
        await waitAcked(d, EPOCH, 0, 0);
        d.close();
        await d.closed;
        const dev = await waitFor(async () => {
          const s = await state(gw, id);
          return s.online ? undefined : s;
        }, 'the device to be offline');
        expect(dev.offlineCause).toBe('closed');
      });
    });
  });
}
