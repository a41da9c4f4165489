/**
 * Runs the ack sequences of devices/vectors/ack-sequences.json against a gateway over a bare
 * WebSocket: each sequence is one check (ws.ack-sequence.<name>). The rules of a step are in
 * PROTOCOL.md (Golden vectors); an implementation of a gateway can run the same file its own way.
 */
import { readFileSync } from 'node:fs';
import { FrameType, type AckFrame, type Frame } from '../codec/index.js';
import type { Check } from './check.js';
import { covered, newEpoch, telemetry, type Context, type Credentials } from './context.js';
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

async function open(ctx: Context, c: Credentials): Promise<RawWs> {
  const r = await RawWs.open(ctx.ws, `?id=${encodeURIComponent(c.id)}`, { authorization: `Bearer ${c.token}` }, ctx.timeoutMs);
  if (!(r instanceof RawWs)) throw new Error(`device ${c.id} refused at upgrade: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  return r;
}

/** Drives one sequence; throws CheckFailed naming the step that failed. */
export async function runAckSequence(ctx: Context, s: AckSequence): Promise<void> {
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
    [...earlier, ...d.frames].slice(from).filter((f): f is AckFrame => f.type === FrameType.Ack && f.epoch === epoch);
  try {
    for (let i = 0; i < s.steps.length; i++) {
      const step = s.steps[i]!;
      const at = `step ${i + 1}`;
      if ('send' in step) {
        if (i === 0 || !('send' in s.steps[i - 1]!)) since = earlier.length + d.frames.length;
        d.send(telemetry(epochOf(step.send.epoch), step.send.seq, step.send.flags ?? 0));
      } else if ('ack' in step) {
        const e = epochOf(step.ack.epoch);
        const seq = step.ack.seq;
        // Only acks that came after this step's frames were sent count.
        await waitUntil(() => covered(acks(e, since), seq), `${at}: an ack of epoch label ${step.ack.epoch} covering seq ${seq}`, ctx.timeoutMs);
      } else if ('noAck' in step) {
        expectThat(!covered(acks(epochOf(step.noAck.epoch)), step.noAck.seq), `${at}: seq ${step.noAck.seq} of epoch label ${step.noAck.epoch} is acked, but must not be yet`);
      } else {
        earlier.push(...d.frames);
        d.close();
        await waitUntil(() => d.closedWith, `${at}: the connection to close`, ctx.timeoutMs);
        d = await open(ctx, c);
      }
    }
  } finally {
    d.close();
  }
}

export function ackSequenceChecks(): Check[] {
  return ackSequences().map((s) => ({
    name: `ws.ack-sequence.${s.name}`,
    spec: s.rule,
    run: (ctx) => runAckSequence(ctx, s),
  }));
}
