/**
 * The storage baseline: hand-built line protocol POSTed to influxd's /write over keep-alive, as many
 * requests in flight and points per request as the gateway's adapter uses, with the same lines
 * (measurement, tags, eight float fields, ms precision) the adapter writes for a bench frame.
 */
import { Agent, request } from 'node:http';
import { deviceId } from './devices.js';

export interface RawWriterOptions {
  /** http://127.0.0.1:port */
  url: string;
  db: string;
  rp: string;
  devices: number;
  batchPoints: number;
  inFlight: number;
}

function post(agent: Agent, url: URL, path: string, body: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path, agent, headers: { 'content-type': 'text/plain; charset=utf-8' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`POST ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

export class RawLineWriter {
  written = 0;
  failed = 0;
  lastError = '';
  private running = false;
  private readonly agent: Agent;
  private readonly url: URL;
  private readonly prefixes: string[];
  private t: number;
  private d = 0;
  private v = 0;
  /** Bodies built ahead, so a request never waits for its body to be built. */
  private readonly ready: Buffer[] = [];

  constructor(private readonly o: RawWriterOptions) {
    this.agent = new Agent({ keepAlive: true, maxSockets: o.inFlight });
    this.url = new URL(o.url);
    this.prefixes = Array.from({ length: o.devices }, (_, i) => `telemetry,device=${deviceId(i)},type=bench `);
    this.t = Date.now() - 3_600_000;
  }

  async ensureSchema(): Promise<void> {
    const q = `CREATE DATABASE "${this.o.db}" WITH DURATION 30d REPLICATION 1 NAME "${this.o.rp}"`;
    const r = await post(this.agent, this.url, `/query?q=${encodeURIComponent(q)}`, '');
    if (r.status !== 200) throw new Error(`influxd: ${q} → ${r.status} ${r.text}`);
  }

  start(): void {
    this.running = true;
    this.fill();
    for (let i = 0; i < this.o.inFlight; i++) void this.loop();
  }

  private fill(): void {
    while (this.ready.length < this.o.inFlight + 1) this.ready.push(Buffer.from(this.body()));
  }

  stop(): void {
    this.running = false;
  }

  close(): void {
    this.agent.destroy();
  }

  /** The next batch: devices take turns, each new line 1 ms after that device's previous one. */
  private body(): string {
    let s = '';
    for (let i = 0; i < this.o.batchPoints; i++) {
      if (this.d === this.prefixes.length) {
        this.d = 0;
        this.t++;
      }
      this.v = (this.v + 1) % 1000;
      s += `${this.prefixes[this.d++]}c8=0,c7=1,c6=412,c5=3.75,c4=1013.5,c3=48.25,c2=21.5,c1=${this.v} ${this.t}\n`;
    }
    return s;
  }

  private async loop(): Promise<void> {
    const path = `/write?db=${encodeURIComponent(this.o.db)}&rp=${encodeURIComponent(this.o.rp)}&precision=ms`;
    while (this.running) {
      const body = this.ready.shift() ?? Buffer.from(this.body());
      try {
        const sent = post(this.agent, this.url, path, body);
        this.fill();
        const r = await sent;
        if (r.status === 204) this.written += this.o.batchPoints;
        else {
          this.failed++;
          this.lastError = `${r.status} ${r.text.slice(0, 200)}`;
        }
      } catch (err) {
        this.failed++;
        this.lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}
