/**
 * The transport contract (transport-contract.ts) in bridge mode: devices connect to an external
 * Mosquitto, and the gateway takes their frames through its shared subscription.
 */
import mqtt from 'mqtt';
import { encodeTelemetry } from '../../devices/codec/index.js';
import { mosquittoPath, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { RawMqttDevice } from '../helpers/raw-mqtt-device.js';
import { waitFor } from '../helpers/wait.js';
import { transportContract } from './transport-contract.js';

let broker: Mosquitto | undefined;
let groups = 0;
let probes = 0;

const OWNS_CONNECTIONS = 'the external broker holds device connections';

transportContract({
  name: 'bridge',
  unavailable: mosquittoPath() === undefined ? 'mosquitto is not installed' : undefined,
  skip: {
    'SDK across a restart':
      "the device's connection is to the broker and outlives the gateway; the SDK resends only on a new connection, so what it publishes while no gateway subscribes waits for its next reconnect",
    'SDK across a SIGKILL': 'as across a restart: the SDK resends only on a new connection to the broker',
    replacement: `${OWNS_CONNECTIONS}: the broker itself takes over a duplicate client id, the gateway never sees the older connection`,
    'replacement across transports': `${OWNS_CONNECTIONS} and the gateway cannot close one; presence follows whichever connection sent last`,
    'normal close': `${OWNS_CONNECTIONS}: presence comes from traffic, a device is offline (timeout) after --idle-timeout`,
  },
  // The gateway cannot close a bridged device's connection: error frame, counted, frame dropped.
  kicksBadDevice: false,
  closeCodes: false,
  start: async () => {
    broker = await startMosquitto();
    const url = broker.url;
    // A group per gateway process, so a process from an earlier case never takes a share.
    return { flags: () => ['--mqtt-url', url, '--mqtt-share-group', `contract-${process.pid}-${++groups}`], stop: () => broker!.stop() };
  },
  // The shared subscription goes out right after CONNACK, but nothing says when the broker applied
  // it: publish probe frames until the gateway has seen one.
  ready: async (gw) => {
    const id = `bridge-probe-${++probes}`;
    const probe = await mqtt.connectAsync(broker!.url, { clientId: id, protocolVersion: 5, reconnectPeriod: 0 });
    try {
      let seq = 0;
      await waitFor(async () => {
        probe.publish(`devices/${id}/telemetry`, Buffer.from(encodeTelemetry({ epoch: 1, seq: seq++, timestamp: 1 }, [{ channel: 0, value: 0 }])), { qos: 1 });
        return (await gw.api(`/api/devices/${id}`)).status === 200;
      }, 'the bridged gateway to take a probe frame', 10_000, 100);
    } finally {
      probe.end(true);
    }
  },
  connect: (_gw, id) => RawMqttDevice.connect(broker!.url, id, undefined, 5),
  sdkUrl: () => broker!.url,
});
