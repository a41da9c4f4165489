/** `gateway frame`: arguments to frame bytes, checked by decoding them with the codec; every bad argument named. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeAck, FrameFlag, type TelemetryFrame } from '../../devices/codec/index.js';
import { parseFrameArgs, runFrameCli } from '../../gateway/frame-cli.js';

function run(args: string[], isTTY = false): { code: number; out: Uint8Array[]; text: string; err: string } {
  const out: Uint8Array[] = [];
  let text = '';
  let err = '';
  const code = runFrameCli(args, {
    stdout: { isTTY, write: (d: string | Uint8Array) => (typeof d === 'string' ? (text += d) : out.push(d)) },
    stderr: { write: (d: string) => (err += d) },
  });
  return { code, out, text, err };
}

describe('gateway frame', () => {
  it('writes binary telemetry with the given header and typed readings', () => {
    const { code, out } = run(['--epoch', '7', '--seq', '42', '--time', '1700000000000', '--channel', '1=21.5:f32', '--channel', '2=true', '--channel', '3=-5:i32', '--channel=4=0.1']);
    expect(code).toBe(0);
    const frame = decodeFrame(out[0]!) as TelemetryFrame;
    expect(frame).toMatchObject({ type: 1, epoch: 7, seq: 42, timestamp: 1700000000000, flags: 0 });
    expect(frame.readings).toEqual([
      { channel: 1, type: 'f32', value: 21.5, offsetMs: 0 },
      { channel: 2, type: 'bool', value: true, offsetMs: 0 },
      { channel: 3, type: 'i32', value: -5, offsetMs: 0 },
      { channel: 4, type: 'f64', value: 0.1, offsetMs: 0 },
    ]);
  });

  it('defaults to epoch 1, seq 0 and now; --gap sets GapBefore', () => {
    const before = Date.now();
    const req = parseFrameArgs(['--channel', '1=1', '--gap'], before);
    expect(req).toMatchObject({ epoch: 1, seq: 0, timestamp: before, gap: true });
    const { out } = run(['--channel', '1=1', '--gap']);
    const frame = decodeFrame(out[0]!) as TelemetryFrame;
    expect(frame.flags & FrameFlag.GapBefore).toBe(FrameFlag.GapBefore);
    expect(frame.timestamp).toBeGreaterThanOrEqual(before);
  });

  it('prints hex, or writes the bytes to --out', () => {
    const hex = run(['--time', '0', '--channel', '2=false', '--hex']).text.trim();
    expect(hex).toBe('01010000' + '01000000' + '00000000' + '0000000000000000' + '0100' + '020400');
    const file = join(mkdtempSync(join(tmpdir(), 'frame-cli-')), 'frame.bin');
    expect(run(['--time', '0', '--channel', '2=false', '--out', file]).code).toBe(0);
    expect(Buffer.from(readFileSync(file)).toString('hex')).toBe(hex);
  });

  it('refuses to write binary to a terminal', () => {
    const r = run(['--channel', '1=1'], true);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/\[FRAME_ARGS\] stdout is a terminal: use --hex/);
  });

  it('names the flag of every bad argument, with exit code 2', () => {
    const cases: [string[], RegExp][] = [
      [[], /at least one --channel/],
      [['--channel', '1'], /--channel "1": expected CH=VALUE/],
      [['--channel', '256=1'], /channel must be 0\.\.255/],
      [['--channel', '1=abc'], /"abc" is not a number or true\/false/],
      [['--channel', '1=1:f16'], /type "f16" is not one of f32, f64, i32, bool/],
      [['--channel', '1=true:f32'], /true needs type bool/],
      [['--channel', '1=1.5:i32'], /an i32 is a whole number/],
      [['--channel', '1=1e39:f32'], /overflows an f32/],
      [['--channel', '1=2:bool'], /a bool is true, false, 1 or 0/],
      [['--channel', '1=1', '--seq', '-1'], /--seq: "-1" is not a whole number in 0\.\.4294967295/],
      [['--channel', '1=1', '--epoch', '4294967296'], /--epoch/],
      [['--channel', '1=1', '--time', 'now'], /--time: "now"/],
      [['--channel', '1=1', '--device', 'bad id'], /--device "bad id": a device id is 1 to 128/],
      [['--channel', '1=1', '--hex', '--out', 'x'], /--hex and --out go one at a time/],
      [['--channel'], /--channel needs a value/],
      [['--channel', '--hex'], /--channel needs a value/],
      [['--channel', '1=1', 'extra'], /unknown argument "extra"/],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(/^gateway frame: \[FRAME_ARGS\] /);
      expect(r.err, args.join(' ')).toMatch(message);
      expect(r.out, args.join(' ')).toEqual([]);
    }
  });

  it('with --device, prints the topic to publish to on stderr', () => {
    const r = run(['--channel', '1=1', '--device', 'greenhouse-1', '--hex']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('publish to devices/greenhouse-1/telemetry (QoS 1, client id and username greenhouse-1)\n');
  });

  it('--decode prints a gateway frame as JSON; a broken frame gets its codec error code', () => {
    const ack = Buffer.from(encodeAck({ epoch: 1, seq: 5, timestamp: 1700000000000 })).toString('hex');
    const r = run(['--decode', ack]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.text)).toEqual({ version: 1, type: 0x81, flags: 0, epoch: 1, seq: 5, timestamp: 1700000000000 });
    expect(run(['--decode', '0181']).err).toMatch(/^gateway frame: \[FRAME_TRUNCATED\] --decode: /);
    expect(run(['--decode', 'zz']).err).toMatch(/\[FRAME_ARGS\] --decode: "zz" is not hex/);
  });

  it('--help prints the usage', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    expect(r.text).toMatch(/^Usage: gateway frame --channel CH=VALUE/);
  });
});
