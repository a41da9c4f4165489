/**
 * The dashboard's words for a device's state: a device heard from without a connection the
 * gateway holds (JSON over HTTP) is not "never connected", which would tell an operator it is dead.
 */
import { describe, expect, it } from 'vitest';
import { offlineCauseText } from '../../dashboard/src/format.js';

describe('offline state words', () => {
  it('"never connected" only for a device never heard from', () => {
    expect(offlineCauseText(null, null)).toBe('never connected');
    expect(offlineCauseText(undefined)).toBe('never connected');
    expect(offlineCauseText(null, 1_796_536_552_822)).toBe('no connection');
    expect(offlineCauseText('timeout', 1_796_536_552_822)).toBe('timed out');
  });
});
