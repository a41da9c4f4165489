/**
 * Over a link that confirms what it took (publishReliable: the bridge's broker PUBACK, a socket
 * write), a command is `sent` only once the link says so; one the link refuses at once stays
 * `queued` and holds back the ones behind it. A stand-in link, so the test decides when the
 * confirmation comes (the bridge test with a real Mosquitto covers the real one).
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, FrameType, type CommandFrame } from '../../devices/codec/index.js';
import { CommandJournal } from '../../gateway/commands/journal.js';
import { CommandService } from '../../gateway/commands/commands.js';
import { DeviceTable, type DeviceLink } from '../../gateway/devices.js';
import { silentLogger } from '../../gateway/log.js';
import { tempDir } from '../helpers/gateway.js';

class ConfirmingLink implements DeviceLink {
  readonly transport = 'mqtt';
  readonly remoteAddress = 'test';
  /** Refuse at once, as the bridge does without its broker. */
  down = false;
  readonly published: { name: string; done: (err?: Error) => void }[] = [];
  send(): 'sent' | 'queued' | 'dropped' {
    return 'sent';
  }
  publishReliable(bytes: Uint8Array, done: (err?: Error) => void): void {
    if (this.down) return done(new Error('no broker'));
    const f = decodeFrame(bytes);
    if (!(f instanceof Error) && f.type === FrameType.Command) this.published.push({ name: (f as CommandFrame).name, done });
  }
  close(): void {}
  bufferedAmount(): number {
    return 0;
  }
}

function setup() {
  const devices = new DeviceTable([]);
  const device = devices.getOrCreate('valve-1', undefined);
  const link = new ConfirmingLink();
  devices.markOnline(device, link, Date.now());
  const commands = new CommandService(devices, new CommandJournal(tempDir('gw-cmd-')), silentLogger(), { maxQueued: 10, maxArgsBytes: 8192, defaultTtlMs: 60_000, defaultTimeoutMs: 60_000, keepFinished: 10 });
  commands.start();
  return { device, link, commands };
}

describe('commands over a link that confirms what it took', () => {
  it('stays queued until the link confirms, is not published twice meanwhile, then is sent', () => {
    const { device, link, commands } = setup();
    try {
      const c = commands.create('valve-1', { name: 'open', args: 1 }).command;
      expect(link.published.map((p) => p.name)).toEqual(['open']);
      expect(c.state).toBe('queued');
      commands.dispatch(device); // the retry tick
      expect(link.published).toHaveLength(1);
      link.published[0]!.done();
      expect(c.state).toBe('sent');
      expect(c.history.map((h) => h.state)).toEqual(['queued', 'sent']);
    } finally {
      commands.close();
    }
  });

  it('a link that refuses at once leaves the command and those behind it queued, and a later try sends them in order', () => {
    const { device, link, commands } = setup();
    try {
      link.down = true;
      const a = commands.create('valve-1', { name: 'a', args: 1 }).command;
      const b = commands.create('valve-1', { name: 'b', args: 2 }).command;
      expect([a.state, b.state]).toEqual(['queued', 'queued']);
      link.down = false;
      commands.dispatch(device);
      expect(link.published.map((p) => p.name)).toEqual(['a', 'b']);
      for (const p of link.published) p.done();
      expect([a.state, b.state]).toEqual(['sent', 'sent']);
    } finally {
      commands.close();
    }
  });

  it('a publish that fails later leaves the command queued for the next try', () => {
    const { device, link, commands } = setup();
    try {
      const c = commands.create('valve-1', { name: 'open', args: 1 }).command;
      link.published[0]!.done(new Error('connection closed'));
      expect(c.state).toBe('queued');
      commands.dispatch(device);
      expect(link.published).toHaveLength(2);
      link.published[1]!.done();
      expect(c.state).toBe('sent');
    } finally {
      commands.close();
    }
  });
});
