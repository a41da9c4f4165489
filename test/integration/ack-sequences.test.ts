/**
 * The golden ack sequences (devices/vectors/ack-sequences.json) against a live gateway, driven by the
 * conformance runner's code over a bare WebSocket: what another gateway implementation runs to test
 * its acks across a reboot and a GapBefore resend (issue 15 points 1, 2).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ackSequences, runAckSequence } from '../../devices/conformance/ack-sequences.js';
import { deviceSource, type Context } from '../../devices/conformance/context.js';
import { FLEET_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
let ctx: Context;
beforeAll(async () => {
  gw = await startGateway();
  ctx = { http: gw.http, ws: { base: gw.ws }, mqtt: undefined, ca: undefined, operatorToken: undefined, maxFrameBytes: 65536, timeoutMs: 5000, ...deviceSource({ deviceId: 'ack-seq', fleetKey: FLEET_KEY }) };
});
afterAll(async () => {
  await gw.close();
});

describe('golden ack sequences at a live gateway', () => {
  it.each(ackSequences().map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    await runAckSequence(ctx, s);
  });
});
