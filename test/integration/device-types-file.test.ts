/**
 * Device types from a file (README "Device types"): a gateway started with --types serves the
 * file's types, takes an edit without a restart (API, live `types` stream, a device's type), keeps
 * the previous types when the file turns bad (one log line with TYPES_INVALID, metrics), and takes
 * the fixed file again. A bad file at start is a config error. Command arguments are checked
 * against the type's schemas.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { parseDeviceTypes } from '../../devices/types/parse.js';
import { Simulation, simulatorOptions } from '../../simulator/index.js';
import { deviceToken, FLEET_KEY, gatewayArgs, OPERATOR_TOKEN, ROOT, spawnGateway, startGateway, tempDir, type ChildGateway, type TestGateway } from '../helpers/gateway.js';
import { LiveClient } from '../helpers/live-client.js';
import { RawDevice } from '../helpers/raw-device.js';
import { waitFor } from '../helpers/wait.js';

const tank = (channels: unknown[]) => ({
  type: 'tank',
  name: 'Water tank',
  channels,
  commands: [{ name: 'set-level', hint: 'target level in %', example: { level: 50 }, schema: { type: 'object', properties: { level: { type: 'integer', minimum: 0, maximum: 100 } }, required: ['level'] } }],
});
const LEVEL = { id: 1, name: 'level', unit: '%', type: 'f32', min: 0, max: 100 };
const PRESSURE = { id: 2, name: 'pressure', unit: 'bar', type: 'f32', min: 0, max: 6 };

let child: ChildGateway | undefined;
let gw: TestGateway | undefined;
let sim: Simulation | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await sim?.stop();
  sim = undefined;
  await child?.stop();
  await gw?.close();
  child = gw = undefined;
});

function tempFile(doc: unknown): { dir: string; path: string; write(doc: unknown): void } {
  const dir = mkdtempSync(join(tmpdir(), 'types-'));
  const path = join(dir, 'types.json');
  const write = (d: unknown) => writeFileSync(path, typeof d === 'string' ? d : JSON.stringify(d, null, 2));
  write(doc);
  closers.push(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, path, write };
}

async function metric(base: string, line: string): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).text();
  const m = new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('the types file, hot-reloaded', () => {
  it('an edit shows at once; a broken file keeps the old types and says why; the fixed file is taken again', async () => {
    const file = tempFile({ types: [tank([LEVEL])] });
    child = await spawnGateway(gatewayArgs(tempDir(), '--types', file.path));
    const g = child;
    expect((await g.api('/api/device-types')).body.types).toEqual([{ ...tank([LEVEL]) }]);
    // A device whose id names no type yet: it gets one when the file declares it.
    const pump = await RawDevice.connect(g.ws, 'pump-1', deviceToken('pump-1'));
    closers.push(() => pump.ws.terminate());
    expect((await g.api('/api/devices/pump-1')).body.type).toBeNull();
    const live = await LiveClient.connect(g.ws, OPERATOR_TOKEN);
    closers.push(() => live.close());
    live.send({ op: 'subscribe', streams: ['types', 'fleet'] });
    await live.waitFor((m) => m.type === 'types', 'the types snapshot');

    // An edit: a new channel and a new type, without a restart.
    file.write({ types: [tank([LEVEL, PRESSURE]), { type: 'pump', name: 'Pump', channels: [{ id: 1, name: 'flow', unit: 'l/min', type: 'f32' }] }] });
    await waitFor(async () => (await g.api('/api/device-types')).body.types[0].channels.length === 2, 'the API to show the new channel', 15_000);
    expect((await g.api('/api/device-types')).body.types[0].channels[1]).toEqual(PRESSURE);
    const pushed = await live.waitFor((m) => m.type === 'types' && m.types[0]?.channels.length === 2, 'a types message with the new channel');
    expect(pushed.types.map((t: { type: string }) => t.type)).toEqual(['tank', 'pump']);
    await live.waitFor((m) => m.type === 'fleet' && m.devices.some((d: { id: string; type: string }) => d.id === 'pump-1' && d.type === 'pump'), 'pump-1 to have its type in the fleet stream');
    expect((await g.api('/api/devices/pump-1')).body.type).toBe('pump');
    expect(await metric(g.http, 'gateway_types_reloads_total{result="ok"}')).toBe(1);

    // Broken: a unit that is not a string. The previous types stay, one line says why.
    file.write({ types: [tank([LEVEL, { ...PRESSURE, id: 3, unit: 7 }])] });
    await waitFor(async () => (await metric(g.http, 'gateway_types_reloads_total{result="failed"}')) === 1, 'the failed reload to be counted', 15_000);
    expect(await metric(g.http, 'gateway_types_file_valid')).toBe(0);
    const line = g.output().split('\n').find((l) => l.includes('TYPES_INVALID'));
    expect(line, g.output()).toBeDefined();
    expect(line).toContain(file.path);
    expect(line).toContain('types[0].channels[1].unit');
    expect(line).toContain('previous device types stay in force');
    const kept = (await g.api('/api/device-types')).body.types;
    expect(kept.map((t: { type: string }) => t.type)).toEqual(['tank', 'pump']);
    expect(kept[0].channels[1]).toEqual(PRESSURE);

    // Not even JSON: refused the same way.
    file.write('{"types": [');
    await waitFor(async () => (await metric(g.http, 'gateway_types_reloads_total{result="failed"}')) === 2, 'the second failed reload', 15_000);
    expect(g.output()).toMatch(/TYPES_INVALID.*is not valid JSON/);

    // Fixed: taken again.
    file.write({ types: [tank([LEVEL, { ...PRESSURE, unit: 'kPa' }])] });
    await waitFor(async () => (await g.api('/api/device-types')).body.types[0].channels[1]?.unit === 'kPa', 'the fixed file to be taken', 15_000);
    expect(await metric(g.http, 'gateway_types_reloads_total{result="ok"}')).toBe(2);
    expect(await metric(g.http, 'gateway_types_file_valid')).toBe(1);
    // pump is gone from the file: its device has no type again.
    await waitFor(async () => (await g.api('/api/devices/pump-1')).body.type === null, 'pump-1 to lose its type');
  });

  it("a type's alarm rules come from the file: a reload's new rule raises alarms; a bad rule is refused with the whole file", async () => {
    const file = tempFile({ types: [tank([LEVEL])] });
    child = await spawnGateway(gatewayArgs(tempDir(), '--types', file.path));
    const g = child;
    const ruleIds = async () => (await g.api('/api/alarm-rules')).body.rules.map((r: { id: string }) => r.id).sort();
    expect(await ruleIds()).toEqual([]);

    const low = { name: 'low', severity: 'minor', condition: { kind: 'below', channel: 1, threshold: 10 } };
    file.write({ types: [{ ...tank([LEVEL]), alarms: [low] }] });
    await waitFor(async () => (await ruleIds()).includes('type:tank:low'), 'the rule of the reloaded file', 15_000);
    const dev = await RawDevice.connect(g.ws, 'tank-1', deviceToken('tank-1'));
    closers.push(() => dev.ws.terminate());
    dev.send(encodeTelemetry({ epoch: 1, seq: 1, timestamp: Date.now() }, [{ channel: 1, value: 4, type: 'f32' }]));
    await waitFor(async () => (await g.api('/api/alarms?device=tank-1')).body.alarms.length === 1, 'the alarm of the new rule', 15_000);
    expect((await g.api('/api/alarms?device=tank-1')).body.alarms[0]).toMatchObject({ ruleId: 'type:tank:low', severity: 'minor', state: 'active' });

    // A rule the alarm validator refuses (no such kind): the whole file is refused, the rules in force stay.
    file.write({ types: [{ ...tank([LEVEL]), alarms: [{ ...low, condition: { kind: 'sideways', channel: 1 } }] }] });
    await waitFor(async () => (await metric(g.http, 'gateway_types_reloads_total{result="failed"}')) === 1, 'the bad rule to be refused', 15_000);
    const line = g.output().split('\n').find((l) => l.includes('TYPES_INVALID') && l.includes('alarms[0]'));
    expect(line, g.output()).toBeDefined();
    expect(await ruleIds()).toEqual(['type:tank:low']);
  });

  it('a bad file at start is a config error: exit 2, one line naming the file and the problem', async () => {
    const file = tempFile({ types: [tank([{ ...LEVEL, type: 'f16' }])] });
    const proc = spawn(process.execPath, [join(ROOT, 'dist/gateway/cli.js'), ...gatewayArgs(tempDir(), '--types', file.path, '--mqtt-port', '0')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      proc.once('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code).toBe(2);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toContain('TYPES_INVALID');
    expect(err).toContain(file.path);
    expect(err).toContain('types[0].channels[0].type');
  });
});

describe('command arguments against the type (demo types)', () => {
  async function post(g: TestGateway, id: string, body: unknown) {
    return g.api(`/api/devices/${id}/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  it('refuses arguments that do not fit, naming the argument; refuses commands the type does not declare; takes the rest', async () => {
    gw = await startGateway();
    const d = await RawDevice.connect(gw.ws, 'vibration-0001', deviceToken('vibration-0001'));
    closers.push(() => d.ws.terminate());
    const free = await RawDevice.connect(gw.ws, 'gadget', deviceToken('gadget'));
    closers.push(() => free.ws.terminate());
    const refusals: [unknown, string, RegExp][] = [
      [{ name: 'set-threshold', args: { value: 51 } }, 'BAD_COMMAND_ARGS', /args\.value must be from 0 to 50, not 51/],
      [{ name: 'set-threshold', args: { value: '12' } }, 'BAD_COMMAND_ARGS', /args\.value must be a number/],
      [{ name: 'set-threshold', args: {} }, 'BAD_COMMAND_ARGS', /args\.value is required/],
      [{ name: 'set-threshold' }, 'BAD_COMMAND_ARGS', /args must be a JSON object/],
      [{ name: 'set-threshold', args: { value: 1, unit: 'g' } }, 'BAD_COMMAND_ARGS', /args\.unit is not an argument/],
      [{ name: 'set-interval', args: { ms: 100, hz: 10 } }, 'BAD_COMMAND_ARGS', /at most 1 of ms, hz/],
      [{ name: 'reboot', args: { now: true } }, 'BAD_COMMAND_ARGS', /takes no arguments/],
      [{ name: 'self-destruct' }, 'UNKNOWN_COMMAND', /"self-destruct" is not a command of type "vibration".*set-interval, reboot, set-threshold/],
    ];
    for (const [body, code, message] of refusals) {
      const r = await post(gw, 'vibration-0001', body);
      expect(r, JSON.stringify(body)).toMatchObject({ status: 400, body: { error: { code } } });
      expect(r.body.error.message).toMatch(message);
    }
    // Nothing refused was queued.
    expect((await gw.api('/api/devices/vibration-0001/commands')).body.commands).toEqual([]);
    expect((await post(gw, 'vibration-0001', { name: 'set-threshold', args: { value: 12 } })).status).toBe(201);
    expect((await post(gw, 'vibration-0001', { name: 'reboot' })).status).toBe(201);
    // A device of no known type gets any command, as before.
    expect((await post(gw, 'gadget', { name: 'self-destruct', args: [1] })).status).toBe(201);
  });
});

describe('the simulator on the same types file', () => {
  it("sends every channel of the file's types, in range, to a gateway that knows them", async () => {
    const doc = {
      types: [
        { type: 'climate', name: 'Climate+', channels: [{ id: 1, name: 'temperature', unit: '°C', type: 'f32', min: -20, max: 45 }, { id: 7, name: 'co2', unit: 'ppm', type: 'i32', min: 400, max: 2000 }] },
        tank([LEVEL, PRESSURE]),
      ],
    };
    const file = tempFile(doc);
    gw = await startGateway({ types: file.path });
    const parsed = parseDeviceTypes(doc);
    if (!parsed.ok) throw new Error('the test document is invalid');
    sim = Simulation.start(simulatorOptions({ url: gw.ws, fleetKey: FLEET_KEY, devices: 2, types: ['climate', 'tank'], deviceTypes: parsed.types, rate: 5, durationS: 0, workers: 0, faults: false }));
    await sim.ready;
    const g = gw;
    const last = async (id: string) => (await g.api(`/api/devices/${id}`)).body?.last ?? {};
    const tankLast = await waitFor(async () => {
      const l = await last('tank-0001');
      return l['1'] && l['2'] ? l : undefined;
    }, 'tank-0001 to send both channels');
    expect(tankLast['1'].value).toBeGreaterThanOrEqual(0);
    expect(tankLast['1'].value).toBeLessThanOrEqual(100);
    expect(tankLast['2'].value).toBeGreaterThanOrEqual(0);
    expect(tankLast['2'].value).toBeLessThanOrEqual(6);
    const climateLast = await waitFor(async () => {
      const l = await last('climate-0001');
      return l['1'] && l['7'] ? l : undefined;
    }, 'climate-0001 to send its channels');
    expect(Object.keys(climateLast).sort()).toEqual(['1', '7']);
    expect(Number.isInteger(climateLast['7'].value)).toBe(true);
    expect(climateLast['7'].value).toBeGreaterThanOrEqual(400);
    expect(climateLast['7'].value).toBeLessThanOrEqual(2000);
    expect((await g.api('/api/devices/tank-0001')).body.type).toBe('tank');
  });
});
