/** Finding the outside programs the tests and the bench drive (influxd, mosquitto, chromium, taskset). */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The program's path, looked up in the system folders and then $PATH; undefined when missing. */
export function findProgram(name: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The version a program prints (`pattern`'s first group), or undefined when it is missing. */
export function versionOf(program: string, args: string[], pattern: RegExp): string | undefined {
  const bin = findProgram(program);
  if (!bin) return undefined;
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 5000 });
  return pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1];
}

/** Whether processes can be pinned to a core (`taskset`, util-linux). */
export const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

/** A new empty folder under the system temp folder; the caller removes it. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
