/** Alarm webhooks against a real HTTP server on localhost: body, retry after 500, no retry on 4xx, bounded queue. */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alarm } from '../../devices/api/json.js';
import { Webhooks } from '../../gateway/alarms/webhooks.js';
import { waitFor } from '../helpers/wait.js';

const servers: Server[] = [];
const hooks: Webhooks[] = [];
afterEach(async () => {
  for (const h of hooks.splice(0)) h.close();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A server answering each request with the next status of `statuses` (the last one repeats). */
async function receiver(statuses: number[]): Promise<{ url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(text));
      res.statusCode = statuses[Math.min(n++, statuses.length - 1)]!;
      res.end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, bodies };
}

const alarm: Alarm = { id: 'a1', ruleId: 'r', ruleName: 'r', deviceId: 'd1', severity: 'major', state: 'active', channel: 1, value: 3, raisedAt: 1, message: 'm', transitions: [{ state: 'active', at: 1, by: 'rule' }] };

function webhooks(o: ConstructorParameters<typeof Webhooks>[0]): Webhooks {
  const w = new Webhooks({ initialMs: 10, maxMs: 20, ...o });
  hooks.push(w);
  return w;
}

describe('alarm webhooks', () => {
  it('POSTs the AlarmMessage and retries after a 500 until it is taken', async () => {
    const r = await receiver([500, 500, 200]);
    const w = webhooks({ url: r.url });
    w.notify(alarm, undefined);
    await waitFor(() => w.counts.delivered === 1, 'the delivery');
    expect(r.bodies).toHaveLength(3);
    expect(r.bodies[2]).toEqual({ type: 'alarm', full: false, alarms: [alarm] });
    expect(w.counts).toEqual({ delivered: 1, retried: 2, dead_letter: 0 });
  });

  it('gives up after the last try (dead letter), and at once on a 4xx', async () => {
    const down = await receiver([503]);
    const refusing = await receiver([400]);
    const w = webhooks({ url: down.url, attempts: 3 });
    w.notify(alarm, refusing.url);
    await waitFor(() => w.counts.dead_letter === 2, 'both deliveries to be given up');
    expect(down.bodies).toHaveLength(3);
    expect(refusing.bodies).toHaveLength(1);
    expect(w.pending).toBe(0);
  });

  it('sends to the rule\'s URL; a full queue dead-letters what does not fit', async () => {
    const a = await receiver([200]);
    const w = webhooks({ maxQueue: 1, concurrency: 1 });
    w.notify(alarm, a.url);
    w.notify({ ...alarm, id: 'a2' }, a.url);
    await waitFor(() => w.counts.delivered === 1 && w.pending === 0, 'the first delivery');
    expect(w.counts.dead_letter).toBe(1);
    expect(a.bodies).toHaveLength(1);
  });
});
