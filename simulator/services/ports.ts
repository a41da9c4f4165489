/** Ports on 127.0.0.1 for throwaway servers: one that is free now, and whether something listens on one. */
import { connect, createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. For servers that must come back on the same
 * port (a restarted influxd, a gateway a test kills and starts again); others should listen on 0.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Two distinct free ports (a server with a second listener). */
export async function freePorts(): Promise<[number, number]> {
  const a = await freePort();
  let b = await freePort();
  for (let i = 0; b === a && i < 10; i++) b = await freePort();
  return [a, b];
}

/** True when a TCP connection to 127.0.0.1:port succeeds. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
