/**
 * The types file's validation (devices/types/parse.ts) and command argument schemas
 * (devices/types/args.ts): every refusal names where in the file and what is wrong.
 */
import { describe, expect, it } from 'vitest';
import { DEMO_DEVICE_TYPES, deviceType, typeOfDevice, useDeviceTypes } from '../../devices/device-types.js';
import { checkArgs, type ArgsSchema } from '../../devices/types/args.js';
import { describeProblems, parseDeviceTypes } from '../../devices/types/parse.js';
import demo from '../../devices/types/demo.json' with { type: 'json' };

const channel = { id: 1, name: 'temperature', unit: '°C', type: 'f32', min: -20, max: 45 };
const command = { name: 'set-level', hint: 'h', example: { level: 2 }, schema: { type: 'object', properties: { level: { type: 'integer', minimum: 0, maximum: 5 } }, required: ['level'] } };
const type = (over: Record<string, unknown> = {}) => ({ type: 'tank', name: 'Tank', channels: [channel], commands: [command], ...over });
const doc = (...types: unknown[]) => ({ types });

/** The one problem a document has (fails when it has none or several). */
function problem(d: unknown): { path: string; message: string } {
  const r = parseDeviceTypes(d);
  if (r.ok) throw new Error('expected a problem, the document was accepted');
  expect(r.problems, describeProblems(r.problems)).toHaveLength(1);
  return r.problems[0]!;
}

describe('types file validation', () => {
  it('accepts the demo file and a full type', () => {
    expect(parseDeviceTypes(demo)).toMatchObject({ ok: true });
    const r = parseDeviceTypes(doc(type()));
    expect(r).toEqual({ ok: true, types: [{ type: 'tank', name: 'Tank', channels: [channel], commands: [command] }] });
  });

  it('defaults: unit "" and hint "", example null; commands may be left out', () => {
    const r = parseDeviceTypes(doc(type({ channels: [{ id: 3, name: 'door', type: 'bool' }], commands: [{ name: 'reboot', schema: null }] }), { type: 'bare', name: 'Bare', channels: [] }));
    expect(r).toEqual({
      ok: true,
      types: [
        { type: 'tank', name: 'Tank', channels: [{ id: 3, name: 'door', unit: '', type: 'bool' }], commands: [{ name: 'reboot', hint: '', example: null, schema: null }] },
        { type: 'bare', name: 'Bare', channels: [] },
      ],
    });
  });

  const cases: [string, unknown, string, RegExp][] = [
    ['not an object', [], '(top)', /must be an object/],
    ['unknown top-level key', { types: [], version: 2 }, '(top).version', /unknown key "version"/],
    ['types not a list', { types: {} }, 'types', /list of device types/],
    ['unknown type key', doc(type({ colour: 'red' })), 'types[0].colour', /unknown key "colour" \(a device type has type, name, channels, commands, alarms\)/],
    ['bad type name', doc(type({ type: 'tank tank' })), 'types[0].type', /A-Z a-z 0-9/],
    ['duplicate type', doc(type(), type()), 'types[1].type', /"tank" is declared twice/],
    ['missing name', doc(type({ name: undefined })), 'types[0].name', /non-empty string/],
    ['channels missing', doc(type({ channels: undefined })), 'types[0].channels', /list of channels/],
    ['channel id out of range', doc(type({ channels: [{ ...channel, id: 256 }] })), 'types[0].channels[0].id', /0 to 255/],
    ['channel id twice', doc(type({ channels: [channel, { ...channel, name: 'other' }] })), 'types[0].channels[1].id', /declared twice/],
    ['channel name twice', doc(type({ channels: [channel, { ...channel, id: 2 }] })), 'types[0].channels[1].name', /names two channels/],
    ['bad value type', doc(type({ channels: [{ ...channel, type: 'float' }] })), 'types[0].channels[0].type', /f32, f64, i32, bool/],
    ['unit not a string', doc(type({ channels: [{ ...channel, unit: 5 }] })), 'types[0].channels[0].unit', /string/],
    ['min not a number', doc(type({ channels: [{ ...channel, min: 'low' }] })), 'types[0].channels[0].min', /must be a number/],
    ['min above max', doc(type({ channels: [{ ...channel, min: 50 }] })), 'types[0].channels[0].min', /not below max 45/],
    ['range on a bool', doc(type({ channels: [{ id: 1, name: 'door', type: 'bool', max: 1 }] })), 'types[0].channels[0].max', /bool channel has no range/],
    ['unknown channel key', doc(type({ channels: [{ ...channel, colour: 1 }] })), 'types[0].channels[0].colour', /unknown key "colour"/],
    ['commands not a list', doc(type({ commands: {} })), 'types[0].commands', /list of commands/],
    ['command name too long', doc(type({ commands: [{ ...command, name: 'x'.repeat(65) }] })), 'types[0].commands[0].name', /1 to 64 bytes/],
    ['command twice', doc(type({ commands: [command, command] })), 'types[0].commands[1].name', /declared twice/],
    ['schema missing', doc(type({ commands: [{ name: 'x', example: null }] })), 'types[0].commands[0].schema', /is required/],
    ['schema not an object', doc(type({ commands: [{ ...command, schema: 'int' }] })), 'types[0].commands[0].schema', /null \(no arguments\) or an object schema/],
    ['schema type not object', doc(type({ commands: [{ ...command, schema: { ...command.schema, type: 'array' } }] })), 'types[0].commands[0].schema.type', /must be "object"/],
    ['unknown schema key', doc(type({ commands: [{ ...command, schema: { ...command.schema, oneOf: [] } }] })), 'types[0].commands[0].schema.oneOf', /unknown key "oneOf"/],
    ['bad property type', doc(type({ commands: [{ ...command, example: null, schema: { type: 'object', properties: { level: { type: 'float' } } } }] })), 'types[0].commands[0].schema.properties.level.type', /number, integer, string, boolean/],
    ['minimum on a string', doc(type({ commands: [{ ...command, example: null, schema: { type: 'object', properties: { mode: { type: 'string', minimum: 1 } } } }] })), 'types[0].commands[0].schema.properties.mode.minimum', /applies to numbers/],
    ['minimum above maximum', doc(type({ commands: [{ ...command, example: { level: 1 }, schema: { type: 'object', properties: { level: { type: 'integer', minimum: 5, maximum: 1 } } } }] })), 'types[0].commands[0].schema.properties.level.minimum', /above maximum/],
    ['enum of the wrong type', doc(type({ commands: [{ ...command, example: null, schema: { type: 'object', properties: { mode: { type: 'string', enum: ['a', 3] } } } }] })), 'types[0].commands[0].schema.properties.mode.enum[1]', /3 is not a string/],
    ['required names no property', doc(type({ commands: [{ ...command, schema: { ...command.schema, required: ['level', 'speed'] } }] })), 'types[0].commands[0].schema.required', /"speed", which is not in properties/],
    ['example does not fit', doc(type({ commands: [{ ...command, example: { level: 9 } }] })), 'types[0].commands[0].example', /does not fit the schema: args.level must be from 0 to 5, not 9/],
    ['example for a no-args command', doc(type({ commands: [{ name: 'reboot', example: {}, schema: null }] })), 'types[0].commands[0].example', /takes no arguments/],
  ];
  for (const [name, d, path, message] of cases) {
    it(`refuses: ${name}`, () => {
      const p = problem(d);
      expect(p.path).toBe(path);
      expect(p.message).toMatch(message);
    });
  }

  it('lists every problem, and describeProblems makes one line of them', () => {
    const r = parseDeviceTypes(doc(type({ name: '' }), type({ type: 'b', channels: [{ ...channel, type: 'x' }] })));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path)).toEqual(['types[0].name', 'types[1].channels[0].type']);
    expect(describeProblems(r.problems)).toMatch(/^types\[0\]\.name: .*; types\[1\]\.channels\[0\]\.type: /);
    expect(describeProblems(r.problems, 1)).toMatch(/; and 1 more$/);
  });
});

