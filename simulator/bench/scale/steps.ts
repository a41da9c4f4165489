/**
 * The steps of the scaling section in bench.ts's list (`--only scale`, or any id below): CPU per
 * frame at a fixed load for `--workers 1`, 2 and the machine's most, and for a cluster of 3, in
 * interleaved rounds; then saturation for each worker count. About 2 minutes on 2 cores.
 */
import { cpus } from 'node:os';
import { findProgram } from '../../services/index.js';
import type { BenchKeys } from '../servers.js';
import { maxWorkers, saturationWorkerCounts } from './figures.js';
import { FIXED_RATES, measureRound, type ScaleRun } from './measure.js';
import type { SystemSpec } from './systems.js';

export const ROUNDS = 3;
export const CLUSTER_INSTANCES = 3;

export interface ScaleStep {
  id: string;
  estimateS: number;
  unavailable?: () => string | undefined;
  run: () => Promise<ScaleRun>;
}

export const fixedId = (s: SystemSpec, rate: number): string => `scale-cpu-${rate / 1000}k-${s.kind === 'workers' ? `workers-${s.workers}` : `cluster-${s.instances}`}`;
export const saturationId = (workers: number): string => `scale-saturation-workers-${workers}`;

/** The configurations of the fixed-load comparison, `--workers 1` (the reference) first. */
export function fixedSystems(cores: number): SystemSpec[] {
  const workers = [...new Set([1, 2, maxWorkers(cores)])];
  return [...workers.map((n): SystemSpec => ({ kind: 'workers', workers: n })), { kind: 'cluster', instances: CLUSTER_INSTANCES }];
}

const noMosquitto = () => (findProgram('mosquitto') ? undefined : 'not measured: mosquitto is not installed (Debian package mosquitto)');

export function scaleSteps(keys: BenchKeys, cores = cpus().length): ScaleStep[] {
  const fixed = FIXED_RATES.flatMap((rate) =>
    Array.from({ length: ROUNDS }, (_, round) =>
      fixedSystems(cores).map(
        (spec): ScaleStep => ({
          id: fixedId(spec, rate),
          estimateS: spec.kind === 'cluster' ? 13 : 10,
          ...(spec.kind === 'cluster' ? { unavailable: noMosquitto } : {}),
          run: () => measureRound('fixed', spec, round + 1, keys, rate),
        }),
      ),
    ).flat(),
  );
  const saturation = saturationWorkerCounts(cores).map(
    (n): ScaleStep => ({ id: saturationId(n), estimateS: 10, run: () => measureRound('saturation', { kind: 'workers', workers: n }, 1, keys) }),
  );
  return [...fixed, ...saturation];
}
