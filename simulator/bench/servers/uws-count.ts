/**
 * The ceiling: a uWS server whose message handler only counts. The same upgrade path as the
 * gateway's (/device?id=…), no auth, no parsing. Counts go to $BENCH_COUNTER_FILE (hot-counter.ts);
 * `GET /count` answers them too when the loop has time. Usage: node uws-count.js [port]; prints `BENCH_READY {"port":…}` when listening.
 */
import { createRequire } from 'node:module';
import type * as UwsTypes from 'uWebSockets.js';
import { HotCounter } from '../hot-counter.js';
import { boundLifetime } from './lifetime.js';

const require = createRequire(import.meta.url);
const uws = require('uWebSockets.js') as typeof UwsTypes;

const app = uws.App();
if (app.constructor?.name !== 'uWS.App') {
  process.stderr.write('uws-count: uWebSockets.js did not load its native binary (Node 20 needed)\n');
  process.exit(1);
}

const counter = new HotCounter(process.env.BENCH_COUNTER_FILE);
let connections = 0;

app.ws('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 120,
  maxBackpressure: 256 * 1024,
  open: () => {
    connections++;
  },
  message: () => {
    counter.add(1, 0);
  },
  close: () => {
    connections--;
  },
});
app.get('/count', (res) => {
  res.writeHeader('content-type', 'application/json').end(JSON.stringify({ frames: counter.frames, connections }));
});
app.listen('127.0.0.1', Number(process.argv[2] ?? 0), (socket) => {
  if (!socket) {
    process.stderr.write('uws-count: could not listen\n');
    process.exit(1);
  }
  const port = uws.us_socket_local_port(socket as unknown as UwsTypes.us_socket);
  process.stdout.write(`BENCH_READY ${JSON.stringify({ port })}\n`);
});
boundLifetime();
