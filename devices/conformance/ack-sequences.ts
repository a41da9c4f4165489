/**
 * Runs the ack sequences of devices/vectors/ack-sequences.json against a gateway over a bare
 * WebSocket and a bare MQTT connection: each sequence is one check per transport
 * (ws.ack-sequence.<name>, mqtt.ack-sequence.<name>). The rules of a step are in PROTOCOL.md
 * (Golden vectors); an implementation of a gateway can run the same file its own way.
 */
import { readFileSync } from 'node:fs';
import { FrameType, type AckFrame, type Frame } from '../codec/index.js';
import type { Check } from './check.js';
import { covered, newEpoch, telemetry, type Context, type Credentials } from './context.js';
import { device as mqttDevice, framesOf, noMqtt } from './checks-mqtt.js';
import { publishPacket } from './raw-mqtt.js';
import { RawWs } from './raw-ws.js';
import { expectThat, waitUntil } from './wait.js';

export interface SeqRef {
  epoch: number;
  seq: number;
}

export type AckStep = { send: SeqRef & { flags?: number } } | { ack: SeqRef } | { noAck: SeqRef } | { reconnect: true };

export interface AckSequence {
  name: string;
  rule: string;
  description: string;
  steps: AckStep[];
}

/** devices/vectors/ack-sequences.json, from the source tree or next to the built dist/. */
export function ackSequences(): AckSequence[] {
  for (const rel of ['../vectors/ack-sequences.json', '../../../devices/vectors/ack-sequences.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { sequences: AckSequence[] }).sequences;
    } catch {
      // try the next layout
    }
  }
  throw new Error('devices/vectors/ack-sequences.json not found next to the conformance runner');
}

/** One connection of a bare device, whatever the transport. */
interface Link {
  send(bytes: Uint8Array): void;
  /** Every decodable frame the gateway sent on this connection, in order. */
  frames(): Frame[];
  /** Closes the connection and waits until it is closed. */
  close(): Promise<void>;
}

type Opener = (ctx: Context, c: Credentials) => Promise<Link>;

const openWs: Opener = async (ctx, c) => {
  const r = await RawWs.open(ctx.ws, `?id=${encodeURIComponent(c.id)}`, { authorization: `Bearer ${c.token}` }, ctx.timeoutMs);
  if (!(r instanceof RawWs)) throw new Error(`device ${c.id} refused at upgrade: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  return {
    send: (b) => r.send(b),
    frames: () => r.frames,
    close: async () => {
      r.close();
      await waitUntil(() => r.closedWith, 'the connection to close', ctx.timeoutMs);
    },
  };
};

const openMqtt: Opener = async (ctx, c) => {
  const m = await mqttDevice(ctx, c);
  const topic = `devices/${c.id}/telemetry`;
  let id = 0;
  return {
    // QoS 1, as PROTOCOL.md asks; the packet ids are the device's own (1 … 65535).
    send: (b) => m.write(publishPacket(topic, b, 1, (id = (id % 65535) + 1))),
    frames: () => framesOf(m),
    close: async () => {
      m.close();
      await waitUntil(() => m.closed, 'the connection to close', ctx.timeoutMs);
    },
  };
};

/** Drives one sequence (over WebSocket unless `open` says otherwise); throws CheckFailed naming the step that failed. */
export async function runAckSequence(ctx: Context, s: AckSequence, open: Opener = openWs): Promise<void> {
  const c = ctx.device();
  // Labels to fresh epochs: reruns against one device id never meet an earlier run's state.
  const epochs = new Map<number, number>();
  const epochOf = (label: number): number => {
    let e = epochs.get(label);
    if (e === undefined) epochs.set(label, (e = newEpoch()));
    return e;
  };
  let d = await open(ctx, c);
  // Frames from the gateway on every connection of this sequence, and where the current step's window starts.
  const earlier: Frame[] = [];
  let since = 0;
  const acks = (epoch: number, from = 0): AckFrame[] =>
    [...earlier, ...d.frames()].slice(from).filter((f): f is AckFrame => f.type === FrameType.Ack && f.epoch === epoch);
  try {
    for (let i = 0; i < s.steps.length; i++) {
      const step = s.steps[i]!;
      const at = `step ${i + 1}`;
      if ('send' in step) {
        if (i === 0 || !('send' in s.steps[i - 1]!)) since = earlier.length + d.frames().length;
        d.send(telemetry(epochOf(step.send.epoch), step.send.seq, step.send.flags ?? 0));
      } else if ('ack' in step) {
        const e = epochOf(step.ack.epoch);
        const seq = step.ack.seq;
        // Only acks that came after this step's frames were sent count.
        await waitUntil(() => covered(acks(e, since), seq), `${at}: an ack of epoch label ${step.ack.epoch} covering seq ${seq}`, ctx.timeoutMs);
      } else if ('noAck' in step) {
        expectThat(!covered(acks(epochOf(step.noAck.epoch)), step.noAck.seq), `${at}: seq ${step.noAck.seq} of epoch label ${step.noAck.epoch} is acked, but must not be yet`);
      } else {
        await d.close();
        earlier.push(...d.frames());
        d = await open(ctx, c);
      }
    }
  } finally {
    await d.close().catch(() => {});
  }
}

export function ackSequenceChecks(): Check[] {
  const all = ackSequences();
  return [
    ...all.map((s): Check => ({ name: `ws.ack-sequence.${s.name}`, spec: s.rule, run: (ctx) => runAckSequence(ctx, s, openWs) })),
    ...all.map((s): Check => ({ name: `mqtt.ack-sequence.${s.name}`, spec: s.rule, skip: noMqtt, run: (ctx) => runAckSequence(ctx, s, openMqtt) })),
  ];
}

export { openMqtt, openWs };
