/**
 * The refusal table (gateway/session/refusals.ts) is what the README's refusal and error-code
 * tables say. The refusals table is generated: `UPDATE_README=1 npx vitest run test/unit/refusals.test.ts`
 * rewrites it between its markers; the error-code table is written by hand and checked row by row.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, ERROR_CODES, closeCodeFor, type ErrorCode } from '../../devices/codec/index.js';
import { Refusal, REFUSALS, type RefusalCode, type RefusalSpec } from '../../gateway/session/refusals.js';

const README = new URL('../../README.md', import.meta.url).pathname;
const START = '<!-- refusals:start (generated from gateway/session/refusals.ts by test/unit/refusals.test.ts) -->';
const END = '<!-- refusals:end -->';

const rows = Object.entries(REFUSALS) as [RefusalCode, RefusalSpec][];

function mqttCell(s: RefusalSpec): string {
  if (s.connack === 'none') return 'closed, no CONNACK';
  if (typeof s.connack === 'number') return `CONNACK ${s.connack}`;
  return '–';
}

/** The README table: every refusal that is not an error frame of a running session (those are in the error-code table). */
function refusalTable(): string {
  const lines = ['| code | WebSocket upgrade | MQTT CONNECT | meaning |', '| --- | --- | --- | --- |'];
  for (const [code, s] of rows) {
    if (s.wire !== undefined && s.http === undefined && s.connack === undefined) continue;
    lines.push(`| \`${code}\` | ${s.http !== undefined ? `HTTP ${s.http}` : '–'} | ${mqttCell(s)} | ${s.doc} |`);
  }
  return lines.join('\n');
}

function readmeBlock(text: string): string | undefined {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a === -1 || b < a) return undefined;
  return text.slice(a + START.length, b).trim();
}

describe('the refusal table', () => {
  it('gives every code a device can receive its wire number and close code from the codec', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect(REFUSALS[code], code).toMatchObject({ wire: ERROR_CODES[code], close: closeCodeFor(code) });
    }
  });

  it('says for every code where it can happen, and closes only in the do-not-reconnect range unless the gateway is the cause', () => {
    for (const [code, s] of rows) {
      expect(s.http !== undefined || s.connack !== undefined || s.close !== undefined || s.post !== undefined || code.startsWith('MQTT_'), code).toBe(true);
      if (s.http !== undefined) expect([400, 401, 403, 409, 503]).toContain(s.http);
      if (s.post !== undefined) expect([413, 429, 503]).toContain(s.post);
      if (typeof s.connack === 'number') expect([1, 2, 3, 4, 5]).toContain(s.connack);
      // TIMESTAMP_OUT_OF_RANGE is the device's (its clock) but only that frame is bad: the device
      // drops it and reconnects to send the rest, so it closes in the reconnect range.
      if (s.close !== undefined && s.input && code !== 'TIMESTAMP_OUT_OF_RANGE') expect(s.close >= 4400 && s.close <= 4499, code).toBe(true);
      expect(s.doc.length, code).toBeGreaterThan(10);
      expect(s.doc, `${code}: a | would split the README table's row`).not.toContain('|');
    }
    // The gateway's own conditions ask the device to come back later.
    expect(REFUSALS.TOO_MANY_DEVICES).toMatchObject({ http: 503, connack: 3 });
    expect(REFUSALS.SHUTTING_DOWN).toMatchObject({ http: 503, connack: 3, close: CLOSE_CODES.SHUTTING_DOWN });
    expect(REFUSALS.UNAUTHORIZED).toMatchObject({ http: 401, connack: 4 });
    // JSON telemetry over HTTP: the gateway's conditions are 5xx, the device's limits 413/429, bad input 400.
    expect(new Refusal('STORAGE_FULL', '').postStatus).toBe(503);
    expect(new Refusal('ACK_TIMEOUT', '').postStatus).toBe(503);
    expect(new Refusal('RATE_LIMITED', '').postStatus).toBe(429);
    expect(new Refusal('FRAME_TOO_LARGE', '').postStatus).toBe(413);
    expect(new Refusal('UNAUTHORIZED', '').postStatus).toBe(401);
    expect(new Refusal('UNKNOWN_CHANNEL', '').postStatus).toBe(400);
  });
});

describe('the README', () => {
  const text = readFileSync(README, 'utf8');

  it('has the refusals table generated from the table', () => {
    const want = refusalTable();
    if (process.env.UPDATE_README === '1') {
      const a = text.indexOf(START);
      const b = text.indexOf(END);
      if (a === -1 || b < a) throw new Error(`README.md has no ${START} … ${END} block to update`);
      writeFileSync(README, text.slice(0, a + START.length) + '\n' + want + '\n' + text.slice(b));
      return;
    }
    expect(readmeBlock(text), 'README refusals table is stale: run UPDATE_README=1 npx vitest run test/unit/refusals.test.ts').toBe(want);
  });

  it('lists every error code with its number and close code as the table says', () => {
    const section = text.slice(text.indexOf('## Error codes and close codes'), text.indexOf(START));
    const seen = new Map<string, { wire: number; close: number }>();
    for (const m of section.matchAll(/^\| (\d+) \| `([A-Z_]+)`[^|]*\| (\d+) \|$/gm)) seen.set(m[2]!, { wire: Number(m[1]), close: Number(m[3]) });
    const want = new Map(rows.filter(([, s]) => s.wire !== undefined).map(([code, s]) => [code as string, { wire: s.wire!, close: s.close! }]));
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(want));
  });
});
