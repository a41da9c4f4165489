/**
 * The cluster's fleet view (gateway/cluster/fleet-view.ts): what an instance tells the others of the
 * devices it counted. A device deleted here must not be told of after its deletion: the others would
 * make it again from the share (seen as a deleted device that never left another instance's list).
 */
import { describe, expect, it } from 'vitest';
import type { Backbone } from '../../gateway/cluster/backbone.js';
import { FleetView } from '../../gateway/cluster/fleet-view.js';
import { DeviceTable, type DeviceLink, type DeviceState } from '../../gateway/devices.js';
import type { Logger } from '../../gateway/log.js';

function view() {
  const sent: string[][] = [];
  const backbone = {
    connected: true,
    unsent: { summary: 0 },
    publishSummary: (json: string) => sent.push((JSON.parse(json) as { devices: [string][] }).devices.map((e) => e[0])),
    onSummary() {},
    onInstance() {},
  } as unknown as Backbone;
  const table = new DeviceTable([]);
  const fleet = new FleetView(backbone, table, (id) => table.getOrCreate(id, undefined), 1000, {} as Logger);
  let disconnect: (d: DeviceState, l: DeviceLink) => void = () => {};
  fleet.listen({
    ingest: { onTelemetry() {}, onDuplicate() {} },
    presence: { onConnect() {}, onDisconnect: (l) => (disconnect = l) },
  });
  return { sent, table, fleet, disconnect: (d: DeviceState) => disconnect(d, { transport: 'ws' } as DeviceLink) };
}

describe('cluster fleet view', () => {
  it('tells the others of a device that left here, but not of one deleted before the summary went out', () => {
    const { sent, table, fleet, disconnect } = view();
    const kept = table.getOrCreate('kept', undefined);
    const gone = table.getOrCreate('gone', undefined);
    for (const d of [kept, gone]) {
      d.connections = 1;
      disconnect(d);
    }
    table.remove('gone'); // deleted through the API within the summary interval
    fleet.publish();
    expect(sent).toEqual([['kept']]);
  });
});
