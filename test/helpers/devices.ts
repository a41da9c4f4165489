/** SDK devices for tests: the test fleet's token, quick reconnects, errors left to assertions. */
import { DeviceClient, type DeviceClientOptions, type DisconnectInfo } from '../../devices/sdk/index.js';
import { deviceToken } from './gateway.js';
import { waitFor } from './wait.js';

/** A device added to `list`, so the test's afterEach can close it. */
export function sdkDevice(url: string, id: string, list: DeviceClient[], extra: Partial<DeviceClientOptions> = {}): DeviceClient {
  const c = new DeviceClient({ url, deviceId: id, token: deviceToken(id), backoffInitialMs: 50, backoffMaxMs: 300, ...extra });
  c.on('error', () => {});
  list.push(c);
  return c;
}

/** How each of an SDK device's connections ended, and how many frames were acked by then. */
export class ConnectionLog {
  readonly ends: (DisconnectInfo & { acked: number })[] = [];
  constructor(readonly client: DeviceClient) {
    client.on('disconnected', (e) => this.ends.push({ ...e, acked: client.stats.acked }));
  }

  /** Frames acked while the first connection was open: what the first gateway promised. */
  get ackedByFirst(): number {
    return this.ends[0]?.acked ?? this.client.stats.acked;
  }
}

/** Waits until the device's acks covered at least `frames` frames (bounded). */
export function untilAcked(c: DeviceClient, frames: number, timeoutMs = 10_000): Promise<boolean> {
  return waitFor(() => c.stats.acked >= frames, `${c.deviceId} to have ${frames} frames acked (has ${c.stats.acked})`, timeoutMs);
}

/**
 * Sends reading i (channel 0, value i, time base + i) for i in [from, to), yielding to the event
 * loop every `pauseEvery` readings so acks and reconnects can happen meanwhile; `onEach` may await.
 */
export async function stream(c: DeviceClient, from: number, to: number, base: number, onEach?: (i: number) => void | Promise<void>, pauseEvery = 10): Promise<void> {
  for (let i = from; i < to; i++) {
    c.send({ channel: 0, value: i }, base + i);
    await onEach?.(i);
    if (i % pauseEvery === pauseEvery - 1) await new Promise((r) => setTimeout(r, 1));
  }
}
