/**
 * deploy/mosquitto (compose.yaml's cluster profile) in a real Mosquitto: the shipped config and ACL,
 * with only the listener and file paths moved to a temp folder. A gateway in bridge mode logs in as
 * `gateway` and works (shared subscriptions, cluster topics); a device is acked; a second client
 * with the device's credentials sees the acks (the README's bridge-mode remark); a device cannot
 * publish as another one.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeTelemetry, FrameType, type AckFrame } from '../../devices/codec/index.js';
import { fleetToken } from '../../devices/token.js';
import { canConnect, ServiceProcess, waitUntil } from '../../simulator/services/index.js';
import { gatewayArgs, ROOT, spawnGateway, tempDir, type ChildGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { requireProgram } from '../helpers/services.js';
import { once, waitFor } from '../helpers/wait.js';

const mosquitto = requireProgram('mosquitto', 'mosquitto');
const passwd = requireProgram('mosquitto_passwd', 'mosquitto');
const KEY = 'my-fleet-secret';

let broker: ServiceProcess | undefined;
let brokerDir: string | undefined;
let gw: ChildGateway | undefined;
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  await gw?.stop();
  gw = undefined;
  await broker?.stop(5000);
  broker = undefined;
  if (brokerDir) rmSync(brokerDir, { recursive: true, force: true });
  brokerDir = undefined;
});

async function startDeployMosquitto(): Promise<number> {
  const dir = (brokerDir = tempDir('gw-deploy-mosquitto-'));
  const port = await freePort();
  const conf = readFileSync(join(ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8');
  const moved = conf
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace('/mosquitto/config/passwd', join(dir, 'passwd'))
    .replace('/mosquitto/config/acl', join(ROOT, 'deploy/mosquitto/acl'))
    .replace('/mosquitto/data/', join(dir, 'data/'));
  expect(moved).not.toMatch(/ \/mosquitto\//);
  writeFileSync(join(dir, 'mosquitto.conf'), moved);
  execFileSync(passwd!, ['-c', '-b', join(dir, 'passwd'), 'gateway', 'gateway-secret']);
  for (const id of ['greenhouse-1', 'greenhouse-2', 'climate-1', 'vibration-1']) execFileSync(passwd!, ['-b', join(dir, 'passwd'), id, fleetToken(KEY, id)]);
  // Started as root, Mosquitto drops to its own user: that user must read the password file and
  // write the persistence folder (in the container both belong to it).
  mkdirSync(join(dir, 'data'));
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'data'), 0o777);
  chmodSync(join(dir, 'passwd'), 0o644);
  broker = new ServiceProcess('mosquitto', mosquitto!, ['-c', join(dir, 'mosquitto.conf')]);
  await waitUntil(broker, () => canConnect(port), `mosquitto on port ${port}`, 10_000);
  return port;
}

async function connect(port: number, clientId: string, username: string): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, username, password: fleetToken(KEY, username), protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
  clients.push(c);
  await once(c, 'connect', 10_000);
  return c;
}

function acks(c: mqtt.MqttClient, topic: string): AckFrame[] {
  const seen: AckFrame[] = [];
  c.on('message', (t, payload) => {
    const f = decodeFrame(new Uint8Array(payload));
    if (t === topic && !(f instanceof Error) && f.type === FrameType.Ack) seen.push(f as AckFrame);
  });
  return seen;
}

describe.skipIf(!mosquitto || !passwd)('deploy/mosquitto with a bridge-mode gateway', () => {
  it('lets the gateway work, acks a device, shows the acks to a second client of the device, and keeps devices to their own topics', async () => {
    const port = await startDeployMosquitto();
    gw = await spawnGateway(gatewayArgs(tempDir(), '--fleet-key', KEY, '--mqtt-url', `mqtt://127.0.0.1:${port}`, '--mqtt-username', 'gateway', '--mqtt-password', 'gateway-secret', '--ack-interval', '10'));

    const topic = 'devices/greenhouse-1/commands';
    const watcher = await connect(port, 'greenhouse-1-watch', 'greenhouse-1');
    const watched = acks(watcher, topic);
    await watcher.subscribeAsync(topic, { qos: 1 });
    const device = await connect(port, 'greenhouse-1', 'greenhouse-1');
    const own = acks(device, topic);
    await device.subscribeAsync(topic, { qos: 1 });

    const frame = (seq: number, value: number) => Buffer.from(encodeTelemetry({ epoch: 1, seq, timestamp: Date.now() }, [{ channel: 1, value, type: 'f32' }]));
    await device.publishAsync('devices/greenhouse-1/telemetry', frame(0, 21.5), { qos: 1 });
    // Denied by the ACL: Mosquitto drops it (MQTT 3.1.1 cannot refuse a publish).
    await device.publishAsync('devices/greenhouse-2/telemetry', frame(0, 99), { qos: 1 });
    await device.publishAsync('devices/greenhouse-1/telemetry', frame(1, 22.5), { qos: 1 });

    const covers = (list: AckFrame[], seq: number) => list.some((a) => a.epoch === 1 && (a.firstSeq ?? 0) <= seq && seq <= a.seq);
    await waitFor(() => covers(own, 0) && covers(own, 1), 'the device to be acked for seqs 0 and 1', 20_000);
    await waitFor(() => covers(watched, 0) && covers(watched, 1), 'the second client to see the same acks', 20_000);

    const { body } = await gw.api('/api/devices/greenhouse-1');
    expect(body.last['1'].value).toBe(22.5);
    // Seq 1 came after the foreign publish on the same connection and is acked: that one was dropped.
    expect((await gw.api('/api/devices/greenhouse-2')).status).toBe(404);
  });

  it('lets JSON telemetry through to the gateway and the gateway publish alarms for integrations', async () => {
    const port = await startDeployMosquitto();
    gw = await spawnGateway(gatewayArgs(tempDir(), '--fleet-key', KEY, '--mqtt-url', `mqtt://127.0.0.1:${port}`, '--mqtt-username', 'gateway', '--mqtt-password', 'gateway-secret', '--ack-interval', '10'));

    // JSON telemetry (README "JSON telemetry"): a denied publish would still get its PUBACK from
    // Mosquitto and vanish, so the reading must show up at the gateway, and its ack come back.
    const json = await connect(port, 'climate-1', 'climate-1');
    const jsonAcks = acks(json, 'devices/climate-1/commands');
    await json.subscribeAsync('devices/climate-1/commands', { qos: 1 });
    await json.publishAsync('devices/climate-1/telemetry/json', JSON.stringify({ seq: 0, epoch: 4, values: { temperature: 21.5 } }), { qos: 1 });
    await waitFor(async () => (await gw!.api('/api/devices/climate-1')).body?.last?.['1']?.value === 21.5, 'the JSON reading to reach the gateway', 20_000);
    await waitFor(() => jsonAcks.some((a) => a.epoch === 4 && (a.firstSeq ?? 0) <= 0 && 0 <= a.seq), 'the ack of the JSON message', 20_000);

    // A reading that raises an alarm (vibration: channel 3 true): its MQTT publish must be taken.
    const vib = await connect(port, 'vibration-1', 'vibration-1');
    await vib.publishAsync('devices/vibration-1/telemetry', Buffer.from(encodeTelemetry({ epoch: 1, seq: 0, timestamp: Date.now() }, [{ channel: 3, value: true }])), { qos: 1 });
    const outcome = async (o: string) => Number(new RegExp(`^gateway_alarm_mqtt_publishes_total\\{outcome="${o}"\\} (\\d+)`, 'm').exec(await (await fetch(`${gw!.http}/metrics`)).text())?.[1] ?? 0);
    await waitFor(async () => (await outcome('published')) + (await outcome('failed')) > 0, 'the alarm to be published on the broker', 20_000);
    expect(await outcome('failed')).toBe(0);
  });
});
