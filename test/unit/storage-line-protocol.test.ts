/** Line protocol from frames, escaping, InfluxDB's answers sorted, and storage options. */
import { describe, expect, it } from 'vitest';
import { TelemetryBatch } from '../../devices/codec/index.js';
import { createStorage, MemoryStorage, StorageError } from '../../gateway/storage/index.js';
import { classify, parseInfluxUrl, redact } from '../../gateway/storage/influx-http.js';
import { countLines, distinctTimes, escapeTag, LineBuffer, LineEncoder, MAX_TIME_MS, seriesPrefix, splitLines } from '../../gateway/storage/line-protocol.js';

function frame(readings: [ch: number, v: number, off?: number][]): TelemetryBatch {
  const b = new TelemetryBatch(64);
  b.count = readings.length;
  readings.forEach(([ch, v, off], i) => {
    b.channels[i] = ch;
    b.values[i] = v;
    b.offsets[i] = off ?? 0;
  });
  return b;
}

describe('LineEncoder', () => {
  const encoder = new LineEncoder();
  const prefix = seriesPrefix('telemetry', 'climate-0001', 'climate');
  /** Encodes into a fresh buffer and returns the text too. */
  const enc = {
    encode(p: string, t: number, b: TelemetryBatch) {
      const into = new LineBuffer(16);
      const e = encoder.encode(Buffer.from(p), t, b, into);
      return { text: into.take().toString(), ...e };
    },
  };

  it('puts the readings of one time on one line, one float field per channel', () => {
    const e = enc.encode(prefix, 1700000000000, frame([[1, 21.5], [2, 40], [3, 1]]));
    expect(e).toEqual({ text: 'telemetry,device=climate-0001,type=climate c3=1,c2=40,c1=21.5 1700000000000\n', points: 1, invalid: 0 });
  });

  it('makes one line per time offset, ordered by time, the later of two readings of a channel winning', () => {
    const e = enc.encode(prefix, 1000, frame([[1, 1, 20], [2, 2, 0], [1, 3, 20], [1, 4, -5], [2, 5, 0]]));
    expect(e.text.split('\n')).toEqual([
      'telemetry,device=climate-0001,type=climate c1=4 995',
      'telemetry,device=climate-0001,type=climate c2=5 1000',
      'telemetry,device=climate-0001,type=climate c1=3 1020',
      '',
    ]);
    expect(e.points).toBe(3);
  });

  it('writes shortest round-trip floats, -0 included, and leaves out times InfluxDB cannot hold', () => {
    expect(enc.encode(prefix, 5, frame([[0, 0.1], [1, -0], [2, 1e21], [3, 5e-324]])).text).toBe('telemetry,device=climate-0001,type=climate c3=5e-324,c2=1e+21,c1=-0,c0=0.1 5\n');
    const e = enc.encode(prefix, MAX_TIME_MS - 10, frame([[1, 1, 100], [2, 2]]));
    expect(e).toEqual({ text: `telemetry,device=climate-0001,type=climate c2=2 ${MAX_TIME_MS - 10}\n`, points: 1, invalid: 1 });
    expect(enc.encode(prefix, 5, frame([]))).toEqual({ text: '', points: 0, invalid: 0 });
  });

  it('encodes a 1024-reading frame with 1024 different offsets', () => {
    const readings: [number, number, number][] = [];
    for (let i = 0; i < 1024; i++) readings.push([i % 256, i, 1023 - i]);
    const b = new TelemetryBatch(1024);
    b.count = 1024;
    readings.forEach(([ch, v, off], i) => {
      b.channels[i] = ch;
      b.values[i] = v;
      b.offsets[i] = off;
    });
    const e = enc.encode('m,device=d ', 0, b);
    expect(e.points).toBe(1024);
    expect(e.text.split('\n')[0]).toBe('m,device=d c255=1023 0');
    expect(distinctTimes(b)).toBe(1024);
  });
});

