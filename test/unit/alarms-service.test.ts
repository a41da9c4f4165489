/** The alarm service put together (no server): rules deleted or dropped by a types reload clear their open alarms. */
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { afterEach, expect, it } from 'vitest';
import type { AlarmMessage } from '../../devices/api/json.js';
import { TelemetryBatch } from '../../devices/codec/index.js';
import { Alarms } from '../../gateway/alarms/alarms.js';
import { typeRulesOf } from '../../gateway/alarms/rules.js';
import { DeviceTable } from '../../gateway/devices.js';
import { tempDir } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('deleting a rule clears its open alarms (by rule, with a note) and its webhook hears the clear', async () => {
  const bodies: AlarmMessage[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(text) as AlarmMessage);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const dir = tempDir('alarms-service-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const devices = new DeviceTable([]);
  const alarms = new Alarms(dir, devices, { typeRules: [] });
  alarms.start();
  cleanups.push(() => alarms.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const rule = alarms.rules.add({ name: 'hot', severity: 'minor', deviceId: 'd1', condition: { kind: 'above', channel: 1, threshold: 1 }, webhook: url });
  const batch = new TelemetryBatch(1);
  batch.count = 1;
  batch.channels[0] = 1;
  batch.values[0] = 5;
  alarms.evaluator.frame(devices.getOrCreate('d1', undefined), 1000, batch, 1000);
  const [open] = alarms.openAlarms();
  expect(open).toMatchObject({ ruleId: rule.id, state: 'active', message: 'channel 1 5 above 1' });
  alarms.rules.remove(rule.id);
  expect(alarms.get(open!.id)!.transitions.at(-1)).toMatchObject({ state: 'cleared', by: 'rule', note: 'the rule was deleted' });
  await waitFor(() => bodies.length === 2, 'both changes at the rule\'s webhook');
  expect(bodies.map((b) => b.alarms[0]!.state).sort()).toEqual(['active', 'cleared']);
});

it('types rules replaced by a reload: new ones run at once, dropped ones clear their alarms; they are read-only through the API', async () => {
  const dir = tempDir('alarms-service-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const devices = new DeviceTable([]);
  const alarms = new Alarms(dir, devices, { typeRules: [] });
  alarms.start();
  cleanups.push(() => alarms.close());
  const rules = typeRulesOf([{ type: 'climate', alarms: [{ name: 'hot', severity: 'major', condition: { kind: 'above', channel: 1, threshold: 30 } }] }], 'types.json');
  if (rules instanceof Error) throw rules;
  alarms.rules.setTypeRules(rules);
  const batch = new TelemetryBatch(1);
  batch.count = 1;
  batch.channels[0] = 1;
  batch.values[0] = 40;
  alarms.evaluator.frame(devices.getOrCreate('climate-1', undefined), 1000, batch, 1000);
  const [open] = alarms.openAlarms();
  expect(open).toMatchObject({ ruleId: 'type:climate:hot', state: 'active' });
  expect(() => alarms.rules.remove('type:climate:hot')).toThrow(expect.objectContaining({ code: 'ALARM_RULE_READ_ONLY' }));
  alarms.rules.setTypeRules([]);
  expect(alarms.get(open!.id)!.state).toBe('cleared');
});
