/**
 * The gateway: wires config, auth, device table, ingest, acks, storage and the HTTP/WebSocket
 * server together, with one lifecycle: start() then an idempotent close().
 * Shutdown order: stop listening, say goodbye to devices (1001), flush acks and cursors, close storage.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CLOSE_CODES } from '../devices/codec/index.js';
import { AckScheduler } from './acks.js';
import { Backbone } from './cluster/backbone.js';
import { Cluster } from './cluster/cluster.js';
import { Authenticator, loadRegistry, type RegistryEntry } from './auth.js';
import type { GatewayConfig } from './config.js';
import { CursorStore } from './cursors.js';
import { deviceSocketRoute } from './device-socket.js';
import { DeviceTable } from './devices.js';
import { Ingest } from './ingest.js';
import { silentLogger, type Logger } from './log.js';
import { CommandJournal } from './commands/journal.js';
import { CommandService } from './commands/commands.js';
import { LiveHub } from './live/hub.js';
import { liveSocketRoute } from './live/socket.js';
import { SseHub } from './live/sse.js';
import { createMetrics } from './metrics.js';
import { httpHandler } from './routes.js';
import { GatewayStats } from './stats.js';
import { defaultDashboardDir, StaticFiles } from './static.js';
import { MqttBridge } from './mqtt/bridge.js';
import { EmbeddedBroker } from './mqtt/embedded.js';
import { Presence } from './presence.js';
import { createStorage, type Storage } from './storage/index.js';
import { HttpServer, loadUws } from './uws.js';
import type { Registry } from 'prom-client';

export interface GatewayDeps {
  log?: Logger;
  storage?: Storage;
  /** /metrics text from more than this process (--workers: the sum over workers), given the local registry. */
  metrics?: (local: Registry) => () => Promise<string>;
}

export class Gateway {
  readonly operatorToken: string;
  /** True when the operator token was generated at start (so it must be printed). */
  readonly operatorTokenGenerated: boolean;
  readonly devices: DeviceTable;
  readonly ingest: Ingest;
  readonly storage: Storage;
  readonly log: Logger;
  readonly presence: Presence;
  readonly commands: CommandService;
  readonly live: LiveHub;
  readonly stats: GatewayStats;
  private sse: SseHub | undefined;
  private readonly auth: Authenticator;
  private readonly cursors: CursorStore;
  private readonly acks: AckScheduler;
  private servers: HttpServer[] = [];
  /** Plain HTTP/WebSocket port beside TLS (--plaintext-port), 0 when none. */
  plaintextPort = 0;
  private deviceRoute: ReturnType<typeof deviceSocketRoute> | undefined;
  private mqtt: EmbeddedBroker | undefined;
  private bridge: MqttBridge | undefined;
  /** Set when this instance is part of a cluster (--cluster-url, bridge mode, or --workers). */
  readonly cluster: Cluster | undefined;
  /** Port of the embedded MQTT broker, 0 when off. */
  mqttPort = 0;
  /** Plain MQTT port beside mqtts:// (--mqtt-plaintext-port), 0 when none. */
  mqttPlaintextPort = 0;
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  private closing: Promise<void> | undefined;
  /** Storage passed in by the caller is the caller's to close. */
  private readonly ownsStorage: boolean;
  private readonly metricsFrom: GatewayDeps['metrics'];
  port = 0;

