/**
 * The baseline: what the common tutorials build. A `ws` WebSocketServer; each device message is
 * parsed with the codec's decodeFrame and forwarded to the one dashboard client as JSON
 * (JSON.stringify per frame, one send per frame). Devices are checked against the fleet token at
 * upgrade, as the gateway does. Counts go to $BENCH_COUNTER_FILE (hot-counter.ts) and `GET /count`.
 * Usage: node ws-baseline.js <fleetKey> [port]; prints `BENCH_READY {"port":…}` when listening.
 */
import { createServer } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeFrame } from '../../../devices/codec/index.js';
import { fleetToken } from '../../../devices/token.js';
import { HotCounter } from '../hot-counter.js';
import { boundLifetime } from './lifetime.js';

const fleetKey = process.argv[2] ?? '';
const counter = new HotCounter(process.env.BENCH_COUNTER_FILE);
let errors = 0;
let connections = 0;
let dashboard: WebSocket | undefined;

const server = createServer((req, res) => {
  if (req.url === '/count') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ frames: counter.frames, readings: counter.readings, errors, connections, dashboardBuffered: dashboard?.bufferedAmount ?? 0 }));
    return;
  }
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });

function authorized(id: string, header: string | undefined): boolean {
  const given = Buffer.from(header?.replace(/^Bearer /, '') ?? '');
  const want = Buffer.from(fleetToken(fleetKey, id));
  return given.length === want.length && timingSafeEqual(given, want);
}

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/dashboard') {
    wss.handleUpgrade(req, socket, head, (ws) => {
      dashboard = ws;
      ws.on('close', () => {
        if (dashboard === ws) dashboard = undefined;
      });
    });
    return;
  }
  const id = url.searchParams.get('id') ?? '';
  if (url.pathname !== '/device' || !authorized(id, req.headers.authorization)) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    connections++;
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (frame instanceof Error) {
        errors++;
        return;
      }
      counter.add(1, frame.type === 1 ? frame.readings.length : 0);
      dashboard?.send(JSON.stringify({ device: id, ...frame }));
    });
    ws.on('close', () => connections--);
    ws.on('error', () => {});
  });
});
server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => {
  const port = (server.address() as { port: number }).port;
  process.stdout.write(`BENCH_READY ${JSON.stringify({ port })}\n`);
});
boundLifetime();
