import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import { expect, it } from 'vitest';
import { encodeCommand } from '../../devices/codec/encode.js';
import { DeviceClient, deviceTopics } from '../../devices/sdk/index.js';
it('early', async () => {
  const aedes = await Aedes.createBroker();
  const mq = (aedes as unknown as { mq: { on: (t: string, n: unknown, d?: () => void) => unknown } }).mq;
  const on = mq.on.bind(mq);
  mq.on = (topic, notify, done) => {
    const r = on(topic, notify, done);
    if (topic === deviceTopics('d').commands) aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(encodeCommand({ timestamp: 1 }, { commandId: 'c', name: 'x' })), qos: 1, retain: false, dup: false }, () => {});
    return r;
  };
  const server = createServer(aedes.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const c = new DeviceClient({ url: `mqtt://127.0.0.1:${port}`, deviceId: 'd', token: 't' });
  const got: string[] = [];
  c.on('command', (f) => got.push(f.commandId));
  await c.connect();
  await new Promise((r) => setTimeout(r, 50));
  expect(got).toEqual(['c']);
  await c.close();
  server.close(); aedes.close();
});
