/**
 * Names → channels: a JSON message's readings become the typed readings a binary frame carries,
 * through the device's type (devices/device-types.ts), looked up at each message so a type that
 * changes is used at once. A bool channel takes true/false, a number channel a finite number that
 * fits its value type (f32 values are rounded to f32, as the binary path stores them).
 */
import { ValueType, type TelemetryBatch, type ValueTypeName } from '../../devices/codec/index.js';
import { deviceType } from '../../devices/device-types.js';
import type { JsonMessage, JsonProblem } from './parse.js';

const F32_MAX = 3.4028234663852886e38;
const TYPE_CODE: Record<ValueTypeName, ValueType> = { f32: ValueType.F32, f64: ValueType.F64, i32: ValueType.I32, bool: ValueType.Bool };

/**
 * Fills `batch` (offsets 0: every reading is at the message's time) with the message's readings
 * for a device of type `type`; a problem leaves the batch's content undefined.
 */
export function fillReadings(type: string | undefined, deviceId: string, m: JsonMessage, batch: TelemetryBatch): JsonProblem | undefined {
  const spec = deviceType(type);
  if (m.names.length > batch.capacity) return { code: 'TOO_MANY_READINGS', message: `the message has ${m.names.length} readings; the limit is ${batch.capacity} (--max-readings)` };
  if (spec === undefined && m.names.length > 0) {
    return {
      code: 'UNKNOWN_CHANNEL',
      message: `device ${deviceId} has no device type${type ? ` ("${type}" is not one)` : ''}, so "${m.names[0]!.slice(0, 64)}" names no channel: give it a type (PATCH /api/devices/${deviceId} {"type": …}, GET /api/device-types lists them), or an id like climate-…`,
    };
  }
  for (let i = 0; i < m.names.length; i++) {
    const name = m.names[i]!;
    const ch = spec!.channels.find((c) => c.name === name);
    if (ch === undefined) {
      return { code: 'UNKNOWN_CHANNEL', message: `"${name.slice(0, 64)}" is not a channel of type ${spec!.type} (its channels: ${spec!.channels.map((c) => c.name).join(', ')})` };
    }
    const v = m.values[i]!;
    const t = TYPE_CODE[ch.type];
    let value: number;
    if (t === ValueType.Bool) {
      if (typeof v !== 'boolean') return { code: 'JSON_BAD_VALUE', message: `"${name}" is a bool channel: send true or false, not ${v}` };
      value = v ? 1 : 0;
    } else {
      if (typeof v !== 'number') return { code: 'JSON_BAD_VALUE', message: `"${name}" is a ${ch.type} channel: send a number, not ${v}` };
      if (t === ValueType.I32 && !(Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff)) return { code: 'JSON_BAD_VALUE', message: `"${name}" is an i32 channel: ${v} is not a whole number from -2147483648 to 2147483647` };
      if (t === ValueType.F32 && Math.abs(v) > F32_MAX) return { code: 'JSON_BAD_VALUE', message: `"${name}" is an f32 channel: ${v} is beyond ±3.4e38` };
      value = t === ValueType.F32 ? Math.fround(v) : v;
    }
    batch.channels[i] = ch.id;
    batch.types[i] = t;
    batch.values[i] = value;
    batch.offsets[i] = 0;
  }
  batch.count = m.names.length;
  return undefined;
}
