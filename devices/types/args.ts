/**
 * Command argument schemas: a small subset of JSON Schema, enough to say what a command takes and
 * to refuse anything else before it is queued (README "Device types"). A command's `schema` is
 * either `null` (it takes no arguments: args must be null or left out) or an object schema:
 *
 *   { "type": "object",
 *     "properties": { "<name>": { "type": "number" | "integer" | "string" | "boolean",
 *                                 "minimum"?, "maximum"?, "minLength"?, "maxLength"?, "enum"?, "description"? } },
 *     "required"?: ["<name>", …], "minProperties"?, "maxProperties"?, "additionalProperties"?: false | true }
 *
 * `additionalProperties` defaults to false: a property the schema does not name is refused. Pure,
 * no I/O: the gateway, the simulator and tests share it.
 */

export type ArgType = 'number' | 'integer' | 'string' | 'boolean';
type Scalar = number | string | boolean;

export interface ArgSchema {
  type: ArgType;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  enum?: Scalar[];
  description?: string;
}

export interface ArgsSchema {
  type: 'object';
  properties: Record<string, ArgSchema>;
  required?: string[];
  minProperties?: number;
  maxProperties?: number;
  additionalProperties?: boolean;
}

/** Something wrong in a types file: where (a path like `types[0].commands[1].schema`) and what. */
export interface TypesProblem {
  path: string;
  message: string;
}

const ARG_TYPES: readonly ArgType[] = ['number', 'integer', 'string', 'boolean'];
const SCHEMA_KEYS = new Set(['type', 'properties', 'required', 'minProperties', 'maxProperties', 'additionalProperties']);
const ARG_KEYS = new Set(['type', 'minimum', 'maximum', 'minLength', 'maxLength', 'enum', 'description']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** Reads a schema from a types file; problems are pushed (with paths under `path`) and make it undefined. */
export function parseArgsSchema(raw: unknown, path: string, problems: TypesProblem[]): ArgsSchema | null | undefined {
  if (raw === null) return null;
  const before = problems.length;
  const bad = (p: string, message: string) => void problems.push({ path: p, message });
  if (!isObject(raw)) return void bad(path, `must be null (no arguments) or an object schema {"type": "object", "properties": {…}}, not ${show(raw)}`);
  for (const k of Object.keys(raw)) if (!SCHEMA_KEYS.has(k)) bad(`${path}.${k}`, `unknown key "${k}" (a schema has ${[...SCHEMA_KEYS].join(', ')})`);
  if (raw.type !== 'object') bad(`${path}.type`, `must be "object" (arguments are a JSON object; use null for none), not ${show(raw.type)}`);
  const properties: Record<string, ArgSchema> = {};
  if (!isObject(raw.properties)) bad(`${path}.properties`, 'must be an object naming each argument: {"ms": {"type": "integer"}}');
  else for (const [name, p] of Object.entries(raw.properties)) {
    const arg = parseArg(p, `${path}.properties.${name}`, problems);
    if (arg) properties[name] = arg;
  }
  const schema: ArgsSchema = { type: 'object', properties };
  if (raw.required !== undefined) {
    if (!Array.isArray(raw.required) || !raw.required.every((r) => typeof r === 'string')) bad(`${path}.required`, 'must be a list of property names');
    else {
      for (const r of raw.required as string[]) if (isObject(raw.properties) && !(r in raw.properties)) bad(`${path}.required`, `names "${r}", which is not in properties`);
      schema.required = raw.required as string[];
    }
  }
  for (const k of ['minProperties', 'maxProperties'] as const) {
    if (raw[k] === undefined) continue;
    if (!isCount(raw[k])) bad(`${path}.${k}`, `must be a whole number from 0, not ${show(raw[k])}`);
    else schema[k] = raw[k];
  }
  if (schema.minProperties !== undefined && schema.maxProperties !== undefined && schema.minProperties > schema.maxProperties) bad(`${path}.minProperties`, 'is above maxProperties');
  if (raw.additionalProperties !== undefined) {
    if (typeof raw.additionalProperties !== 'boolean') bad(`${path}.additionalProperties`, 'must be true or false (schemas for extra properties are not supported)');
    else schema.additionalProperties = raw.additionalProperties;
  }
  return problems.length === before ? schema : undefined;
}

function parseArg(raw: unknown, path: string, problems: TypesProblem[]): ArgSchema | undefined {
  const before = problems.length;
  const bad = (p: string, message: string) => void problems.push({ path: p, message });
  if (!isObject(raw)) return void bad(path, `must be an object like {"type": "integer", "minimum": 0}, not ${show(raw)}`);
  for (const k of Object.keys(raw)) if (!ARG_KEYS.has(k)) bad(`${path}.${k}`, `unknown key "${k}" (an argument has ${[...ARG_KEYS].join(', ')})`);
  if (!ARG_TYPES.includes(raw.type as ArgType)) return void bad(`${path}.type`, `must be one of ${ARG_TYPES.join(', ')}, not ${show(raw.type)}`);
  const arg: ArgSchema = { type: raw.type as ArgType };
  const numeric = arg.type === 'number' || arg.type === 'integer';
  for (const k of ['minimum', 'maximum'] as const) {
    if (raw[k] === undefined) continue;
    if (!numeric) bad(`${path}.${k}`, `applies to numbers, and this argument is a ${arg.type}`);
    else if (typeof raw[k] !== 'number' || !Number.isFinite(raw[k])) bad(`${path}.${k}`, `must be a number, not ${show(raw[k])}`);
    else arg[k] = raw[k];
  }
  if (arg.minimum !== undefined && arg.maximum !== undefined && arg.minimum > arg.maximum) bad(`${path}.minimum`, `${arg.minimum} is above maximum ${arg.maximum}`);
  for (const k of ['minLength', 'maxLength'] as const) {
    if (raw[k] === undefined) continue;
    if (arg.type !== 'string') bad(`${path}.${k}`, `applies to strings, and this argument is a ${arg.type}`);
    else if (!isCount(raw[k])) bad(`${path}.${k}`, `must be a whole number from 0, not ${show(raw[k])}`);
    else arg[k] = raw[k];
  }
  if (raw.enum !== undefined) {
    if (!Array.isArray(raw.enum) || raw.enum.length === 0) bad(`${path}.enum`, 'must be a non-empty list of allowed values');
    else {
      raw.enum.forEach((v, i) => {
        if (describeMismatch(arg, v) !== undefined) bad(`${path}.enum[${i}]`, `${show(v)} is not a ${arg.type}`);
      });
      arg.enum = raw.enum as Scalar[];
    }
  }
  if (raw.description !== undefined) {
    if (typeof raw.description !== 'string') bad(`${path}.description`, 'must be a string');
    else arg.description = raw.description;
  }
  return problems.length === before ? arg : undefined;
}

/** Why `v` is not of the argument's type, or undefined when it is. */
function describeMismatch(arg: ArgSchema, v: unknown): string | undefined {
  switch (arg.type) {
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v) ? undefined : 'a whole number';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? undefined : 'a number';
    case 'string':
      return typeof v === 'string' ? undefined : 'a string';
    case 'boolean':
      return typeof v === 'boolean' ? undefined : 'true or false';
  }
}

