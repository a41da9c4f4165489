/**
 * The golden ack sequences (devices/vectors/ack-sequences.json) against a live gateway, driven by the
 * conformance runner's code over a bare WebSocket and a bare MQTT connection: what another gateway
 * implementation runs to test its acks across a reboot and a GapBefore resend (issue 15 points 1, 2).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ackSequences, openMqtt, openWs, runAckSequence } from '../../devices/conformance/ack-sequences.js';
import { deviceSource, type Context } from '../../devices/conformance/context.js';
import { FLEET_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

let gw: TestGateway;
let ctx: Context;
beforeAll(async () => {
  gw = await startGateway({ mqttPort: await freePort() });
  ctx = {
    http: gw.http,
    ws: { base: gw.ws },
    mqtt: new URL(`mqtt://127.0.0.1:${gw.gateway.mqttPort}`),
    ca: undefined,
    operatorToken: undefined,
    maxFrameBytes: 65536,
    timeoutMs: 5000,
    ...deviceSource({ deviceId: 'ack-seq', fleetKey: FLEET_KEY }),
  };
});
afterAll(async () => {
  await gw.close();
});

describe.each([
  ['WebSocket', openWs],
  ['MQTT', openMqtt],
] as const)('golden ack sequences at a live gateway over %s', (_transport, open) => {
  it.each(ackSequences().map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    await runAckSequence(ctx, s, open);
  });
});
