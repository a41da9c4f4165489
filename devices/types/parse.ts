/**
 * Reads a device types document (the JSON of a types file, README "Device types") into checked
 * DeviceTypeSpecs, or says everything that is wrong with it, each problem with its path inside the
 * document (`types[1].channels[0].unit`). Unknown keys are refused by name, so a typo never passes
 * silently. Pure, no I/O: the gateway reads and watches the file, the simulator reads it.
 *
 * Each object's keys are listed once (…_KEYS) and read by one function: an optional key is one
 * more entry there and one more line in its reader.
 */
import { MAX_NAME_BYTES, type ValueTypeName } from '../codec/types.js';
import type { AlarmRuleSpec, ChannelSpec, CommandSpec, DeviceTypeSpec } from './spec.js';
import { checkArgs, parseArgsSchema, type TypesProblem } from './args.js';

export type { TypesProblem };

export type ParsedTypes = { ok: true; types: DeviceTypeSpec[] } | { ok: false; problems: TypesProblem[] };

const DOC_KEYS = ['types'];
const TYPE_KEYS = ['type', 'name', 'channels', 'commands', 'alarms'];
const CHANNEL_KEYS = ['id', 'name', 'unit', 'type', 'min', 'max'];
const COMMAND_KEYS = ['name', 'hint', 'example', 'schema'];
const VALUE_TYPES: readonly ValueTypeName[] = ['f32', 'f64', 'i32', 'bool'];
/** A type's name: in the registry, in ids (`climate-0042`: the part before the first '-'), in storage tags. */
const TYPE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const utf8 = new TextEncoder();

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

class Reader {
  readonly problems: TypesProblem[] = [];

  bad(path: string, message: string): undefined {
    this.problems.push({ path, message });
    return undefined;
  }

  /** An object with only the given keys. */
  object(v: unknown, path: string, keys: readonly string[], what: string): Record<string, unknown> | undefined {
    if (!isObject(v)) return this.bad(path, `must be an object (${what}), not ${show(v)}`);
    for (const k of Object.keys(v)) if (!keys.includes(k)) this.bad(`${path}.${k}`, `unknown key "${k}" (${what} has ${keys.join(', ')})`);
    return v;
  }

  text(v: unknown, path: string, max: number, allowEmpty = false): string | undefined {
    if (typeof v !== 'string' || (!allowEmpty && v.trim() === '') || v.length > max) {
      return this.bad(path, `must be a ${allowEmpty ? '' : 'non-empty '}string of at most ${max} characters, not ${show(v)}`);
    }
    return v;
  }

  number(v: unknown, path: string): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.bad(path, `must be a number, not ${show(v)}`);
    return v;
  }
}

/** Checks a parsed types document; `ok: false` lists every problem found. */
export function parseDeviceTypes(doc: unknown): ParsedTypes {
  const r = new Reader();
  const types: DeviceTypeSpec[] = [];
  const o = r.object(doc, '(top)', DOC_KEYS, 'a types file');
  if (o !== undefined) {
    if (!Array.isArray(o.types)) r.bad('types', `must be a list of device types, not ${show(o.types)}`);
    else {
      const seen = new Set<string>();
      o.types.forEach((t, i) => {
        const spec = readType(r, t, `types[${i}]`);
        if (spec === undefined) return;
        if (seen.has(spec.type)) r.bad(`types[${i}].type`, `"${spec.type}" is declared twice`);
        seen.add(spec.type);
        types.push(spec);
      });
    }
  }
  return r.problems.length > 0 ? { ok: false, problems: r.problems } : { ok: true, types };
}

