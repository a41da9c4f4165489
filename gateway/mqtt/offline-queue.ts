/**
 * A bound on what the embedded broker keeps for a persistent session (clean=false) while it is
 * offline: an `$operator` integration that went away has every alarms/… message published for it
 * queued in aedes's memory, without limit. Like Mosquitto's `max_queued_messages` (default 1000):
 * once an offline session holds the limit, newer messages for it are dropped (the oldest are
 * kept), counted, and logged once per session until its queue drains. Sessions online are never
 * refused here: aedes delivers to them from this very queue and closes a client whose packet is
 * missing from it.
 */
import type { Logger } from '../log.js';

type Sub = { clientId: string };
type Callback = (...args: unknown[]) => void;

/** The part of an aedes persistence (aedes-persistence 11) that holds outgoing QoS 1/2 messages. */
export interface OutgoingStore {
  outgoingEnqueue(sub: Sub, packet: unknown, cb?: Callback): unknown;
  outgoingEnqueueCombi(subs: Sub[], packet: unknown, cb?: Callback): unknown;
  outgoingClearMessageId(client: { id: string }, packet: unknown, cb?: Callback): unknown;
}

export class OfflineQueueBound {
  /** Messages not queued for an offline session that held the limit already (metrics). */
  dropped = 0;
  /** Messages in each session's queue, as far as this bound has seen them go in and out. */
  private readonly queued = new Map<string, number>();
  /** Sessions warned about since their queue was last below the limit. */
  private readonly warned = new Set<string>();

  constructor(
    private readonly limit: number,
    /** Whether the session is connected now. */
    private readonly online: (clientId: string) => boolean,
    private readonly log: Logger,
  ) {}

  /**
   * Wraps the store's methods in place: aedes looks them up on every publish, and the memory
   * persistence is created inside aedes. A publish no persistent session subscribed to (every
   * device's telemetry) passes straight through.
   */
  guard(store: OutgoingStore): void {
    const enqueue = store.outgoingEnqueue.bind(store);
    const enqueueCombi = store.outgoingEnqueueCombi.bind(store);
    const clear = store.outgoingClearMessageId.bind(store);
    store.outgoingEnqueue = (sub, packet, cb) => {
      this.add(sub.clientId);
      return enqueue(sub, packet, cb);
    };
    store.outgoingEnqueueCombi = (subs, packet, cb) => enqueueCombi(subs.length === 0 ? subs : this.admit(subs), packet, cb);
    store.outgoingClearMessageId = (client, packet, cb) => {
      if (cb) {
        return clear(client, packet, (err, removed) => {
          if (removed) this.remove(client.id);
          cb(err, removed);
        });
      }
      return (clear(client, packet) as Promise<unknown>).then((removed) => {
        if (removed) this.remove(client.id);
        return removed;
      });
    };
  }

  /** The sessions this message may be queued for. */
  private admit(subs: Sub[]): Sub[] {
    let kept: Sub[] | undefined;
    for (let i = 0; i < subs.length; i++) {
      const id = subs[i]!.clientId;
      if ((this.queued.get(id) ?? 0) < this.limit || this.online(id)) {
        this.add(id);
        kept?.push(subs[i]!);
        continue;
      }
      kept ??= subs.slice(0, i);
      this.dropped++;
      if (!this.warned.has(id)) {
        this.warned.add(id);
        this.log.warn(
          { client: id, limit: this.limit },
          `MQTT session "${id}" is offline with ${this.limit} messages queued (--mqtt-max-queued): newer messages for it are dropped and counted in gateway_mqtt_queue_dropped_total until it reconnects and takes its queue. An $operator integration should read GET /api/alarms when it comes back`,
        );
      }
    }
    return kept ?? subs;
  }

  private add(id: string): void {
    this.queued.set(id, (this.queued.get(id) ?? 0) + 1);
  }

  private remove(id: string): void {
    const n = (this.queued.get(id) ?? 1) - 1;
    if (n <= 0) this.queued.delete(id);
    else this.queued.set(id, n);
    if (n < this.limit) this.warned.delete(id);
  }
}