describe('command argument schemas', () => {
  const schema: ArgsSchema = {
    type: 'object',
    properties: { ms: { type: 'integer', minimum: 1, maximum: 1000 }, mode: { type: 'string', enum: ['eco', 'fast'] }, on: { type: 'boolean' }, label: { type: 'string', maxLength: 3 } },
    required: ['ms'],
    maxProperties: 3,
  };
  it('accepts what fits', () => {
    expect(checkArgs(schema, { ms: 5 })).toBeUndefined();
    expect(checkArgs(schema, { ms: 5, mode: 'eco', on: true })).toBeUndefined();
    expect(checkArgs(null, null)).toBeUndefined();
    expect(checkArgs(null, undefined)).toBeUndefined();
  });
  it('refuses, naming the argument', () => {
    expect(checkArgs(schema, null)).toMatch(/^args must be a JSON object with ms, mode, on, label/);
    expect(checkArgs(schema, [1])).toMatch(/^args must be a JSON object/);
    expect(checkArgs(schema, {})).toBe('args.ms is required');
    expect(checkArgs(schema, { ms: 5, speed: 1 })).toMatch(/^args.speed is not an argument it takes \(it takes ms, mode, on, label\)/);
    expect(checkArgs(schema, { ms: 0 })).toBe('args.ms must be from 1 to 1000, not 0');
    expect(checkArgs(schema, { ms: 1.5 })).toBe('args.ms must be a whole number, not 1.5');
    expect(checkArgs(schema, { ms: '5' })).toBe('args.ms must be a whole number, not "5"');
    expect(checkArgs(schema, { ms: 5, mode: 'slow' })).toBe('args.mode must be one of "eco", "fast", not "slow"');
    expect(checkArgs(schema, { ms: 5, on: 1 })).toBe('args.on must be true or false, not 1');
    expect(checkArgs(schema, { ms: 5, label: 'long' })).toBe('args.label must be at most 3 characters long');
    expect(checkArgs(schema, { ms: 5, mode: 'eco', on: true, label: 'a' })).toMatch(/^args may have at most 3/);
    expect(checkArgs(null, { a: 1 })).toMatch(/^takes no arguments/);
    expect(checkArgs({ type: 'object', properties: { ms: { type: 'number' }, hz: { type: 'number' } }, minProperties: 1 }, {})).toBe('args must have at least 1 of ms, hz');
  });
  it('additionalProperties: true lets unnamed properties through', () => {
    expect(checkArgs({ type: 'object', properties: {}, additionalProperties: true }, { anything: 1 })).toBeUndefined();
  });
});

describe('the table in force', () => {
  it('starts as the demo types and is replaced whole', () => {
    expect(deviceType('climate')).toBe(DEMO_DEVICE_TYPES[0]);
    expect(typeOfDevice('climate-0001')).toBe('climate');
    expect(typeOfDevice('tank-1')).toBeUndefined();
    const parsed = parseDeviceTypes(doc(type()));
    if (!parsed.ok) throw new Error('bad');
    try {
      useDeviceTypes(parsed.types);
      expect(typeOfDevice('tank-1')).toBe('tank');
      expect(typeOfDevice('climate-0001')).toBeUndefined();
      expect(typeOfDevice('climate-0001', 'tank')).toBe('tank');
      expect(deviceType('tank')?.channels[0]?.unit).toBe('°C');
    } finally {
      useDeviceTypes(DEMO_DEVICE_TYPES);
    }
  });
});
