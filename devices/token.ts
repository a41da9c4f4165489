import { createHmac } from 'node:crypto';

/** The token of a fleet-provisioned device: lowercase hex HMAC-SHA256(key = fleetKey, msg = deviceId), both UTF-8. */
export function fleetToken(fleetKey: string, deviceId: string): string {
  return createHmac('sha256', Buffer.from(fleetKey, 'utf8')).update(Buffer.from(deviceId, 'utf8')).digest('hex');
}
