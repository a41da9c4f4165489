/** The transport contract (transport-contract.ts) over WebSocket: /device on the gateway's HTTP port. */
import { deviceToken } from '../helpers/gateway.js';
import { RawDevice } from '../helpers/raw-device.js';
import { transportContract } from './transport-contract.js';

transportContract({
  name: 'ws',
  kicksBadDevice: true,
  closeCodes: true,
  start: async () => ({ flags: () => ['--mqtt-port', '0'], stop: async () => {} }),
  connect: (gw, id) => RawDevice.connect(gw.ws, id, deviceToken(id)),
  sdkUrl: (gw) => gw.ws,
});
