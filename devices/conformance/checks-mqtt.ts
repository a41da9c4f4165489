/** The MQTT rules of devices/PROTOCOL.md, checked with a bare MQTT 3.1.1 client (no library). */
import { decodeFrame, ERROR_CODES, FrameType, type AckFrame, type ErrorFrame, type Frame } from '../codec/index.js';
import type { Check } from './check.js';
import { covered, invalidVectors, newEpoch, telemetry, type Context, type Credentials } from './context.js';
import { CONNACK, connectPacket, PINGREQ, PINGRESP, PUBACK, PUBLISH, publishOf, publishPacket, RawMqtt, SUBACK, subscribePacket, type ConnectFields } from './raw-mqtt.js';
import { api } from './checks-ws.js';
import { expectThat, waitUntil } from './wait.js';

const mqttSpec = 'Transports › MQTT';

export const noMqtt = (ctx: Context): string | undefined => (ctx.mqtt ? undefined : 'MQTT checks off (--mqtt-url none)');

async function dial(ctx: Context): Promise<RawMqtt> {
  return RawMqtt.open(ctx.mqtt!, ctx.ca, ctx.timeoutMs);
}

/** CONNECTs and returns the connection and its CONNACK return code. */
async function connectWith(ctx: Context, fields: ConnectFields): Promise<{ m: RawMqtt; code: number }> {
  const m = await dial(ctx);
  m.write(connectPacket(fields));
  const ack = await waitUntil(() => m.of(CONNACK)[0] ?? (m.closed ? { body: Buffer.alloc(0) } : undefined), 'CONNACK', ctx.timeoutMs);
  return { m, code: ack.body.length >= 2 ? ack.body[1]! : -1 };
}

/** A device connected (CONNACK 0) and subscribed to its commands topic (SUBACK granting QoS 1). */
export async function device(ctx: Context, c: Credentials): Promise<RawMqtt> {
  const { m, code } = await connectWith(ctx, { clientId: c.id, username: c.id, password: c.token });
  expectThat(code === 0, `CONNACK ${code} for valid credentials, want 0`);
  m.write(subscribePacket(1, `devices/${c.id}/commands`, 1));
  const sub = await waitUntil(() => m.of(SUBACK)[0], 'SUBACK', ctx.timeoutMs);
  expectThat(sub.body[2] === 1, `SUBACK 0x${sub.body[2]?.toString(16)} for the commands topic at QoS 1, want 0x01`);
  return m;
}

export function framesOf(m: RawMqtt): Frame[] {
  const out: Frame[] = [];
  for (const p of m.of(PUBLISH)) {
    const f = decodeFrame(publishOf(p).payload);
    if (!(f instanceof Error)) out.push(f);
  }
  return out;
}

const acksOf = (m: RawMqtt, epoch: number): AckFrame[] => framesOf(m).filter((f): f is AckFrame => f.type === FrameType.Ack && f.epoch === epoch);

/** Waits for the connection to close (or fails); the bytes already received stay readable. */
async function closes(ctx: Context, m: RawMqtt, what: string): Promise<void> {
  await waitUntil(() => m.closed, `close after ${what}`, ctx.timeoutMs);
}

/** After `bytes` on an accepted connection, the connection must close (a must-close rule). */
function mustClose(name: string, what: string, bytes: (c: Credentials) => Buffer): Check {
  return {
    name: `mqtt.must-close.${name}`,
    spec: mqttSpec + ' (malformed MQTT)',
    skip: noMqtt,
    run: async (ctx) => {
      const c = ctx.device();
      const m = await device(ctx, c);
      try {
        m.write(bytes(c));
        await closes(ctx, m, what);
      } finally {
        m.close();
      }
    },
  };
}

