/**
 * The first connection of the gateway's own MQTT clients (bridge, cluster backbone). At start a
 * broker that cannot be reached is a configuration error: fail at the first refusal, naming the
 * setting. Once running, the client reconnects by itself.
 */
import type { MqttClient } from 'mqtt';
import { GatewayError } from '../errors.js';

export function firstConnect(client: MqttClient, o: { url: string; code: string; what: string; setting: string; timeoutMs?: number }): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise<void>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(t);
      client.removeListener('connect', ok);
      reject(new GatewayError(o.code, `could not connect to ${o.what} at ${redact(o.url)} (${o.setting}): ${why}`));
    };
    const t = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    const ok = () => {
      clearTimeout(t);
      client.removeListener('error', onError);
      resolve();
    };
    const onError = (err: Error) => fail(err.message);
    client.once('connect', ok);
    client.once('error', onError);
  }).catch((err: unknown) => {
    client.end(true);
    throw err;
  });
}

/** The URL with its password masked, for logs and errors. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
