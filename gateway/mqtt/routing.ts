/**
 * The message router aedes uses (its `mq`), shaped for a gateway that consumes device uplinks
 * itself. Plain aedes collapses under many concurrent publishers (157k → 11k msgs/s in DESIGN.md):
 * it hands a whole socket read (~700 packets) to mqemitter at once, and mqemitter queues what is
 * over its `concurrency` (100) in arrays it drains with Array#shift, O(queue length) per message
 * (59% of CPU in the profile). Here:
 *  - uplinks (devices/+/telemetry|results) were already taken in authorizePublish, and no device
 *    may subscribe to them, so they are not routed at all;
 *  - everything else goes to an mqemitter without the overflow queue (concurrency 0);
 *  - the completions of skipped messages run once per event-loop turn, never synchronously, so
 *    one busy socket cannot monopolise the loop.
 */
import mqemitter from 'mqemitter';
import { parseUplink } from './topics.js';

type Done = (err?: Error) => void;

export function gatewayRouter(): mqemitter.MQEmitter {
  const inner = mqemitter({ concurrency: 0, matchEmptyLevels: true });
  let pending: Done[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const list = pending;
    pending = [];
    for (let i = 0; i < list.length; i++) list[i]!();
  };
  const later = (cb: Done) => {
    pending.push(cb);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  const noop: Done = () => {};
  const router = {
    on: (topic: string, fn: (m: mqemitter.Message, done: () => void) => void, done?: () => void) => (inner.on(topic, fn, done), router),
    removeListener: (topic: string, fn: (m: mqemitter.Message, done: () => void) => void, done?: () => void) => (inner.removeListener(topic, fn, done), router),
    removeAllListeners: (topic: string, done?: () => void) => ((inner as unknown as { removeAllListeners(t: string, d?: () => void): void }).removeAllListeners(topic, done), router),
    close: (cb: () => void) => inner.close(cb),
    get current() {
      return inner.current;
    },
    get concurrent() {
      return inner.concurrent;
    },
    emit(packet: mqemitter.Message, cb?: Done) {
      // aedes sets clientId only on publishes that came from a client.
      if (packet.clientId !== undefined && parseUplink(packet.topic) !== undefined) later(cb ?? noop);
      else inner.emit(packet, cb);
      return router;
    },
  };
  return router as unknown as mqemitter.MQEmitter;
}
