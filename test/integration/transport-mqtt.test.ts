/** The transport contract (transport-contract.ts) over the gateway's embedded MQTT broker. */
import { deviceToken } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';
import { RawMqttDevice } from '../helpers/raw-mqtt-device.js';
import { transportContract } from './transport-contract.js';

transportContract({
  name: 'mqtt',
  kicksBadDevice: true,
  // MQTT 3.1.1 has no server close reason: the error frame before the close is the reason.
  closeCodes: false,
  start: async () => ({ flags: (mqttPort) => ['--mqtt-port', String(mqttPort)], stop: async () => {} }),
  connect: (gw, id) => RawMqttDevice.connect(`mqtt://127.0.0.1:${gw.mqttPort}`, id, deviceToken(id)),
  sdkUrl: (gw) => `mqtt://127.0.0.1:${gw.mqttPort}`,
  other: { name: 'ws', connect: (gw, id) => RawDevice.connect(gw.ws, id, deviceToken(id)) },
});
