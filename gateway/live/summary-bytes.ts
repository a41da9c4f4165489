/**
 * A device's summary in the fleet view's deltas, written as bytes: the same text as
 * `JSON.stringify(device.toJSON(local))`, byte for byte (the unit test holds the two together), but
 * without the dozen objects toJSON builds per device. At one frame per device per second the fleet
 * view writes one summary per frame, and those objects and JSON.stringify's growing strings were
 * three quarters of everything the gateway allocated (young-generation collections every ~250 ms,
 * 6–8 ms each: the tail of its latency). A device with shares from other cluster instances
 * (merged counters and last values) is rarer and still goes through toJSON.
 */
import type { DeviceState } from '../devices.js';
import type { JsonBytes } from './json-bytes.js';

/** Writes `{…}` of the device's DeviceSummary. */
export function writeSummary(w: JsonBytes, d: DeviceState, local: string | null): void {
  if (d.elsewhere !== undefined && d.elsewhere.size > 0) {
    w.utf8(JSON.stringify(d.toJSON(local)));
    return;
  }
  const online = d.online;
  const link = d.link;
  const entry = d.entry;
  const epoch = d.window?.epoch;
  w.raw('{"id":').string(d.id);
  w.raw(',"online":').bool(online);
  w.raw(',"lastSeen":').numberOrNull(d.lastSeen || null);
  w.raw(',"type":').stringOrNull(d.type);
  w.raw(',"name":').stringOrNull(entry?.name);
  w.raw(',"labels":{');
  const labels = entry?.labels;
  let first = true;
  if (labels !== undefined) {
    for (const k in labels) {
      if (!first) w.raw(',');
      first = false;
      w.string(k).raw(':').string(labels[k]!);
    }
  }
  w.raw('},"disabled":').bool(entry?.disabled === true);
  w.raw(',"transport":').stringOrNull(online ? link?.transport : null);
  // A bridged device's connection is the external broker's: no instance holds it.
  w.raw(',"instance":').stringOrNull(online && !link?.shared ? (link?.instance ?? (local || null)) : null);
  w.raw(',"connectedAt":').numberOrNull(d.connectedAt || null);
  w.raw(',"disconnectedAt":').numberOrNull(d.disconnectedAt || null);
  w.raw(',"offlineCause":').stringOrNull(online ? null : d.offlineCause);
  w.raw(',"offlineDetail":').stringOrNull(online ? null : d.offlineDetail);
  w.raw(',"epoch":').numberOrNull(epoch);
  w.raw(',"ackedSeq":').numberOrNull(d.ack?.ackedIn(epoch));
  w.raw(',"counters":{"connections":').number(d.connections);
  w.raw(',"frames":').number(d.frames);
  w.raw(',"readings":').number(d.readings);
  w.raw(',"duplicates":').number(d.duplicates);
  w.raw(',"gaps":').number(d.gaps);
  w.raw(',"errors":').number(d.errors);
  w.raw('},"lastError":').stringOrNull(d.lastErrorCode);
  w.raw(',"last":{');
  const l = d.last;
  if (l !== undefined) {
    // Channel order as JSON.stringify gives integer keys: ascending. Few channels: a selection, no sorted copy.
    const ch = l.channels;
    let prev = -1;
    for (let n = 0; n < ch.length; n++) {
      let at = -1;
      for (let i = 0; i < ch.length; i++) if (ch[i]! > prev && (at < 0 || ch[i]! < ch[at]!)) at = i;
      prev = ch[at]!;
      w.raw(n === 0 ? '"' : ',"').number(prev).raw('":{"value":');
      if (l.types[at] === 4) w.bool(l.values[at] === 1);
      else w.number(l.values[at]!);
      w.raw(',"time":').number(l.times[at]!).raw('}');
    }
  }
  w.raw('}}');
}
