/**
 * Real outside programs the tests drive (mosquitto, influxd, chromium). Where one is missing a
 * test may skip, except under REQUIRE_SERVICES=1 (CI), where a missing program fails the run.
 */
import { findProgram } from '../../simulator/services/index.js';

export { findProgram };

/** The program's path; undefined (skip) when missing, and an error when REQUIRE_SERVICES=1. */
export function requireProgram(name: string, debianPackage: string): string | undefined {
  const path = findProgram(name);
  if (!path && process.env.REQUIRE_SERVICES === '1') {
    throw new Error(`${name} is not installed but REQUIRE_SERVICES=1: apt-get install -y ${debianPackage}`);
  }
  return path;
}
