import { describe, expect, it } from 'vitest';
import { DeviceSequence, SeqWindow, Verdict, WINDOW } from '../../gateway/dedupe.js';

describe('SeqWindow', () => {
  it('accepts in-order seqs and advances the contiguous point', () => {
    const w = new SeqWindow(7, 0xffffffff);
    for (let s = 0; s < 1000; s++) expect(w.accept(s, false)).toBe(Verdict.New);
    expect(w.contig).toBe(999);
    expect(w.gaps).toBe(0);
  });

  it('drops replays at and below the contiguous point', () => {
    const w = new SeqWindow(1, 9);
    expect(w.accept(10, false)).toBe(Verdict.New);
    expect(w.accept(10, false)).toBe(Verdict.Duplicate);
    expect(w.accept(5, false)).toBe(Verdict.Duplicate);
    expect(w.contig).toBe(10);
  });

  it('takes reordered frames inside the window, once each', () => {
    const w = new SeqWindow(1, 0);
    expect(w.accept(3, false)).toBe(Verdict.New);
    expect(w.accept(2, false)).toBe(Verdict.New);
    expect(w.contig).toBe(0);
    expect(w.accept(3, false)).toBe(Verdict.Duplicate);
    expect(w.accept(1, false)).toBe(Verdict.New);
    expect(w.contig).toBe(3);
    expect(w.gaps).toBe(0);
  });

  it('wraps around 2^32', () => {
    const w = new SeqWindow(1, 0xfffffffd);
    expect(w.accept(0xfffffffe, false)).toBe(Verdict.New);
    expect(w.accept(0xffffffff, false)).toBe(Verdict.New);
    expect(w.accept(0, false)).toBe(Verdict.New);
    expect(w.accept(1, false)).toBe(Verdict.New);
    expect(w.contig).toBe(1);
    expect(w.accept(0xffffffff, false)).toBe(Verdict.Duplicate);
  });

  it('counts a gap the device declares and acks past it at once', () => {
    const w = new SeqWindow(1, 10);
    expect(w.accept(15, true)).toBe(Verdict.New);
    expect(w.contig).toBe(15);
    expect(w.gaps).toBe(4);
  });

  it('moves the contiguous point when a resend of a frame already taken carries GapBefore (issue 15 point 2)', () => {
    const w = new SeqWindow(1, 3);
    expect(w.accept(5, false)).toBe(Verdict.New); // 4 missing: contig waits at 3
    expect(w.accept(6, false)).toBe(Verdict.New);
    expect(w.contig).toBe(3);
    // The device dropped 4 and flags the oldest frame it keeps, 5, which it resends.
    expect(w.accept(5, true)).toBe(Verdict.Duplicate);
    expect(w.contig).toBe(6);
    expect(w.gaps).toBe(1);
  });

  it('gives up on seqs that fall out of the window, counting them', () => {
    const w = new SeqWindow(1, 0);
    expect(w.accept(2, false)).toBe(Verdict.New); // 1 missing
    // The window holds seqs up to WINDOW - 1 past contig, so 2 + WINDOW pushes contig to 3:
    // 1 and 3 are given up, 2 was seen.
    expect(w.accept(2 + WINDOW, false)).toBe(Verdict.New);
    expect(w.gaps).toBe(2);
    expect(w.contig).toBe(3);
    expect(w.accept(1, false)).toBe(Verdict.Duplicate);
    const far = new SeqWindow(1, 0);
    far.accept(5, false);
    far.accept(100_000, false);
    // contig jumps to 100000 - (WINDOW - 1); all of 1..contig but 5 are gaps; the rest may still come.
    const contig = 100_000 - (WINDOW - 1);
    expect(far.contig).toBe(contig);
    expect(far.gaps).toBe(contig - 1);
    expect(far.accept(contig + 1, false)).toBe(Verdict.New);
  });
});

describe('DeviceSequence', () => {
  it('tells a reboot (new epoch) from a replay, and still knows the previous boot', () => {
    const d = new DeviceSequence();
    expect(d.accept(1, 0, false)).toBe(Verdict.New);
    expect(d.accept(1, 1, false)).toBe(Verdict.New);
    expect(d.accept(2, 0, false)).toBe(Verdict.New); // rebooted: seq 0 again is new
    expect(d.accept(1, 1, false)).toBe(Verdict.Duplicate); // late replay from the old boot
    expect(d.accept(1, 2, false)).toBe(Verdict.New);
    expect(d.current!.epoch).toBe(2);
  });

  it('takes a new boot\'s early frames in any order, once each, and acks a first seq of 1 at once', () => {
    const d = new DeviceSequence();
    expect(d.accept(3, 1, false)).toBe(Verdict.New);
    expect(d.current!.contig).toBe(1);
    expect(d.accept(3, 0, false)).toBe(Verdict.New); // came late: still taken
    expect(d.accept(3, 0, false)).toBe(Verdict.Duplicate);
    expect(d.accept(3, 2, false)).toBe(Verdict.New);
    expect(d.current!.contig).toBe(2);
    // A device that starts further in (a persisted seq) starts the window where it is.
    expect(d.accept(4, 100_000, false)).toBe(Verdict.New);
    expect(d.current!.contig).toBe(100_000);
    expect(d.accept(4, 99_999, false)).toBe(Verdict.New);
    expect(d.accept(4, 100_000 - 300, false)).toBe(Verdict.Duplicate); // beyond the window: a replay
  });

  it('resumes from a restored cursor', () => {
    const d = new DeviceSequence();
    d.restore(9, 41);
    expect(d.accept(9, 41, false)).toBe(Verdict.Duplicate);
    expect(d.accept(9, 42, false)).toBe(Verdict.New);
  });
});
