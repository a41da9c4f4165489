/**
 * Loopback source addresses for fleets larger than one address's source ports: Linux hands out
 * the ports of ip_local_port_range (28,232 by default) per source address for connections to one
 * server port, so the generator's connection i comes from 127.0.0.(1 + ⌊i / perSource⌋). Every
 * 127.x address is the loopback interface's, so nothing needs configuring. Fleets of up to
 * perSource devices connect from 127.0.0.1 as before.
 */
import { readFileSync } from 'node:fs';

/** Connections per source address: a margin under the default port range (sockets in TIME_WAIT from earlier runs hold ports too). */
export const DEFAULT_PER_SOURCE = 20_000;

/** BENCH_CONNECTIONS_PER_SOURCE overrides (a narrower port range; the test of the spreading). */
export function connectionsPerSource(): number {
  const v = Number(process.env.BENCH_CONNECTIONS_PER_SOURCE);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_PER_SOURCE;
}

/** The source address of the generator's connection `index` to `host`; undefined: let the kernel choose (127.0.0.1). */
export function sourceAddress(host: string, index: number, perSource = connectionsPerSource()): string | undefined {
  if (host !== '127.0.0.1' || index < perSource) return undefined;
  const n = 1 + Math.floor(index / perSource);
  if (n > 254) throw new Error(`${index + 1} connections need more than 254 loopback source addresses at ${perSource} each`);
  return `127.0.0.${n}`;
}

/** Source ports per address that ip_local_port_range gives, when it can be read. */
export function sourcePortsPerAddress(): number | undefined {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return hi! - lo! + 1;
  } catch {
    return undefined; // not Linux
  }
}
