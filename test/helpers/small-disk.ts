/**
 * A real, small file system for disk-full tests: a tmpfs mounted on a temp folder (needs root or
 * CAP_SYS_ADMIN). fill() takes every free byte with a filler file, so the next write that needs
 * room gets a short write and then ENOSPC from the kernel; free() gives the room back.
 * Where mounting is not permitted the tests skip, except under REQUIRE_SERVICES=1 (CI).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  dir: string;
  /** Takes every free byte (to the last one). */
  fill(): void;
  /** Gives back what fill() took. */
  free(): void;
  /** Unmounts (lazily when something still holds a file open) and removes the folder. */
  destroy(): void;
}

function mount(dir: string, kib: number): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', dir], { stdio: 'pipe' });
}

/** Whether this process may mount a tmpfs; under REQUIRE_SERVICES=1 it must. */
export function canMountSmallDisk(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'gw-disk-probe-'));
  try {
    mount(dir, 64);
    execFileSync('umount', [dir], { stdio: 'pipe' });
    return true;
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1') {
      throw new Error(`cannot mount a tmpfs for the disk-full tests (run as root or with CAP_SYS_ADMIN) but REQUIRE_SERVICES=1: ${(err as Error).message}`);
    }
    return false;
  } finally {
    rmdirSync(dir);
  }
}

export function mountSmallDisk(kib = 1024): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), 'gw-disk-'));
  mount(dir, kib);
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      try {
        // Big writes first, then smaller ones until not one byte more fits (bounded: the disk is small).
        for (const size of [65536, 4096, 1]) {
          const chunk = Buffer.alloc(size, 120);
          for (let i = 0; i < 1_000_000; i++) {
            try {
              if (writeSync(fd, chunk) < size) break;
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw err;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    free() {
      unlinkSync(filler);
    },
    destroy() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
