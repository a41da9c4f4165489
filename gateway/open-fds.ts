/**
 * How many file descriptors the gateway has open (one per connection), for
 * gateway_process_open_fds, without stopping the event loop. prom-client lists /proc/self/fd at
 * each scrape: 16–30 ms of the loop at 10,000 devices. Even run in libuv's thread pool, the listing
 * took the core from the event loop for ~20 ms at each scrape (the gateway's loop and its pool
 * share the cores it is given), and every frame meanwhile waited: the bench's dashboard p99.
 */
import { readdir, statSync } from 'node:fs';

const FD_DIR = '/proc/self/fd';

export type FdCountMethod = 'stat' | 'listing';

/** Linux ≥ 6.2 gives /proc/self/fd's entry count as its size: one stat, about 15 µs at 10,000 fds. */
export function fdsByStat(): number | undefined {
  try {
    const size = statSync(FD_DIR).size;
    // Older kernels say 0; a process always has stdin, stdout and stderr.
    return size > 0 ? size : undefined;
  } catch {
    return undefined;
  }
}

/** Counts the open fds; `count()` answers at once, so a scrape never waits for it. */
export class OpenFds {
  private listed = NaN;
  private listing = false;

  constructor(readonly method: FdCountMethod) {
    if (method === 'listing') this.relist();
  }

  /** The method this kernel supports: stat where it gives the count, else a background listing. */
  static forThisKernel(): OpenFds | undefined {
    if (fdsByStat() !== undefined) return new OpenFds('stat');
    try {
      statSync(FD_DIR);
      return new OpenFds('listing');
    } catch {
      return undefined; // not Linux
    }
  }

  /**
   * The count now (stat), or with a listing the count the previous call started (at most one
   * scrape interval old; exact at rest). NaN before the first listing ends.
   */
  count(): number {
    if (this.method === 'stat') return fdsByStat() ?? NaN;
    this.relist();
    return this.listed;
  }

  private relist(): void {
    if (this.listing) return;
    this.listing = true;
    readdir(FD_DIR, (err, fds) => {
      this.listing = false;
      // Minus the one the listing itself had open.
      if (!err) this.listed = fds.length - 1;
    });
  }
}