  constructor(
    readonly config: GatewayConfig,
    deps: GatewayDeps = {},
  ) {
    this.log = deps.log ?? silentLogger();
    const registry: Map<string, RegistryEntry> = config.registry ? loadRegistry(config.registry) : new Map();
    this.operatorTokenGenerated = !config.operatorToken;
    this.operatorToken = config.operatorToken ?? randomBytes(24).toString('hex');
    this.auth = new Authenticator(registry, config.fleetKey, this.operatorToken);
    this.devices = new DeviceTable(registry.values());
    this.presence = new Presence(this.devices, this.log);
    this.storage =
      deps.storage ??
      createStorage({
        influx: config.influx,
        dataDir: config.dataDir,
        memoryPoints: config.memoryPoints,
        influxRetentionPolicy: config.influxRetentionPolicy,
        influxRetention: config.influxRetention,
        bufferPoints: config.storageBufferPoints,
        spillMaxBytes: config.spillMaxBytes,
        batchPoints: config.influxBatchPoints,
        flushMs: config.influxFlushMs,
        log: this.log,
      });
    this.ownsStorage = deps.storage === undefined;
    this.metricsFrom = deps.metrics;
    this.ingest = new Ingest(this.storage, { maxFrameBytes: config.maxFrameBytes, maxReadings: config.maxReadings, rangeAcks: config.mqttUrl !== undefined });
    this.cursors = new CursorStore(config.dataDir);
    this.commands = new CommandService(this.devices, new CommandJournal(config.dataDir), this.log, {
      maxQueued: config.commandQueue,
      maxArgsBytes: config.commandMaxArgsBytes,
      defaultTtlMs: config.commandTtl,
      defaultTimeoutMs: config.commandTimeout,
      keepFinished: 200,
    });
    this.ingest.onResult((device, result) => this.commands.onResult(device, result));
    this.presence.onConnect((device) => this.commands.dispatch(device));
    this.presence.onDisconnect((device) => this.commands.deviceDisconnected(device));
    this.stats = new GatewayStats(this.devices, this.ingest, this.commands, () => ({
      liveClients: this.live.clients.size + (this.sse?.clients ?? 0),
      liveDropped: this.live.dropped,
      storage: { kind: this.storage.kind, ...this.storage.health() },
    }));
    this.live = new LiveHub(this.devices, () => this.stats.sample(), {
      flushMs: config.liveFlushMs,
      maxPointsPerChannel: config.liveMaxPoints,
      replay: config.liveReplay,
      replayBytes: config.liveReplayBytes,
      budgetBytes: config.liveBudget,
    });
    this.ingest.onTelemetry((device, h, batch) => {
      this.live.streams.add(device, h, batch);
      this.live.touch(device);
    });
    this.presence.onConnect((device) => this.live.touch(device));
    this.presence.onDisconnect((device) => this.live.touch(device));
    this.commands.on('change', (c) => this.live.command(c));
    const clusterUrl = config.clusterUrl ?? config.mqttUrl;
    if (clusterUrl !== undefined) {
      const instance = config.instanceId ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40)}-${process.pid}-${randomBytes(2).toString('hex')}`;
      const sameBroker = config.clusterUrl === undefined;
      const backbone = new Backbone(
        {
          url: clusterUrl,
          username: sameBroker ? config.mqttUsername : undefined,
          password: sameBroker ? config.mqttPassword : undefined,
          ca: sameBroker && config.mqttCa !== undefined ? readFileSync(config.mqttCa) : undefined,
          cluster: config.mqttShareGroup,
          instance,
          flushMs: 20,
          setting: sameBroker ? '--mqtt-url' : '--cluster-url',
        },
        this.log,
      );
      this.cluster = new Cluster(backbone, {
        devices: this.devices,
        auth: this.auth,
        ingest: this.ingest,
        presence: this.presence,
        commands: this.commands,
        storeReplicas: this.storage.kind === 'memory',
        log: this.log,
      });
      this.cluster.attach();
      this.devices.instance = instance;
    }
    this.acks = new AckScheduler(this.ingest, this.cursors, this.storage, config.ackInterval, Math.floor(config.deviceSendBudget / 2), config.mqttUrl !== undefined);
  }

  /** The URL the gateway answers on (with localhost for a wildcard host). */
  get url(): string {
    const host = this.config.host === '0.0.0.0' || this.config.host === '::' ? 'localhost' : this.config.host;
    return `${this.config.cert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /** mqtt://host:port of the embedded broker, if it runs. */
  get mqttUrl(): string | undefined {
    return this.mqttPort ? this.url.replace(/^https?:/, this.config.cert ? 'mqtts:' : 'mqtt:').replace(/:\d+$/, `:${this.mqttPort}`) : undefined;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`start() called on a gateway that is ${this.state}`);
    this.state = 'starting';
    const c = this.config;
    const { native } = loadUws(c.allowUwsFallback);
    if (!native) {
      this.log.warn(
        'uWebSockets.js runs on its ws fallback (--allow-uws-fallback): it is several times slower and lacks WebSocket upgrades and publish, ' +
          'so only the HTTP API and probes work. Run on Node 20 with the native binary for devices and dashboards.',
      );
    }
    for (const [id, cur] of this.cursors.open()) {
      const d = this.devices.getOrCreate(id, this.auth.entry(id));
      d.seq.restore(cur.epoch, cur.contig);
      d.durableEpoch = cur.epoch;
      d.durableContig = cur.contig;
    }
    await this.storage.start();
    this.commands.start();
    // Before listening: what the cluster knows of devices and commands arrives first.
    await this.cluster?.backbone.start();
    const tls = c.cert !== undefined && c.key !== undefined ? { certFile: c.cert, keyFile: c.key } : undefined;
    // With TLS, plaintext is served beside it only on its own port, when asked for.
    const servers = [new HttpServer({ tls })];
    if (tls && c.plaintextPort !== 0) servers.push(new HttpServer());
    this.deviceRoute = deviceSocketRoute(this.devices, this.auth, this.ingest, this.presence, this.log, {
      maxFrameBytes: c.maxFrameBytes,
      maxDevices: c.maxDevices,
      duplicateId: c.duplicateId as 'replace' | 'reject',
      idleTimeoutSeconds: c.idleTimeout,
      deviceSendBudget: c.deviceSendBudget,
      errorLogIntervalMs: 60_000,
    });
    const liveRoute = liveSocketRoute(this.live, this.auth);
    for (const server of servers) {
      server.socket('/device', this.deviceRoute);
      server.socket('/live', liveRoute);
    }
    this.live.publisher = {
      publish: (topic, text) => {
        for (const server of servers) server.publish(topic, text, false);
      },
    };
    this.sse = new SseHub(this.live);
    const dashboard = new StaticFiles(c.dashboardDir ?? defaultDashboardDir());
    if (!dashboard.available) this.log.warn({ dir: dashboard.dir }, 'the dashboard is not built, so / answers 503: run `npm run build`');
    const metrics = createMetrics({
      devices: this.devices,
      ingest: this.ingest,
      live: this.live,
      commands: this.commands,
      acksSent: () => this.acks.acksSent,
      liveClients: () => this.live.clients.size + (this.sse?.clients ?? 0),
      storage: () => ({ ...this.storage.health() }),
      ...(this.cluster ? { cluster: () => this.cluster!.backbone } : {}),
    });
    this.live.observeLatency = (s) => metrics.liveLatency.observe(s);
    const handler = httpHandler({
      devices: this.devices,
      auth: this.auth,
      storage: this.storage,
      commands: this.commands,
      commandMaxArgsBytes: c.commandMaxArgsBytes,
      sse: this.sse,
      metrics: this.metricsFrom ? { contentType: metrics.registry.contentType, metrics: this.metricsFrom(metrics.registry) } : metrics.registry,
      dashboard,
      ready: () => this.readiness(),
      running: () => this.state !== 'closing' && this.state !== 'closed',
    });
    for (const server of servers) server.http(handler);
    this.servers = servers;
    this.port = await servers[0]!.listen(c.host, c.port);
    if (servers[1]) this.plaintextPort = await servers[1].listen(c.host, c.plaintextPort);
    if (c.mqttUrl !== undefined) {
      this.bridge = new MqttBridge(this.devices, this.auth, this.ingest, this.presence, this.log, {
        url: c.mqttUrl,
        username: c.mqttUsername,
        password: c.mqttPassword,
        ca: c.mqttCa !== undefined ? readFileSync(c.mqttCa) : undefined,
        shareGroup: c.mqttShareGroup,
        idleTimeoutMs: c.idleTimeout * 1000,
      });
      await this.bridge.start();
    } else if (c.mqttPort !== 0) {
      this.mqtt = new EmbeddedBroker(this.devices, this.auth, this.ingest, this.presence, this.log, {
        host: c.host,
        port: c.mqttPort,
        maxDevices: c.maxDevices,
        duplicateId: c.duplicateId as 'replace' | 'reject',
        drainTimeoutMs: c.mqttDrainTimeout,
        connectTimeoutMs: 10_000,
        // A frame plus the PUBLISH header, topic (≤ 150 bytes) and packet id.
        maxPacketBytes: c.maxFrameBytes + 256,
        tls: c.cert !== undefined && c.key !== undefined ? { cert: readFileSync(c.cert), key: readFileSync(c.key) } : undefined,
        plaintextPort: c.mqttPlaintextPort,
      });
      this.mqtt.onDelivered = (deviceId, commandId) => this.commands.delivered(deviceId, commandId, 'MQTT PUBACK from the device');
      await this.mqtt.start();
      this.mqttPort = this.mqtt.port;
      this.mqttPlaintextPort = this.mqtt.plaintextPort;
    }
    this.acks.start();
    this.live.start();
    this.state = 'running';
    this.log.info({ url: this.url, mqtt: this.mqttUrl ?? 'off', storage: this.storage.kind }, 'gateway listening');
  }