function readType(r: Reader, raw: unknown, path: string): DeviceTypeSpec | undefined {
  const o = r.object(raw, path, TYPE_KEYS, 'a device type');
  if (o === undefined) return undefined;
  const before = r.problems.length;
  if (typeof o.type !== 'string' || !TYPE_PATTERN.test(o.type)) r.bad(`${path}.type`, `must be 1 to 64 of A-Z a-z 0-9 _ . - (it names the type in the registry, in device ids and in storage), not ${show(o.type)}`);
  const name = r.text(o.name, `${path}.name`, 100);
  const channels: ChannelSpec[] = [];
  if (!Array.isArray(o.channels)) r.bad(`${path}.channels`, `must be a list of channels (it may be empty), not ${show(o.channels)}`);
  else {
    const ids = new Set<number>();
    const names = new Set<string>();
    o.channels.forEach((c, i) => {
      const ch = readChannel(r, c, `${path}.channels[${i}]`);
      if (ch === undefined) return;
      if (ids.has(ch.id)) r.bad(`${path}.channels[${i}].id`, `channel ${ch.id} is declared twice`);
      if (names.has(ch.name)) r.bad(`${path}.channels[${i}].name`, `"${ch.name}" names two channels (JSON telemetry finds channels by name)`);
      ids.add(ch.id);
      names.add(ch.name);
      channels.push(ch);
    });
  }
  const spec: DeviceTypeSpec = { type: o.type as string, name: name ?? '', channels };
  if (o.commands !== undefined) {
    if (!Array.isArray(o.commands)) r.bad(`${path}.commands`, `must be a list of commands, not ${show(o.commands)}`);
    else {
      const commands: CommandSpec[] = [];
      const names = new Set<string>();
      o.commands.forEach((c, i) => {
        const cmd = readCommand(r, c, `${path}.commands[${i}]`);
        if (cmd === undefined) return;
        if (names.has(cmd.name)) r.bad(`${path}.commands[${i}].name`, `"${cmd.name}" is declared twice`);
        names.add(cmd.name);
        commands.push(cmd);
      });
      spec.commands = commands;
    }
  }
  if (o.alarms !== undefined) {
    // Only the shape here: the gateway checks each rule with the one alarm rule validator it has
    // for every source of rules (gateway/alarms/rule.ts), naming its place in this file.
    if (!Array.isArray(o.alarms) || o.alarms.some((a) => typeof a !== 'object' || a === null || Array.isArray(a))) {
      r.bad(`${path}.alarms`, `must be a list of alarm rules ({ "name", "severity", "condition" }), not ${show(o.alarms)}`);
    } else spec.alarms = o.alarms as AlarmRuleSpec[];
  }
  return r.problems.length === before ? spec : undefined;
}

function readChannel(r: Reader, raw: unknown, path: string): ChannelSpec | undefined {
  const o = r.object(raw, path, CHANNEL_KEYS, 'a channel');
  if (o === undefined) return undefined;
  const before = r.problems.length;
  if (typeof o.id !== 'number' || !Number.isInteger(o.id) || o.id < 0 || o.id > 255) r.bad(`${path}.id`, `must be a whole number from 0 to 255 (the channel byte of a reading), not ${show(o.id)}`);
  const name = r.text(o.name, `${path}.name`, 64);
  const unit = o.unit === undefined ? '' : r.text(o.unit, `${path}.unit`, 32, true);
  if (!VALUE_TYPES.includes(o.type as ValueTypeName)) r.bad(`${path}.type`, `must be one of ${VALUE_TYPES.join(', ')}, not ${show(o.type)}`);
  const ch: ChannelSpec = { id: o.id as number, name: name ?? '', unit: unit ?? '', type: o.type as ValueTypeName };
  for (const k of ['min', 'max'] as const) {
    if (o[k] === undefined) continue;
    const v = r.number(o[k], `${path}.${k}`);
    if (v !== undefined) ch[k] = v;
  }
  if (ch.min !== undefined && ch.max !== undefined && ch.min >= ch.max) r.bad(`${path}.min`, `${ch.min} is not below max ${ch.max}`);
  if (ch.type === 'bool' && (ch.min !== undefined || ch.max !== undefined)) r.bad(`${path}.${ch.min !== undefined ? 'min' : 'max'}`, 'a bool channel has no range');
  return r.problems.length === before ? ch : undefined;
}

function readCommand(r: Reader, raw: unknown, path: string): CommandSpec | undefined {
  const o = r.object(raw, path, COMMAND_KEYS, 'a command');
  if (o === undefined) return undefined;
  const before = r.problems.length;
  if (typeof o.name !== 'string' || o.name.length === 0 || utf8.encode(o.name).byteLength > MAX_NAME_BYTES || /[\u0000-\u001f\u007f]/.test(o.name)) {
    r.bad(`${path}.name`, `must be a string of 1 to ${MAX_NAME_BYTES} bytes without control characters, not ${show(o.name)}`);
  }
  const hint = o.hint === undefined ? '' : r.text(o.hint, `${path}.hint`, 200, true);
  if (!('schema' in o)) r.bad(`${path}.schema`, 'is required: null when the command takes no arguments, else an object schema');
  const schema = parseArgsSchema(o.schema ?? null, `${path}.schema`, r.problems);
  const example = o.example === undefined ? null : o.example;
  if (schema !== undefined) {
    const wrong = checkArgs(schema, example);
    if (wrong !== undefined) r.bad(`${path}.example`, `does not fit the schema: ${wrong}`);
  }
  if (r.problems.length !== before) return undefined;
  return { name: o.name as string, hint: hint ?? '', example, schema: schema ?? null };
}

/** The problems as one line: `types[0].channels[1].unit: must be …; …` (at most `max`, then how many more). */
export function describeProblems(problems: readonly TypesProblem[], max = 5): string {
  const shown = problems.slice(0, max).map((p) => `${p.path}: ${p.message}`);
  if (problems.length > max) shown.push(`and ${problems.length - max} more`);
  return shown.join('; ');
}
