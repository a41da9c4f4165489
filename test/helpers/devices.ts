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

export interface StreamOptions {
  /** Called after reading i was handed to the device; may await (stop a gateway, start another). */
  onEach?: (i: number) => void | Promise<void>;
  /** Every this many readings the stream pauses `pauseMs` (default 10 and 1 ms)… */
  every?: number;
  /** …so acks and reconnects happen meanwhile (0: no pause, only awaits of onEach yield). */
  pauseMs?: number;
}

/** Sends reading i (channel 0, value i, time base + i) for i in [from, to). */
export async function stream(c: DeviceClient, from: number, to: number, base: number, o: StreamOptions = {}): Promise<void> {
  const every = o.every ?? 10;
  const pauseMs = o.pauseMs ?? 1;
  for (let i = from; i < to; i++) {
    c.send({ channel: 0, value: i }, base + i);
    await o.onEach?.(i);
    if (pauseMs > 0 && i % every === 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
}
