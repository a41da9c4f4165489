/** The WebSocket rules of devices/PROTOCOL.md, checked with a bare WebSocket device. */
import { closeCodeFor, CommandStatus, encodeAck, encodeCommandResult, ERROR_CODES, FrameFlag, FrameType, type CommandFrame } from '../codec/index.js';
import type { Check } from './check.js';
import { covered, invalidVectors, newEpoch, telemetry, vectorSample, type Context, type Credentials } from './context.js';
import { RawWs, type UpgradeRefusal } from './raw-ws.js';
import { expectThat, waitUntil } from './wait.js';

function query(c: Credentials, withToken = false): string {
  return `?id=${encodeURIComponent(c.id)}` + (withToken ? `&token=${encodeURIComponent(c.token)}` : '');
}

async function open(ctx: Context, c: Credentials): Promise<RawWs> {
  const r = await RawWs.open(ctx.ws, query(c), { authorization: `Bearer ${c.token}` }, ctx.timeoutMs);
  if (!(r instanceof RawWs)) throw new Error(`device ${c.id} refused at upgrade: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  return r;
}

async function refused(ctx: Context, q: string, headers: Record<string, string>): Promise<UpgradeRefusal> {
  const r = await RawWs.open(ctx.ws, q, headers, ctx.timeoutMs);
  if (r instanceof RawWs) {
    r.close();
    throw new Error('the upgrade was accepted');
  }
  return r;
}

function errorCodeOf(r: UpgradeRefusal): string | undefined {
  try {
    return (JSON.parse(r.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** Sends `bytes`, expects an error frame with `code` and then the close code that code maps to. */
async function expectRefusal(ctx: Context, bytes: Uint8Array | string, code: keyof typeof ERROR_CODES): Promise<void> {
  const d = await open(ctx, ctx.device());
  try {
    d.send(bytes);
    const closed = await waitUntil(() => d.closedWith, 'close', ctx.timeoutMs);
    const err = d.error();
    expectThat(err?.code === ERROR_CODES[code], `error frame code ${err?.code ?? 'none'}, want ${ERROR_CODES[code]} (${code})`);
    expectThat(closed.code === closeCodeFor(code), `close code ${closed.code}, want ${closeCodeFor(code)}`);
  } finally {
    d.close();
  }
}

const upgrade = 'Transports › WebSocket';

export function wsChecks(): Check[] {
  const vectors = vectorSample(invalidVectors());
  return [
    {
      name: 'ws.auth.no-token',
      spec: upgrade,
      run: async (ctx) => {
        const r = await refused(ctx, query(ctx.device()), {});
        expectThat(r.status === 401, `HTTP ${r.status}, want 401`);
        expectThat(errorCodeOf(r) === 'UNAUTHORIZED', `body code ${errorCodeOf(r)}, want UNAUTHORIZED`);
        expectThat(/^Bearer/i.test(String(r.headers['www-authenticate'] ?? '')), 'no WWW-Authenticate: Bearer header');
      },
    },
    {
      name: 'ws.auth.wrong-token',
      spec: upgrade,
      run: async (ctx) => {
        const r = await refused(ctx, query(ctx.device()), { authorization: 'Bearer 0000' });
        expectThat(r.status === 401 && errorCodeOf(r) === 'UNAUTHORIZED', `HTTP ${r.status} ${errorCodeOf(r)}, want 401 UNAUTHORIZED`);
      },
    },
    {
      name: 'ws.auth.missing-id',
      spec: upgrade,
      run: async (ctx) => {
        const r = await refused(ctx, '', {});
        expectThat(r.status === 400 && errorCodeOf(r) === 'DEVICE_ID_MISSING', `HTTP ${r.status} ${errorCodeOf(r)}, want 400 DEVICE_ID_MISSING`);
      },
    },
    {
      name: 'ws.auth.bad-id',
      spec: upgrade,
      run: async (ctx) => {
        const r = await refused(ctx, '?id=' + encodeURIComponent('not a valid id!'), { authorization: 'Bearer x' });
        expectThat(r.status === 400 && errorCodeOf(r) === 'BAD_DEVICE_ID', `HTTP ${r.status} ${errorCodeOf(r)}, want 400 BAD_DEVICE_ID`);
      },
    },
    {
      name: 'ws.auth.query-token-and-lowercase-bearer',
      spec: upgrade,
      run: async (ctx) => {
        const c = ctx.device();
        for (const [q, h] of [[query(c, true), {}], [query(c), { authorization: `bearer ${c.token}` }]] as const) {
          const r = await RawWs.open(ctx.ws, q, h, ctx.timeoutMs);
          expectThat(r instanceof RawWs, `refused: HTTP ${(r as UpgradeRefusal).status}`);
          r.close();
        }
      },
    },
    {
      name: 'ws.telemetry.ack',
      spec: 'Delivery 2',
      run: async (ctx) => {
        const d = await open(ctx, ctx.device());
        try {
          const epoch = newEpoch();
          d.send(telemetry(epoch, 0));
          await waitUntil(() => covered(d.acks(epoch), 0), `ack of epoch ${epoch} seq 0`, ctx.timeoutMs);
        } finally {
          d.close();
        }
      },
    },
    {
      name: 'ws.ack.cumulative',
      spec: 'Delivery 2',
      run: async (ctx) => {
        const d = await open(ctx, ctx.device());
        try {
          const epoch = newEpoch();
          for (let seq = 0; seq < 20; seq++) d.send(telemetry(epoch, seq));
          await waitUntil(() => covered(d.acks(epoch), 19), 'an ack covering seq 19', ctx.timeoutMs);
          const acks = d.acks(epoch);
          for (let seq = 0; seq < 20; seq++) expectThat(covered(acks, seq), `seq ${seq} never acked`);
          for (let i = 1; i < acks.length; i++) {
            const a = acks[i - 1]!;
            const b = acks[i]!;
            if ((a.flags | b.flags) & FrameFlag.AckRange) continue;
            expectThat(b.seq >= a.seq, `cumulative ack went back from ${a.seq} to ${b.seq}`);
          }
          // How many acks is the gateway's choice (--ack-interval): reported, not judged.
          return `${acks.length} ack(s) for 20 frames`;
        } finally {
          d.close();
        }
      },
    },
    {
      name: 'ws.dedupe.resend',
      spec: 'Delivery 3–4',
      run: async (ctx) => {
        const c = ctx.device();
        const epoch = newEpoch();
        const frames = [0, 1, 2].map((s) => telemetry(epoch, s));
        const framesOf = async () => (ctx.operatorToken ? ((await api(ctx, `/api/devices/${encodeURIComponent(c.id)}`)).body as { counters?: { frames?: number } }).counters?.frames : undefined);
        let before = 0;
        const first = await open(ctx, c);
        try {
          before = (await framesOf()) ?? 0;
          for (const f of frames) first.send(f);
          await waitUntil(() => covered(first.acks(epoch), 2), 'ack of seq 2', ctx.timeoutMs);
        } finally {
          first.close();
        }
        await waitUntil(() => first.closedWith, 'the first connection to close', ctx.timeoutMs);
        const again = await open(ctx, c);
        try {
          again.send(frames[1]!);
          await waitUntil(() => covered(again.acks(epoch), 1), 'an ack for the resent seq 1', ctx.timeoutMs);
        } finally {
          again.close();
        }
        if (!ctx.operatorToken) return 'resend acked (pass --operator-token to also check it is counted once)';
        const after = (await framesOf()) ?? 0;
        expectThat(after - before === 3, `the device's frame counter grew by ${after - before} for 3 frames and a resend`);
        return 'resend acked and counted once';
      },
    },
    {
      name: 'ws.wrong-direction',
      spec: 'Frame types (direction rule)',
      run: (ctx) => expectRefusal(ctx, encodeAck({ epoch: 1, seq: 1, timestamp: Date.now() }), 'FRAME_WRONG_DIRECTION'),
    },
    {
      name: 'ws.not-binary',
      spec: upgrade,
      run: (ctx) => expectRefusal(ctx, 'hello', 'NOT_BINARY'),
    },
    {
      name: 'ws.too-large',
      spec: 'Limits',
      run: (ctx) => {
        const b = telemetry(newEpoch(), 0);
        const big = new Uint8Array(ctx.maxFrameBytes + 1);
        big.set(b);
        return expectRefusal(ctx, big, 'FRAME_TOO_LARGE');
      },
    },
    ...vectors.map(
      (v): Check => ({
        name: `ws.bad-frame.${v.name}`,
        spec: 'Order of checks at the gateway',
        run: (ctx) => expectRefusal(ctx, Buffer.from(v.hex, 'hex'), v.gatewayCode),
      }),
    ),
    {
      name: 'ws.replaced',
      spec: upgrade,
      run: async (ctx) => {
        const c = ctx.device();
        const older = await open(ctx, c);
        const r = await RawWs.open(ctx.ws, query(c), { authorization: `Bearer ${c.token}` }, ctx.timeoutMs);
        try {
          if (!(r instanceof RawWs)) {
            expectThat(r.status === 409 && errorCodeOf(r) === 'DEVICE_ALREADY_CONNECTED', `second connection: HTTP ${r.status} ${errorCodeOf(r)}`);
            return 'the gateway runs --duplicate-id reject: 409';
          }
          const closed = await waitUntil(() => older.closedWith, 'the older connection to close', ctx.timeoutMs);
          expectThat(older.error()?.code === ERROR_CODES.REPLACED, `older connection got error ${older.error()?.code ?? 'none'}, want ${ERROR_CODES.REPLACED} REPLACED`);
          expectThat(closed.code === closeCodeFor('REPLACED'), `older connection closed with ${closed.code}, want 4409`);
        } finally {
          older.close();
          if (r instanceof RawWs) r.close();
        }
      },
    },
    {
      name: 'ws.command.round-trip',
      spec: 'Command (0x82), Command result (0x02)',
      skip: (ctx) => (ctx.operatorToken ? undefined : 'needs --operator-token'),
      run: async (ctx) => {
        const c = ctx.device();
        const d = await open(ctx, c);
        try {
          const posted = await api(ctx, `/api/devices/${encodeURIComponent(c.id)}/commands`, { name: 'conformance-ping', args: { n: 1 }, ttlMs: 60_000 });
          expectThat(posted.status === 201, `POST command: HTTP ${posted.status} ${JSON.stringify(posted.body)}${posted.status === 400 ? ' (a device whose type lists its commands gets no others: use a device id of no declared type)' : ''}`);
          const id = (posted.body as { id: string }).id;
          const cmd = await waitUntil(() => d.frames.find((f): f is CommandFrame => f.type === FrameType.Command && f.commandId === id), 'command frame', ctx.timeoutMs);
          expectThat(cmd.name === 'conformance-ping' && cmd.args === '{"n":1}', `command frame ${cmd.name} ${cmd.args}`);
          d.send(encodeCommandResult({ timestamp: Date.now() }, { commandId: id, status: CommandStatus.Received }));
          d.send(encodeCommandResult({ timestamp: Date.now() }, { commandId: id, status: CommandStatus.Ok, payload: '{"pong":1}' }));
          const deadline = Date.now() + ctx.timeoutMs;
          for (;;) {
            const s = (await api(ctx, `/api/commands/${encodeURIComponent(id)}`)).body as { state?: string; result?: unknown; history?: { state: string }[] };
            if (s.state === 'acked') {
              expectThat(JSON.stringify(s.result) === '{"pong":1}', `result ${JSON.stringify(s.result)}`);
              const states = (s.history ?? []).map((h) => h.state).join(' → ');
              expectThat(states.includes('delivered'), `history ${states} lacks delivered`);
              return states;
            }
            expectThat(Date.now() < deadline, `command still ${s.state} after ${ctx.timeoutMs} ms`);
            await new Promise((r) => setTimeout(r, 50));
          }
        } finally {
          d.close();
        }
      },
    },
  ];
}

/** The operator HTTP API: GET, or POST with a JSON body. */
export async function api(ctx: Context, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(ctx.http + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${ctx.operatorToken ?? ''}`, 'content-type': 'application/json', connection: 'close' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(ctx.timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}
