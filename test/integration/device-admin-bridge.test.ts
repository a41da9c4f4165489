/**
 * A disabled device in bridge mode (issue 17): the external broker holds its connection, so the
 * gateway cannot close it; its messages are refused (counted as DEVICE_DISABLED on the bridge),
 * not stored or acked, and it shows offline and disabled until an operator enables it again.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceSummary } from '../../devices/api/json.js';
import { decodeFrame, encodeTelemetry, FrameType, type AckFrame } from '../../devices/codec/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const hasMosquitto = mosquittoPath() !== undefined;
let broker: Mosquitto | undefined;
let gw: TestGateway | undefined;
let client: mqtt.MqttClient | undefined;
afterEach(async () => {
  client?.end(true);
  await gw?.close();
  await broker?.stop();
  broker = undefined;
});

describe.skipIf(!hasMosquitto)('a disabled device in bridge mode (Mosquitto)', () => {
  it('has its messages refused and not acked while disabled, and is taken again once enabled', async () => {
    broker = await startMosquitto();
    gw = await startGateway({ mqttUrl: broker.url, mqttShareGroup: 'devmgmt-bridge', ackInterval: 10 });
    const id = 'bridged-admin-1';
    client = await mqtt.connectAsync(broker.url, { clientId: id, protocolVersion: 5, reconnectPeriod: 0 });
    const acked = new Set<number>();
    client.on('message', (_t, payload) => {
      const f = decodeFrame(new Uint8Array(payload));
      if (!(f instanceof Error) && f.type === FrameType.Ack) for (let s = (f as AckFrame).firstSeq ?? (f as AckFrame).seq; s <= (f as AckFrame).seq; s++) acked.add(s);
    });
    await client.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
    const send = (seq: number) => client!.publish(`devices/${id}/telemetry`, Buffer.from(encodeTelemetry({ epoch: 1, seq, timestamp: 1_700_000_000_000 + seq }, [{ channel: 0, value: seq }])), { qos: 1 });

    send(0);
    await waitFor(() => acked.has(0), 'seq 0 acked');
    expect((await gw.api(`/api/devices/${id}/disable`, { method: 'POST' })).status).toBe(200);
    const summary = (await gw.api<DeviceSummary>(`/api/devices/${id}`)).body;
    expect(summary).toMatchObject({ disabled: true, online: false, offlineDetail: 'DEVICE_DISABLED' });

    send(1);
    // One refusal for the eviction, one for the message that came while disabled.
    expect(gw.gateway.sessions.refusals.get('DEVICE_DISABLED', 'bridge')).toBe(1);
    await waitFor(() => gw!.gateway.sessions.refusals.get('DEVICE_DISABLED', 'bridge') >= 2, 'the bridged message refused');
    const frames = gw.gateway.ingest.stats.frames;
    expect(acked.has(1)).toBe(false);

    expect((await gw.api(`/api/devices/${id}/enable`, { method: 'POST' })).status).toBe(200);
    send(2);
    await waitFor(() => acked.has(2), 'seq 2 acked once enabled');
    expect(gw.gateway.ingest.stats.frames).toBe(frames + 1);
    expect((await gw.api<DeviceSummary>(`/api/devices/${id}`)).body.online).toBe(true);
  });
});
