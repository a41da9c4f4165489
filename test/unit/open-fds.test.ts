import { closeSync, openSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { fdsByStat, OpenFds } from '../../gateway/open-fds.js';

const opened: number[] = [];
afterEach(() => {
  for (const fd of opened.splice(0)) closeSync(fd);
});
const open40 = () => {
  for (let i = 0; i < 40; i++) opened.push(openSync('/dev/null', 'r'));
};
/** The truth, as prom-client counts it: a listing, minus the listing's own fd. */
const listed = () => readdirSync('/proc/self/fd').length - 1;
/** Test files in other threads of this process open and close files meanwhile: a count is near, not equal. */
const near = (n: number, want: number) => expect(Math.abs(n - want)).toBeLessThanOrEqual(8);

describe('open file descriptors (gateway_process_open_fds)', () => {
  it('this kernel gives the count as the size of /proc/self/fd, so a scrape needs no listing', () => {
    // Linux ≥ 6.2; CI's and this machine's kernels are newer. An older one falls back to a listing (below).
    expect(OpenFds.forThisKernel()?.method).toBe('stat');
    const before = fdsByStat()!;
    near(before, listed());
    open40();
    near(fdsByStat()!, before + 40);
    near(new OpenFds('stat').count(), listed());
  });

  it('the fallback listing runs in the background: each call answers the count the previous one started', async () => {
    const fds = new OpenFds('listing');
    const settled = async (want: (n: number) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const n = fds.count();
        if (want(n)) return n;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('the background listing never answered');
    };
    const before = await settled(Number.isFinite);
    near(before, listed());
    open40();
    near(await settled((n) => n >= before + 36), listed());
  });
});
