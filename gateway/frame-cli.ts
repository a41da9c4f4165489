/**
 * `gateway frame`: one telemetry frame from the command line, for people who send bytes with their
 * own tools (mosquitto_pub -f, a serial bridge, a test rig) rather than the SDK; `--decode` reads
 * back a frame the gateway sent (an ack, a command, an error) from hex.
 */
import { writeFileSync } from 'node:fs';
import { decodeFrame, encodeTelemetry, FrameError, FrameFlag, MAX_TIMESTAMP, type ReadingInput, type ValueTypeName } from '../devices/codec/index.js';
import { DEVICE_ID_PATTERN, DEVICE_ID_RULE } from '../devices/device-id.js';
import { GatewayError } from './errors.js';

/** Bad arguments to `gateway frame`: the message names the flag. */
export class FrameArgsError extends GatewayError {
  override name = 'FrameArgsError';
  constructor(message: string) {
    super('FRAME_ARGS', message);
  }
}

export interface FrameRequest {
  epoch: number;
  seq: number;
  timestamp: number;
  gap: boolean;
  readings: ReadingInput[];
  device: string | undefined;
  output: { kind: 'binary' } | { kind: 'hex' } | { kind: 'file'; path: string };
}

export const FRAME_HELP = `Usage: gateway frame --channel CH=VALUE[:TYPE] [--channel ...] [--epoch N] [--seq N] [--time MS] [--gap] [--device ID] [--hex | --out FILE]
       gateway frame --decode HEX

Prints one telemetry frame (wire format v1, devices/PROTOCOL.md): binary on stdout, or hex, or into
a file, e.g. for mosquitto_pub -f. The frame carries no device id: the connection does (MQTT
username and topic, or the WebSocket's ?id=).

  --channel CH=VALUE[:TYPE]  a reading: channel 0..255, a number or true/false, TYPE f32|f64|i32|bool
                             (default: f64 for a number, bool for true/false); repeat for more readings
  --epoch N    the device's boot epoch, u32 (default: 1); a new epoch starts a new sequence
  --seq N      the frame's sequence number, u32 (default: 0); the same epoch and seq again is a
               duplicate: the gateway acks it and does not store it twice
  --time MS    the frame's time in ms since 1970 (default: now)
  --gap        set the GapBefore flag (the device dropped unacked frames before this one)
  --device ID  check ID against the device id rule and print the MQTT topic to publish to (stderr)
  --hex        print the frame as hex on stdout instead of binary
  --out FILE   write the binary frame to FILE instead of stdout
  --decode HEX print a frame (e.g. an ack from mosquitto_sub -F %x) as JSON
  --help       print this help`;

const TYPES: readonly ValueTypeName[] = ['f32', 'f64', 'i32', 'bool'];

function u32(flag: string, raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) > 0xffffffff) throw new FrameArgsError(`--${flag}: "${raw}" is not a whole number in 0..4294967295`);
  return Number(raw);
}

function reading(raw: string): ReadingInput {
  const m = /^(\d+)=([^:]+)(?::(\w+))?$/.exec(raw);
  if (!m) throw new FrameArgsError(`--channel "${raw}": expected CH=VALUE or CH=VALUE:TYPE, e.g. 1=21.5 or 2=true or 3=7:i32`);
  const channel = Number(m[1]);
  if (channel > 255) throw new FrameArgsError(`--channel "${raw}": channel must be 0..255`);
  const type = m[3] as ValueTypeName | undefined;
  if (type !== undefined && !TYPES.includes(type)) throw new FrameArgsError(`--channel "${raw}": type "${type}" is not one of ${TYPES.join(', ')}`);
  const text = m[2]!;
  if (text === 'true' || text === 'false') {
    if (type !== undefined && type !== 'bool') throw new FrameArgsError(`--channel "${raw}": ${text} needs type bool, not ${type}`);
    return { channel, value: text === 'true', type: 'bool' };
  }
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new FrameArgsError(`--channel "${raw}": "${text}" is not a number or true/false`);
  if (type === 'bool' && value !== 0 && value !== 1) throw new FrameArgsError(`--channel "${raw}": a bool is true, false, 1 or 0`);
  if (type === 'i32' && (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff)) throw new FrameArgsError(`--channel "${raw}": an i32 is a whole number in -2147483648..2147483647`);
  if (type === 'f32' && !Number.isFinite(Math.fround(value))) throw new FrameArgsError(`--channel "${raw}": ${text} overflows an f32`);
  return { channel, value, type: type ?? 'f64' };
}

