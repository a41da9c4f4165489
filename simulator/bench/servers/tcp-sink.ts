/**
 * The do-nothing sink that shows the load generator's own ceiling: it answers the WebSocket upgrade
 * (a valid 101), then reads and discards. `GET /count` (a plain HTTP request on the same port)
 * answers the bytes it discarded (also in $BENCH_COUNTER_FILE); at 70 bytes per framed 64-byte frame
 * that is the generator's rate.
 * Usage: node tcp-sink.js [port]; prints `BENCH_READY {"port":…}` when listening.
 */
import { createServer, type Socket } from 'node:net';
import { acceptKey } from '../ws-wire.js';
import { HotCounter } from '../hot-counter.js';
import { boundLifetime } from './lifetime.js';

/** Counts bytes (as "frames"); bench.ts divides by the framed frame size. */
const counter = new HotCounter(process.env.BENCH_COUNTER_FILE, 1);
let connections = 0;

function onSocket(socket: Socket): void {
  let head = Buffer.alloc(0);
  socket.on('error', () => {});
  const onHead = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) {
      if (head.length > 16_384) socket.destroy();
      return;
    }
    socket.off('data', onHead);
    const text = head.subarray(0, end).toString('latin1');
    if (text.startsWith('GET /count')) {
      const body = JSON.stringify({ bytes: counter.frames, connections });
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(text)?.[1] ?? '';
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
    connections++;
    counter.add(head.length - end - 4, 0);
    socket.on('data', (c: Buffer) => counter.add(c.length, 0));
    socket.on('close', () => connections--);
  };
  socket.on('data', onHead);
}

const server = createServer(onSocket);
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', 4096, () => {
  const port = (server.address() as { port: number }).port;
  process.stdout.write(`BENCH_READY ${JSON.stringify({ port })}\n`);
});
boundLifetime();
