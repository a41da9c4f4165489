/**
 * Models for the types of a types file (simulate --types-file): a type the simulator knows keeps
 * its model for the channels it models (matched by name), and every other channel, of a known type
 * or a new one, gets plausible values from its declared range: a slow wander between min and max
 * with a little noise (whole numbers for i32), or a rarely flipping bool.
 */
import type { ChannelSpec, DeviceTypeSpec } from '../../devices/device-types.js';
import type { SensorModel } from './model.js';
import { clamp, derive, gauss, HOUR, MINUTE, smooth } from './noise.js';

/** A range for a channel that declares none or half of one. */
function rangeOf(c: ChannelSpec): [number, number] {
  const min = c.min ?? (c.max !== undefined ? Math.min(0, c.max - 100) : 0);
  const max = c.max ?? min + 100;
  return [min, max];
}

/** One channel's value at device time `t`, from its range alone. */
function plausible(c: ChannelSpec, seed: number, t: number): number {
  if (c.type === 'bool') return smooth(seed, t, 10 * MINUTE) > 0.8 ? 1 : 0;
  const [min, max] = rangeOf(c);
  const mid = (min + max) / 2;
  const half = (max - min) / 2;
  const v = clamp(mid + half * (0.6 * smooth(seed, t, HOUR) + 0.25 * smooth(seed ^ 0x5eed, t, 5 * MINUTE) + 0.02 * gauss(seed, t)), min, max);
  return c.type === 'i32' ? Math.round(v) : v;
}

/** The file's type, sampled by a known model where it has the channel and from ranges elsewhere. */
export class TypesFileModel implements SensorModel {
  /** For each channel of `spec`: its index in the base model's output, or -1. */
  private readonly from: Int32Array;
  private readonly seeds: Uint32Array;
  private readonly scratch: Float64Array;

  constructor(
    readonly spec: DeviceTypeSpec,
    /** The simulator's own model of this type, when it has one. */
    readonly base: SensorModel | undefined,
    seed: number,
  ) {
    const baseChannels = base?.spec.channels ?? [];
    this.from = Int32Array.from(spec.channels, (c) => baseChannels.findIndex((b) => b.name === c.name && b.type === c.type));
    this.seeds = Uint32Array.from(spec.channels, (c) => derive(seed, 0xc0de + c.id));
    this.scratch = new Float64Array(baseChannels.length);
  }

  sample(t: number, out: Float64Array): void {
    this.base?.sample(t, this.scratch);
    const channels = this.spec.channels;
    for (let i = 0; i < channels.length; i++) {
      const j = this.from[i]!;
      out[i] = j >= 0 ? this.scratch[j]! : plausible(channels[i]!, this.seeds[i]!, t);
    }
  }
}