const VALUE_FLAGS = new Set(['channel', 'epoch', 'seq', 'time', 'device', 'out', 'decode']);

/** Parses `gateway frame` arguments; `now` is the default frame time. Throws FrameArgsError. */
export function parseFrameArgs(argv: readonly string[], now: number): FrameRequest | { help: true } | { decode: string } {
  const req: FrameRequest = { epoch: 1, seq: 0, timestamp: now, gap: false, readings: [], device: undefined, output: { kind: 'binary' } };
  let hex = false;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { help: true };
    if (arg === '--hex') {
      hex = true;
      continue;
    }
    if (arg === '--gap') {
      req.gap = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') ? arg.slice(2, eq === -1 ? undefined : eq) : '';
    if (!VALUE_FLAGS.has(flag)) throw new FrameArgsError(`unknown argument "${arg}" (see gateway frame --help)`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || (eq === -1 && value.startsWith('--'))) throw new FrameArgsError(`--${flag} needs a value (see gateway frame --help)`);
    switch (flag) {
      case 'channel':
        req.readings.push(reading(value));
        break;
      case 'epoch':
      case 'seq':
        req[flag] = u32(flag, value);
        break;
      case 'time':
        if (!/^\d+$/.test(value) || Number(value) > MAX_TIMESTAMP) throw new FrameArgsError(`--time: "${value}" is not whole ms since 1970 (0..${MAX_TIMESTAMP})`);
        req.timestamp = Number(value);
        break;
      case 'device':
        if (!DEVICE_ID_PATTERN.test(value)) throw new FrameArgsError(`--device "${value}": a device id is ${DEVICE_ID_RULE}`);
        req.device = value;
        break;
      case 'out':
        out = value;
        break;
      default:
        return { decode: value };
    }
  }
  if (req.readings.length === 0) throw new FrameArgsError('give at least one --channel CH=VALUE (see gateway frame --help)');
  if (hex && out !== undefined) throw new FrameArgsError('--hex and --out go one at a time: hex on stdout, or binary into a file');
  req.output = out !== undefined ? { kind: 'file', path: out } : hex ? { kind: 'hex' } : { kind: 'binary' };
  return req;
}

export function encodeRequest(req: FrameRequest): Uint8Array {
  return encodeTelemetry({ epoch: req.epoch, seq: req.seq, timestamp: req.timestamp, flags: req.gap ? FrameFlag.GapBefore : 0 }, req.readings);
}

/** A frame from hex (spaces allowed) as JSON text; a frame that does not decode throws its FrameError code. */
export function decodeHex(hex: string): string {
  const clean = hex.replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new FrameArgsError(`--decode: "${hex}" is not hex (two digits per byte)`);
  const frame = decodeFrame(Uint8Array.from(Buffer.from(clean, 'hex')));
  if (frame instanceof FrameError) throw new GatewayError(frame.code, `--decode: ${frame.message}`);
  return JSON.stringify(frame);
}

interface Io {
  stdout: { write(data: string | Uint8Array): unknown; isTTY?: boolean };
  stderr: { write(data: string): unknown };
}

/** Runs `gateway frame`; returns the exit code: 0, 2 for bad arguments or a frame that does not decode, 1 when the output cannot be written. */
export function runFrameCli(argv: readonly string[], io: Io = process): number {
  try {
    const parsed = parseFrameArgs(argv, Date.now());
    if ('help' in parsed) {
      io.stdout.write(FRAME_HELP + '\n');
      return 0;
    }
    if ('decode' in parsed) {
      io.stdout.write(decodeHex(parsed.decode) + '\n');
      return 0;
    }
    const bytes = encodeRequest(parsed);
    if (parsed.output.kind === 'hex') io.stdout.write(Buffer.from(bytes).toString('hex') + '\n');
    else if (parsed.output.kind === 'file') writeFileSync(parsed.output.path, bytes);
    else if (io.stdout.isTTY) throw new FrameArgsError('stdout is a terminal: use --hex to see the frame, --out FILE or a pipe for the bytes');
    else io.stdout.write(bytes);
    if (parsed.device !== undefined) io.stderr.write(`publish to devices/${parsed.device}/telemetry (QoS 1, client id and username ${parsed.device})\n`);
    return 0;
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : 'FRAME_OUTPUT';
    io.stderr.write(`gateway frame: [${code}] ${(err as Error).message}\n`);
    return err instanceof GatewayError ? 2 : 1;
  }
}