describe('escaping and splitting', () => {
  it('escapes tag values and leaves no backslash that could escape a separator', () => {
    expect(escapeTag('a b,c=d')).toBe('a\\ b\\,c\\=d');
    expect(escapeTag('tail\\')).toBe('tail_');
    expect(escapeTag('two\nlines')).toBe('two\\ lines');
    expect(seriesPrefix('tele metry', 'd-1', undefined)).toBe('tele\\ metry,device=d-1 ');
  });

  it('splits line protocol into halves on line ends and counts lines', () => {
    const body = Buffer.from('a 1\nbb 2\nccc 3\nd 4\n');
    const [x, y] = splitLines(body)!;
    expect(x.toString() + y.toString()).toBe(body.toString());
    expect(countLines(x) + countLines(y)).toBe(4);
    expect(Math.min(countLines(x), countLines(y))).toBeGreaterThan(0);
    expect(splitLines(Buffer.from('one 1\n'))).toBeUndefined();
    expect(countLines('a\nb\n')).toBe(2);
  });
});

describe('InfluxDB answers', () => {
  const at = 'http://db:8086';
  it('sorts stored, partial, refused and retryable answers', () => {
    expect(classify(204, '', at)).toEqual({ kind: 'stored', refused: 0 });
    const conflict = classify(400, '{"error":"partial write: field type conflict: input field \\"c9\\" on measurement \\"telemetry\\" is type float, already exists as type boolean dropped=2"}', at);
    expect(conflict).toMatchObject({ kind: 'stored', refused: 2 });
    expect(conflict.kind === 'stored' && conflict.error?.code).toBe('STORAGE_PARTIAL_WRITE');
    expect(classify(400, `{"error":"partial write: unable to parse 'x': invalid field format\\nunable to parse 'y': bad dropped=0"}`, at)).toMatchObject({ kind: 'stored', refused: 2 });
    expect(classify(400, '{"error":"field type conflict"}', at)).toMatchObject({ kind: 'refused', error: { code: 'STORAGE_REJECTED', retryable: false } });
    expect(classify(413, 'too large', at)).toMatchObject({ kind: 'refused' });
    expect(classify(404, '{"error":"database not found: \\"x\\""}', at)).toMatchObject({ kind: 'retry', schema: true, error: { code: 'STORAGE_DB_NOT_FOUND', retryable: true } });
    expect(classify(401, '{"error":"authorization failed"}', at)).toMatchObject({ kind: 'retry', error: { code: 'STORAGE_UNAUTHORIZED' } });
    expect(classify(500, '{"error":"timeout"}', at)).toMatchObject({ kind: 'retry', error: { code: 'STORAGE_SERVER_ERROR' } });
    expect(classify(503, 'busy', at)).toMatchObject({ kind: 'retry' });
  });
});

describe('storage options', () => {
  it('parses --influx URLs and names the flag in errors', () => {
    expect(parseInfluxUrl('http://u:p%40ss@influx.local/telemetry')).toEqual({ protocol: 'http:', hostname: 'influx.local', port: 8086, basePath: '', database: 'telemetry', username: 'u', password: 'p@ss' });
    expect(parseInfluxUrl('https://[::1]:9000/proxy/db')).toMatchObject({ protocol: 'https:', hostname: '::1', port: 9000, basePath: '/proxy', database: 'db' });
    expect(() => parseInfluxUrl('http://host:8086/')).toThrow(/--influx .* names no database/);
    expect(() => parseInfluxUrl('influx:8086')).toThrow(StorageError);
    expect(redact('http://u:secret@h/db')).toBe('http://u:***@h/db');
  });

  it('makes the memory store by default and checks InfluxDB settings', () => {
    expect(createStorage({ dataDir: '.', memoryPoints: 10 })).toBeInstanceOf(MemoryStorage);
    expect(() => createStorage({ influx: 'http://h/db', dataDir: '.', memoryPoints: 10, influxRetention: '30 days' })).toThrow(/--influx-retention/);
    expect(() => createStorage({ influx: 'http://h/db', dataDir: '.', memoryPoints: 10, bufferPoints: 0 })).toThrow(/bufferPoints/);
    expect(createStorage({ influx: 'http://h/db', dataDir: '.', memoryPoints: 10, influxRetention: 'INF' }).kind).toBe('influxdb');
  });
});
