/**
 * A device's commands leave in order even when its connection refuses one: the queue stops at the
 * refused command instead of sending the ones behind it first.
 *
 * A stand-in link, not a real socket: uWS refuses every send once its buffer is over the budget,
 * so through a real WebSocket all commands behind a refused one are refused in the same pass and
 * skipping cannot reorder them. A link that refuses by message size (a budget the message itself
 * would overflow, as a session port or another transport may have) can take a small command right
 * after refusing a big one; the queue must not let it overtake.
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, FrameType, type CommandFrame } from '../../devices/codec/index.js';
import { CommandJournal } from '../../gateway/commands/journal.js';
import { CommandService } from '../../gateway/commands/commands.js';
import { DeviceTable, type DeviceLink } from '../../gateway/devices.js';
import { silentLogger } from '../../gateway/log.js';
import { tempDir } from '../helpers/gateway.js';

/** Takes a frame only while it fits in what is left of `room` bytes. */
class BudgetLink implements DeviceLink {
  readonly transport = 'ws';
  readonly remoteAddress = 'test';
  readonly sent: string[] = [];
  constructor(public room: number) {}
  send(bytes: Uint8Array): 'sent' | 'queued' | 'dropped' {
    if (bytes.byteLength > this.room) return 'dropped';
    const f = decodeFrame(bytes);
    if (!(f instanceof Error) && f.type === FrameType.Command) this.sent.push((f as CommandFrame).name);
    return 'sent';
  }
  close(): void {}
  bufferedAmount(): number {
    return 0;
  }
}

describe('command dispatch across a refused send', () => {
  it('holds the commands behind a refused one, then sends them all in order', () => {
    const devices = new DeviceTable([]);
    const device = devices.getOrCreate('valve-1', undefined);
    const link = new BudgetLink(1000);
    devices.markOnline(device, link, Date.now());
    const commands = new CommandService(devices, new CommandJournal(tempDir('gw-cmd-')), silentLogger(), {
      maxQueued: 10,
      maxArgsBytes: 8192,
      defaultTtlMs: 60_000,
      defaultTimeoutMs: 60_000,
      keepFinished: 10,
    });
    commands.start();
    try {
      const big = commands.create('valve-1', { name: 'big', args: 'x'.repeat(2000) }).command;
      const small = commands.create('valve-1', { name: 'small', args: 1 }).command;
      // The big one does not fit: it and everything behind it wait.
      expect(link.sent).toEqual([]);
      expect([big.state, small.state]).toEqual(['queued', 'queued']);
      link.room = 1_000_000;
      commands.dispatch(device);
      expect(link.sent).toEqual(['big', 'small']);
      expect([big.state, small.state]).toEqual(['sent', 'sent']);
    } finally {
      commands.close();
    }
  });
});
