/** SDK devices for tests: the test fleet's token, quick reconnects, errors left to assertions. */
import { DeviceClient, type DeviceClientOptions } from '../../devices/sdk/index.js';
import { deviceToken } from './gateway.js';

/** A device added to `list`, so the test's afterEach can close it. */
export function sdkDevice(url: string, id: string, list: DeviceClient[], extra: Partial<DeviceClientOptions> = {}): DeviceClient {
  const c = new DeviceClient({ url, deviceId: id, token: deviceToken(id), backoffInitialMs: 50, backoffMaxMs: 300, ...extra });
  c.on('error', () => {});
  list.push(c);
  return c;
}