  /**
   * Ready means: listening, the broker (embedded or bridged) up, storage reachable. Storage that is
   * degraded (points waiting or spilling, nothing lost) still reports ready, with its state shown;
   * storage that is down (refusing frames with STORAGE_FULL, or about to) does not, with the reason.
   */
  readiness(): { ready: boolean; checks: Record<string, string> } {
    const health = this.storage.health();
    const listening = this.state === 'running';
    const broker = this.bridge ? (this.bridge.connected ? 'ok' : 'disconnected') : this.mqtt ? 'ok' : 'off';
    const storage = health.status === 'ok' ? 'ok' : `${health.status}: ${health.detail ?? ''}`.trim();
    const checks: Record<string, string> = { listening: listening ? 'ok' : this.state, broker, storage };
    if (this.cluster) checks.cluster = this.cluster.backbone.connected ? 'ok' : 'disconnected';
    return {
      ready: listening && broker !== 'disconnected' && health.status !== 'down' && checks.cluster !== 'disconnected',
      checks,
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'closing';
    for (const server of this.servers) server.stopListening();
    if (wasRunning) {
      // Let storage settle what it can (bounded), then ack it before saying goodbye, so devices
      // resend as little as possible; what is not settled stays unacked and comes back.
      await this.storage.whenDurable(this.ingest.lastTicket, 2000);
      this.acks.flush(Date.now());
      this.deviceRoute?.closeAll(CLOSE_CODES.GOING_AWAY, 'gateway shutting down', 'shutdown');
      this.mqtt?.markShutdown();
      // Let the close frames go out before the process may exit.
      await new Promise((r) => setTimeout(r, 50));
    }
    this.live.stop();
    this.sse?.close();
    await this.mqtt?.close();
    await this.bridge?.close();
    // After the devices' goodbyes, so the other instances hear where each one's frames were safe.
    await this.cluster?.backbone.close();
    this.acks.stop();
    this.commands.close();
    this.cursors.close();
    if (this.ownsStorage) await this.storage.close();
    this.state = 'closed';
    this.log.info('gateway stopped');
  }
}