function checkArg(arg: ArgSchema, v: unknown, path: string): string | undefined {
  const want = describeMismatch(arg, v);
  if (want !== undefined) return `${path} must be ${want}, not ${show(v)}`;
  if (arg.enum !== undefined && !arg.enum.includes(v as Scalar)) return `${path} must be one of ${arg.enum.map(show).join(', ')}, not ${show(v)}`;
  if (typeof v === 'number') {
    if ((arg.minimum !== undefined && v < arg.minimum) || (arg.maximum !== undefined && v > arg.maximum)) {
      const range = arg.minimum !== undefined && arg.maximum !== undefined ? `from ${arg.minimum} to ${arg.maximum}` : arg.minimum !== undefined ? `at least ${arg.minimum}` : `at most ${arg.maximum}`;
      return `${path} must be ${range}, not ${v}`;
    }
  }
  if (typeof v === 'string') {
    if (arg.minLength !== undefined && v.length < arg.minLength) return `${path} must be at least ${arg.minLength} characters long`;
    if (arg.maxLength !== undefined && v.length > arg.maxLength) return `${path} must be at most ${arg.maxLength} characters long`;
  }
  return undefined;
}

/**
 * Checks a command's arguments against its schema: undefined when they fit, else one sentence that
 * names the argument (`args.ms must be from 1 to 86400000, not 0`).
 */
export function checkArgs(schema: ArgsSchema | null, args: unknown): string | undefined {
  if (schema === null) return args === null || args === undefined ? undefined : `takes no arguments: args must be null or left out, not ${show(args)}`;
  if (!isObject(args)) return `args must be a JSON object${Object.keys(schema.properties).length ? ` with ${Object.keys(schema.properties).join(', ')}` : ''}, not ${show(args)}`;
  const names = Object.keys(args);
  if (schema.additionalProperties !== true) {
    for (const n of names) {
      if (!(n in schema.properties)) return `args.${n} is not an argument it takes (it takes ${Object.keys(schema.properties).join(', ') || 'none'})`;
    }
  }
  for (const r of schema.required ?? []) if (args[r] === undefined) return `args.${r} is required`;
  if (schema.minProperties !== undefined && names.length < schema.minProperties) return `args must have at least ${schema.minProperties} of ${Object.keys(schema.properties).join(', ')}`;
  if (schema.maxProperties !== undefined && names.length > schema.maxProperties) return `args may have at most ${schema.maxProperties} of ${Object.keys(schema.properties).join(', ')}, not ${names.join(' and ')}`;
  for (const n of names) {
    const arg = schema.properties[n];
    if (arg === undefined) continue;
    const problem = checkArg(arg, args[n], `args.${n}`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