export function mqttChecks(): Check[] {
  const sample = invalidVectors().filter((v) => ['count-2-but-1-reading', 'unknown-type-0x80', 'bool-byte-2'].includes(v.name));
  return [
    {
      name: 'mqtt.connack.accepted',
      spec: mqttSpec,
      skip: noMqtt,
      run: async (ctx) => (await device(ctx, ctx.device())).close(),
    },
    {
      name: 'mqtt.connack.bad-token',
      spec: mqttSpec,
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const { m, code } = await connectWith(ctx, { clientId: c.id, username: c.id, password: '0000' });
        m.close();
        expectThat(code === 4, `CONNACK ${code}, want 4`);
      },
    },
    {
      name: 'mqtt.connack.client-id-not-device-id',
      spec: mqttSpec,
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const { m, code } = await connectWith(ctx, { clientId: `${c.id}-x`, username: c.id, password: c.token });
        m.close();
        expectThat(code === 2, `CONNACK ${code}, want 2`);
      },
    },
    {
      name: 'mqtt.connack.mqtt5-refused',
      spec: mqttSpec,
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const { m, code } = await connectWith(ctx, { clientId: c.id, username: c.id, password: c.token, level: 5 });
        try {
          expectThat(code === 1, `CONNACK ${code}, want 1`);
          await closes(ctx, m, 'CONNACK 1');
        } finally {
          m.close();
        }
      },
    },
    {
      name: 'mqtt.telemetry.puback-and-ack',
      spec: mqttSpec + ', Delivery 2',
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const m = await device(ctx, c);
        try {
          const epoch = newEpoch();
          m.write(publishPacket(`devices/${c.id}/telemetry`, telemetry(epoch, 0), 1, 7));
          await waitUntil(() => m.of(PUBACK).some((p) => p.body.readUInt16BE(0) === 7), 'PUBACK', ctx.timeoutMs);
          await waitUntil(() => covered(acksOf(m, epoch), 0), 'ack frame on the commands topic', ctx.timeoutMs);
        } finally {
          m.close();
        }
      },
    },
    {
      name: 'mqtt.command.puback-delivers',
      spec: mqttSpec + ', Delivery (commands)',
      skip: (ctx) => noMqtt(ctx) ?? (ctx.operatorToken ? undefined : 'needs --operator-token'),
      run: async (ctx) => {
        // A clean-session device that only PUBACKs the command (no result frame): the embedded broker
        // must show it delivered. (Behind an external broker the gateway never sees that PUBACK.)
        const c = ctx.device();
        const m = await device(ctx, c);
        try {
          const posted = await api(ctx, `/api/devices/${encodeURIComponent(c.id)}/commands`, { name: 'conformance-puback', ttlMs: 60_000, timeoutMs: 60_000 });
          expectThat(posted.status === 201, `POST command: HTTP ${posted.status} ${JSON.stringify(posted.body)}${posted.status === 400 ? ' (a device whose type lists its commands gets no others: use a device id of no declared type)' : ''}`);
          const id = (posted.body as { id: string }).id;
          const p = await waitUntil(() => m.of(PUBLISH).find((x) => ((x.flags >> 1) & 3) === 1), 'the command as a QoS 1 PUBLISH', ctx.timeoutMs);
          m.write(Buffer.from([0x40, 0x02, ...p.body.subarray(2 + p.body.readUInt16BE(0), 4 + p.body.readUInt16BE(0))]));
          const deadline = Date.now() + ctx.timeoutMs;
          for (;;) {
            const st = ((await api(ctx, `/api/commands/${encodeURIComponent(id)}`)).body as { state?: string }).state;
            if (st === 'delivered') return;
            expectThat(Date.now() < deadline && st === 'sent', `command ${st} after its PUBACK, want delivered`);
            await new Promise((r) => setTimeout(r, 50));
          }
        } finally {
          m.close();
        }
      },
    },
    {
      name: 'mqtt.acl.publish-foreign-topic',
      spec: mqttSpec + ' (ACL)',
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const m = await device(ctx, c);
        try {
          const epoch = newEpoch();
          m.write(publishPacket(`devices/${c.id}-other/telemetry`, telemetry(epoch, 0), 1, 3));
          await closes(ctx, m, "a publish to another device's topic");
          expectThat(acksOf(m, epoch).length === 0 && m.of(PUBACK).length === 0, 'the foreign publish was acknowledged');
        } finally {
          m.close();
        }
      },
    },
    {
      name: 'mqtt.acl.subscribe-foreign-topic',
      spec: mqttSpec + ' (ACL)',
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const m = await device(ctx, c);
        try {
          m.write(subscribePacket(2, `devices/${c.id}-other/commands`, 1));
          const sub = await waitUntil(() => m.of(SUBACK).find((p) => p.body.readUInt16BE(0) === 2), 'SUBACK', ctx.timeoutMs);
          expectThat(sub.body[2] === 0x80, `SUBACK 0x${sub.body[2]?.toString(16)}, want 0x80`);
          m.write(PINGREQ);
          await waitUntil(() => m.of(PINGRESP).length > 0 || m.closed, 'PINGRESP', ctx.timeoutMs);
          expectThat(!m.closed, 'the connection closed after a refused subscription');
        } finally {
          m.close();
        }
      },
    },
    ...sample.map(
      (v): Check => ({
        name: `mqtt.bad-frame.${v.name}`,
        spec: mqttSpec + ' (bad frames)',
        skip: noMqtt,
        run: async (ctx) => {
          const c = ctx.device();
          const m = await device(ctx, c);
          try {
            m.write(publishPacket(`devices/${c.id}/telemetry`, Buffer.from(v.hex, 'hex'), 1, 5));
            await closes(ctx, m, 'a bad frame');
            const err = framesOf(m).find((f): f is ErrorFrame => f.type === FrameType.Error);
            expectThat(err?.code === ERROR_CODES[v.gatewayCode], `error frame ${err?.code ?? 'none'}, want ${ERROR_CODES[v.gatewayCode]} (${v.gatewayCode})`);
          } finally {
            m.close();
          }
        },
      }),
    ),
    mustClose('unsubscribe-without-filter', 'UNSUBSCRIBE a2 02 04 d2', () => Buffer.from('a20204d2', 'hex')),
    mustClose('subscribe-packet-id-0', 'SUBSCRIBE with packet id 0', (c) => subscribePacket(0, `devices/${c.id}/commands`, 1)),
    mustClose('pubrel-packet-id-0', 'PUBREL with packet id 0', () => Buffer.from('62020000', 'hex')),
    {
      name: 'mqtt.must-close.publish-packet-id-0-not-ingested',
      spec: mqttSpec + ' (malformed MQTT)',
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const m = await device(ctx, c);
        try {
          const epoch = newEpoch();
          m.write(publishPacket(`devices/${c.id}/telemetry`, telemetry(epoch, 0), 1, 0));
          await closes(ctx, m, 'a QoS 1 PUBLISH with packet id 0');
          expectThat(acksOf(m, epoch).length === 0 && m.of(PUBACK).length === 0, 'the frame was acknowledged');
        } finally {
          m.close();
        }
      },
    },
    {
      name: 'mqtt.must-close.connect-excess-bytes',
      spec: mqttSpec + ' (CONNACK codes)',
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const m = await dial(ctx);
        try {
          m.write(connectPacket({ clientId: c.id, username: c.id, password: c.token, extra: [1, 2] }));
          await closes(ctx, m, 'a CONNECT with bytes after its last field');
          expectThat(!m.of(CONNACK).some((p) => p.body[1] === 0), 'CONNACK 0 for a malformed CONNECT');
        } finally {
          m.close();
        }
      },
    },
    {
      name: 'mqtt.keepalive',
      spec: mqttSpec + ' (keepalive × 1.5)',
      skip: noMqtt,
      run: async (ctx) => {
        const c = ctx.device();
        const { m, code } = await connectWith(ctx, { clientId: c.id, username: c.id, password: c.token, keepalive: 1 });
        try {
          expectThat(code === 0, `CONNACK ${code}`);
          // Silent with keepalive 1 s: the gateway must close after 1.5 s (bounded by the check timeout).
          await waitUntil(() => m.closed, 'close of a silent connection with keepalive 1 s', Math.max(ctx.timeoutMs, 5000));
        } finally {
          m.close();
        }
      },
    },
  ];
}

