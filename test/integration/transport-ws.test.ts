/** The transport contract (transport-contract.ts) over WebSocket: /device on the gateway's HTTP port. */
import { deviceToken } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';
import { RawMqttDevice } from '../helpers/raw-mqtt-device.js';
import { transportContract } from './transport-contract.js';

transportContract({
  name: 'ws',
  kicksBadDevice: true,
  closeCodes: true,
  // The embedded broker runs too, for replacement across transports.
  start: async () => ({ flags: (mqttPort) => ['--mqtt-port', String(mqttPort)], stop: async () => {} }),
  connect: (gw, id) => RawDevice.connect(gw.ws, id, deviceToken(id)),
  sdkUrl: (gw) => gw.ws,
  other: { name: 'mqtt', connect: (gw, id) => RawMqttDevice.connect(`mqtt://127.0.0.1:${gw.mqttPort}`, id, deviceToken(id)) },
});
