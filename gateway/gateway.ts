/**
 * The gateway: builds config, auth, device table, ingest, the ack ledger, storage, commands, live
 * fan-out and the HTTP/WebSocket server, and orders their lifecycle: start() then an idempotent close().
 * Shutdown order: stop listening, read what devices already sent, let storage settle it, ack it,
 * say goodbye to devices (1001), close the brokers, the cursors and storage.
 *
 * How the parts talk (one style everywhere): a module that has news declares typed subscription
 * methods, `onX(listener)`, backed by a plain listener list (cheap enough for the per-frame path:
 * no allocation per event); a module that wants the news subscribes to them itself, in its own
 * constructor or its `listen(sources)` / `attach()` method. No module assigns another's fields or
 * callbacks, and this file only passes each part its sources.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CLOSE_CODES, MAX_DEVICE_FRAME_BYTES } from '../devices/codec/index.js';
import { AckLedger } from './acks.js';
import { Alarms, type AlarmOptions } from './alarms/alarms.js';
import { typeRulesOf } from './alarms/rules.js';
import type { AlarmRule } from '../devices/api/json.js';
import { AlarmMqtt } from './alarms/mqtt-out.js';
import { Backbone } from './cluster/backbone.js';
import { Cluster } from './cluster/cluster.js';
import { Authenticator, loadRegistry, type RegistryEntry } from './auth.js';
import { deviceType, deviceTypes, type DeviceTypeSpec } from '../devices/device-types.js';
import { DeviceAdmin } from './registry/admin.js';
import { DeviceRegistry } from './registry/registry.js';
import { RegistryStore } from './registry/store.js';
import type { GatewayConfig } from './config.js';
import { CursorStore } from './cursors.js';
import { deviceSocketRoute } from './device-socket.js';
import { DeviceTable } from './devices.js';
import { Ingest } from './ingest.js';
import { jsonTelemetryRoute } from './json/http-route.js';
import { DeviceRate } from './json/rate.js';
import { SafeWaits } from './json/safety.js';
import { JsonTelemetry } from './json/telemetry.js';
import { silentLogger, type Logger } from './log.js';
import { CommandJournal } from './commands/journal.js';
import { CommandService } from './commands/commands.js';
import { LiveHub } from './live/hub.js';
import { liveSocketRoute } from './live/socket.js';
import { SseHub } from './live/sse.js';
import { OperatorAccess } from './login/access.js';
import { LoginCodes } from './login/codes.js';
import { loginLink } from './login/routes.js';
import { Sessions } from './login/sessions.js';
import { Signer } from './login/signing.js';
import type { LoginSync } from './login/sync.js';
import { createMetrics } from './metrics.js';
import { httpHandler } from './routes.js';
import { GatewayStats } from './stats.js';
import { defaultDashboardDir, StaticFiles } from './static.js';
import { MqttBridge } from './mqtt/bridge.js';
import { EmbeddedBroker } from './mqtt/embedded.js';
import { Presence } from './presence.js';
import { RefusalLog } from './session/refusal-log.js';
import { DeviceSessions } from './session/sessions.js';
import { createStorage, type Storage } from './storage/index.js';
import { DEMO_TYPES_FILE, TypesFile } from './types/types-file.js';
import { HttpServer, loadUws } from './uws.js';
import type { Registry } from 'prom-client';

/** Acks due in one interval above which slow senders' acks are stretched (each costs a syscall). */
const ACK_STRETCH_ABOVE = 100;
/** A stretched ack goes out once it covers this many frames (or after --ack-max-delay). */
const ACK_STRETCH_FRAMES = 8;
/**
 * A JSON message not safe by then is answered ACK_TIMEOUT (HTTP 503; MQTT: closed without PUBACK).
 * Longer than an InfluxDB write request may hang (10 s) before its batch goes to the spill file.
 */
const JSON_SAFE_TIMEOUT_MS = 20_000;

export interface GatewayDeps {
  log?: Logger;
  storage?: Storage;
  /** /metrics text from more than this process (--workers: the sum over workers), given the local registry. */
  metrics?: (local: Registry) => () => Promise<string>;
  /** Refusals are logged as one line per this many ms (default 10 s; tests shorten it). */
  refusalLogIntervalMs?: number;
  /** A JSON message not safe within this many ms is answered ACK_TIMEOUT (default 20 s; tests shorten it). */
  jsonSafeTimeoutMs?: number;
  /** Spent login codes and logouts shared with the other workers (--workers); default: this process alone. */
  loginSync?: LoginSync;
  /** A worker of one --workers gateway shares the HTTP ports with its siblings; any other gateway takes them exclusively. */
  sharedPorts?: boolean;
  /** Alarm timings (tests shorten the webhook backoff and the silent sweep). */
  alarms?: Pick<AlarmOptions, 'sweepMs' | 'webhooks'>;
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
  /** The session port every device transport adapts to; counts every refusal. */
  readonly sessions: DeviceSessions;
  private readonly refusalLog: RefusalLog;
  readonly commands: CommandService;
  readonly alarms: Alarms;
  private alarmMqtt: AlarmMqtt | undefined;
  readonly live: LiveHub;
  readonly stats: GatewayStats;
  /** The device types file in force, watched for changes. */
  readonly types: TypesFile;
  private sse: SseHub | undefined;
  private readonly auth: Authenticator;
  /** The device registry: the --registry file as import, with the management API's changes on top. */
  private readonly registry: DeviceRegistry;
  private readonly registryStore: RegistryStore;
  /** Device management (add, edit, rotate, disable, delete) without restarts. */
  readonly admin: DeviceAdmin;
  private readonly access: OperatorAccess;
  private readonly loginCodes: LoginCodes;
  private readonly cursors: CursorStore;
  private readonly journal: CommandJournal;
  private readonly acks: AckLedger;
  /** JSON telemetry (MQTT `…/telemetry/json`, POST /api/devices/{id}/telemetry) and when its answers may go out. */
  readonly json: JsonTelemetry;
  private readonly jsonWaits: SafeWaits;
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
  private readonly sharedPorts: boolean;
  port = 0;

  constructor(
    readonly config: GatewayConfig,
    deps: GatewayDeps = {},
  ) {
    this.log = deps.log ?? silentLogger();
    this.sharedPorts = deps.sharedPorts ?? false;
    // First: a bad types file is a config error (TYPES_INVALID), and devices get their types from it.
    this.types = new TypesFile(config.types ?? DEMO_TYPES_FILE, this.log);
    this.types.load();
    const fromFile: Map<string, RegistryEntry> = config.registry ? loadRegistry(config.registry) : new Map();
    this.registryStore = new RegistryStore(config.dataDir, { log: this.log });
    this.registry = new DeviceRegistry(fromFile, this.registryStore);
    this.operatorTokenGenerated = !config.operatorToken;
    this.operatorToken = config.operatorToken ?? randomBytes(24).toString('hex');
    this.auth = new Authenticator(this.registry, config.fleetKey, this.operatorToken);
    const signer = new Signer(this.operatorToken);
    this.loginCodes = new LoginCodes(signer, deps.loginSync);
    this.access = new OperatorAccess(this.auth, new Sessions(signer, config.sessionIdle * 1000, deps.loginSync));
    const clusterUrl = config.clusterUrl ?? config.mqttUrl;
    const instance = clusterUrl === undefined ? undefined : config.instanceId ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40)}-${process.pid}-${randomBytes(2).toString('hex')}`;
    this.devices = new DeviceTable(this.registry.values(), instance ?? null);
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
    this.ingest = new Ingest(this.storage, { maxFrameBytes: config.maxFrameBytes, maxReadings: config.maxReadings });
    this.cursors = new CursorStore(config.dataDir, { log: this.log });
    this.acks = new AckLedger(this.ingest, this.cursors, this.storage, {
      intervalMs: config.ackInterval,
      ...(config.ackMaxDelay > 0 ? { stretch: { above: ACK_STRETCH_ABOVE, frames: ACK_STRETCH_FRAMES, maxDelayMs: config.ackMaxDelay } } : {}),
      sendBudget: Math.floor(config.deviceSendBudget / 2),
      // Bridge mode: the other gateways of the share group take the other seqs.
      ranges: config.mqttUrl !== undefined,
    });
    this.journal = new CommandJournal(config.dataDir, { log: this.log });
    this.commands = new CommandService(this.devices, this.journal, this.log, {
      maxQueued: config.commandQueue,
      maxArgsBytes: config.commandMaxArgsBytes,
      defaultTtlMs: config.commandTtl,
      defaultTimeoutMs: config.commandTimeout,
      keepFinished: 200,
      instance,
    });
    this.commands.listen({ ingest: this.ingest, presence: this.presence });
    this.alarms = new Alarms(config.dataDir, this.devices, {
      log: this.log,
      typeRules: typeRulesIn(deviceTypes()),
      keepCleared: config.alarmKeepCleared,
      clustered: config.clusterUrl !== undefined || config.mqttUrl !== undefined,
      ...(deps.alarms?.sweepMs ? { sweepMs: deps.alarms.sweepMs } : {}),
      webhooks: { url: config.alarmWebhook, ...deps.alarms?.webhooks },
    });
    this.alarms.listen({ ingest: this.ingest, presence: this.presence });
    this.types.onChange((types) => this.alarms.rules.setTypeRules(typeRulesIn(types)));
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
    this.live.listen({ ingest: this.ingest, presence: this.presence, commands: this.commands, types: this.types, alarms: this.alarms });
    this.refusalLog = new RefusalLog(this.log, deps.refusalLogIntervalMs);
    this.jsonWaits = new SafeWaits(this.acks, this.storage, deps.jsonSafeTimeoutMs ?? JSON_SAFE_TIMEOUT_MS);
    this.json = new JsonTelemetry(this.ingest, this.jsonWaits, { maxBytes: config.maxFrameBytes, maxReadings: config.maxReadings });
    this.sessions = new DeviceSessions(
      this.devices,
      this.auth,
      this.ingest,
      this.presence,
      this.refusalLog,
      { maxDevices: config.maxDevices, duplicateId: config.duplicateId as 'replace' | 'reject' },
      this.json,
    );
    this.admin = new DeviceAdmin(this.registry, this.devices, this.sessions, this.storage, {
      fleetKey: config.fleetKey,
      knownType: (type) => deviceType(type) !== undefined,
      log: this.log,
    });
    this.live.listen({ fleet: this.admin });
    this.admin.onChange((d) => {
      if (!d.retired) return;
      this.alarms.deviceDeleted(d.id);
      this.commands.deviceDeleted(d.id);
    });
    if (clusterUrl !== undefined && instance !== undefined) {
      const sameBroker = config.clusterUrl === undefined;
      const backbone = new Backbone(
        {
          url: clusterUrl,
          username: sameBroker ? config.mqttUsername : undefined,
          password: sameBroker ? config.mqttPassword : undefined,
          ca: sameBroker && config.mqttCa !== undefined ? readFileSync(config.mqttCa) : undefined,
          cluster: config.mqttShareGroup,
          instance,
          setting: sameBroker ? '--mqtt-url' : '--cluster-url',
        },
        this.log,
      );
      this.cluster = new Cluster(backbone, {
        devices: this.devices,
        auth: this.auth,
        ingest: this.ingest,
        acks: this.acks,
        storage: this.storage,
        presence: this.presence,
        sessions: this.sessions,
        commands: this.commands,
        live: this.live,
        alarms: this.alarms,
        summaryMs: config.clusterSummaryMs,
        log: this.log,
      });
      this.cluster.attach();
      // Device management made on any instance holds on all of them.
      this.admin.onCommit((change) => backbone.publishRegistry(change));
      backbone.onRegistry((change) => this.admin.applyRemote(change));
    }
  }

  /** The URL the gateway answers on (with localhost for a wildcard host). */
  get url(): string {
    const host = this.config.host === '0.0.0.0' || this.config.host === '::' ? 'localhost' : this.config.host;
    return `${this.config.cert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /** A dashboard link with a new one-time login code (README "Operator login"). */
  loginLink(): string {
    return loginLink(this.url, this.loginCodes.issue().code);
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
    this.acks.restore((id) => this.devices.getOrCreate(id, this.auth.entry(id)));
    await this.storage.start();
    this.commands.start();
    this.alarms.start();
    // Before listening: what the cluster knows of devices and commands arrives first.
    await this.cluster?.backbone.start();
    const tls = c.cert !== undefined && c.key !== undefined ? { certFile: c.cert, keyFile: c.key } : undefined;
    // With TLS, plaintext is served beside it only on its own port, when asked for.
    const servers = [new HttpServer({ tls })];
    if (tls && c.plaintextPort !== 0) servers.push(new HttpServer());
    this.deviceRoute = deviceSocketRoute(this.sessions, {
      maxFrameBytes: c.maxFrameBytes,
      idleTimeoutSeconds: c.idleTimeout,
      deviceSendBudget: c.deviceSendBudget,
    });
    const liveRoute = liveSocketRoute(this.live, this.access);
    for (const server of servers) {
      server.socket('/device', this.deviceRoute);
      server.socket('/live', liveRoute);
    }
    this.live.onPublish((topic, text) => {
      for (const server of servers) server.publish(topic, text, false);
    });
    this.sse = new SseHub(this.live);
    const dashboard = new StaticFiles(c.dashboardDir ?? defaultDashboardDir());
    if (!dashboard.available) this.log.warn({ dir: dashboard.dir }, 'the dashboard is not built, so / answers 503: run `npm run build`');
    const metrics = createMetrics({
      devices: this.devices,
      ingest: this.ingest,
      live: this.live,
      commands: this.commands,
      refusals: this.sessions.refusals,
      acksSent: () => this.acks.acksSent,
      ackCursorFailures: () => this.acks.cursorFailures,
      liveClients: () => this.live.clients.size + (this.sse?.clients ?? 0),
      storage: () => ({ ...this.storage.health() }),
      files: () => ({
        cursors: { failing: this.cursors.failure !== undefined, refused: this.cursors.refused },
        commandJournal: { failing: this.journal.failure !== undefined, refused: this.journal.refused },
        deviceRegistry: { failing: this.registryStore.failure !== undefined, refused: this.registryStore.refused },
        alarms: { failing: this.alarms.book.failure !== undefined, refused: this.alarms.book.refused },
        alarmRules: { failing: this.alarms.rules.failure !== undefined, refused: this.alarms.rules.refused },
      }),
      alarms: () => ({
        open: this.alarms.counts(),
        transitions: this.alarms.book.transitions,
        unpersisted: this.alarms.book.unpersisted,
        webhooks: this.alarms.webhooks.counts,
        mqtt: this.alarmMqtt?.counts ?? { published: 0, failed: 0 },
      }),
      mqttQueueDropped: () => this.mqtt?.queueDropped ?? 0,
      deviceAdmin: () => this.admin.outcomes(),
      json: () => ({ messages: this.json.messages, timedOut: this.jsonWaits.timedOut }),
      ...(this.cluster ? { cluster: () => this.cluster!.counters() } : {}),
      types: () => ({ ...this.types.counts, valid: this.types.lastError === undefined }),
    });
    const handler = httpHandler({
      devices: this.devices,
      access: this.access,
      loginCodes: this.loginCodes,
      storage: this.storage,
      ...(this.cluster?.history ? { history: this.cluster.history } : {}),
      commands: this.commands,
      admin: this.admin,
      alarms: this.alarms,
      commandMaxArgsBytes: c.commandMaxArgsBytes,
      jsonTelemetry: jsonTelemetryRoute({ sessions: this.sessions, json: this.json, rate: new DeviceRate(c.httpTelemetryRate), maxBytes: c.maxFrameBytes }),
      sse: this.sse,
      metrics: this.metricsFrom ? { contentType: metrics.registry.contentType, metrics: this.metricsFrom(metrics.registry) } : metrics.registry,
      dashboard,
      ready: () => this.readiness(),
      running: () => this.state !== 'closing' && this.state !== 'closed',
    });
    for (const server of servers) server.http(handler);
    this.servers = servers;
    this.port = await servers[0]!.listen(c.host, c.port, { shared: this.sharedPorts, flag: '--port (GATEWAY_PORT)' });
    if (servers[1]) this.plaintextPort = await servers[1].listen(c.host, c.plaintextPort, { shared: this.sharedPorts, flag: '--plaintext-port (GATEWAY_PLAINTEXT_PORT)' });
    if (c.mqttUrl !== undefined) {
      this.bridge = new MqttBridge(this.sessions, this.log, {
        url: c.mqttUrl,
        username: c.mqttUsername,
        password: c.mqttPassword,
        ca: c.mqttCa !== undefined ? readFileSync(c.mqttCa) : undefined,
        shareGroup: c.mqttShareGroup,
        idleTimeoutMs: c.idleTimeout * 1000,
      });
      await this.bridge.start();
      this.alarmMqtt = new AlarmMqtt(this.bridge, this.log);
    } else if (c.mqttPort !== 0) {
      this.mqtt = new EmbeddedBroker(this.sessions, this.log, {
        host: c.host,
        port: c.mqttPort,
        drainTimeoutMs: c.mqttDrainTimeout,
        connectTimeoutMs: 10_000,
        // A frame plus the PUBLISH header, topic (≤ 150 bytes) and packet id.
        // Room for the topic and headers; up to the largest v1 frame a publish is read and answered FRAME_TOO_LARGE.
        maxPacketBytes: Math.max(c.maxFrameBytes, MAX_DEVICE_FRAME_BYTES) + 256,
        tls: c.cert !== undefined && c.key !== undefined ? { cert: readFileSync(c.cert), key: readFileSync(c.key) } : undefined,
        plaintextPort: c.mqttPlaintextPort,
        operator: (token) => this.auth.operator(token),
        maxQueued: c.mqttMaxQueued,
      });
      this.alarmMqtt = new AlarmMqtt(this.mqtt, this.log);
      this.commands.listen({ deliveries: this.mqtt });
      await this.mqtt.start();
      this.mqttPort = this.mqtt.port;
      this.mqttPlaintextPort = this.mqtt.plaintextPort;
    }
    this.alarmMqtt?.listen(this.alarms);
    this.acks.start();
    this.live.start();
    this.types.start();
    this.cluster?.start();
    this.state = 'running';
    this.log.info({ url: this.url, mqtt: this.mqttUrl ?? 'off', storage: this.storage.kind }, 'gateway listening');
  }

  /**
   * Ready means: listening, the broker (embedded or bridged) up, storage reachable. Storage that is
   * degraded (points waiting or spilling, nothing lost) still reports ready, with its state shown;
   * storage that is down (refusing frames with STORAGE_FULL, or about to) does not, with the reason.
   * Nor does a data-folder file the disk refuses (the check names it and the errno); that clears by
   * itself once the disk takes writes again.
   */
  readiness(): { ready: boolean; checks: Record<string, string> } {
    const health = this.storage.health();
    const listening = this.state === 'running';
    const broker = this.bridge ? (this.bridge.connected ? 'ok' : 'disconnected') : this.mqtt ? 'ok' : 'off';
    const storage = health.status === 'ok' ? 'ok' : `${health.status}: ${health.detail ?? ''}`.trim();
    const checks: Record<string, string> = { listening: listening ? 'ok' : this.state, broker, storage };
    if (this.cluster) checks.cluster = this.cluster.backbone.connected ? 'ok' : 'disconnected';
    // The data folder's files: while one cannot be written, acks (cursors) or new commands (journal) wait.
    const files = { cursors: this.cursors.failure, commandJournal: this.journal.failure };
    for (const [name, failure] of Object.entries(files)) checks[name] = failure ? `failing: ${failure.message}` : 'ok';
    // Shown, but not a reason to stop traffic: only device changes wait for it (REGISTRY_NOT_PERSISTED).
    const reg = this.registryStore.failure;
    checks.deviceRegistry = reg ? `failing: ${reg.message}` : 'ok';
    // Shown, not part of ready: devices and their data are unaffected (operators' alarm actions wait).
    const alarmFile = this.alarms.book.failure ?? this.alarms.rules.failure;
    checks.alarms = alarmFile ? `failing: ${alarmFile.message}` : 'ok';
    return {
      ready: listening && broker !== 'disconnected' && health.status !== 'down' && checks.cluster !== 'disconnected' && !files.cursors && !files.commandJournal,
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
    // A device knocking from now on is told SHUTTING_DOWN (HTTP 503, CONNACK 3): reconnect later.
    this.sessions.shutDown();
    for (const server of this.servers) server.stopListening();
    if (wasRunning) {
      // Frames devices sent before the signal may still be unread in their sockets: read them first
      // (bounded), then let storage settle what was ingested (bounded), then ack everything settled
      // before saying goodbye, so devices resend as little as possible. What is not settled by then
      // stays unacked and comes back after the restart.
      await this.drainIngest(DRAIN_STEP_MS, DRAIN_MAX_MS);
      const deadline = Date.now() + SETTLE_MAX_MS;
      let target = this.acks.newestTicket;
      while ((await this.storage.whenDurable(target, deadline - Date.now())) && this.acks.newestTicket > target) target = this.acks.newestTicket;
      this.acks.flush(Date.now(), true);
      // What that flush made safe was answered; JSON messages still waiting get ACK_TIMEOUT (resend).
      this.jsonWaits.close();
      this.deviceRoute?.closeAll(CLOSE_CODES.GOING_AWAY, 'gateway shutting down', 'shutdown');
      this.mqtt?.markShutdown();
      // Let the close frames go out before the process may exit.
      await new Promise((r) => setTimeout(r, 50));
    }
    this.types.close();
    this.live.stop();
    this.sse?.close();
    await this.mqtt?.close();
    await this.bridge?.close();
    // After the devices' goodbyes, so the other instances hear where each one's frames were safe.
    this.cluster?.stop();
    await this.cluster?.settled();
    await this.cluster?.backbone.close();
    this.acks.stop();
    this.jsonWaits.close();
    this.commands.close();
    this.alarms.close();
    this.cursors.close();
    this.registryStore.close();
    if (this.ownsStorage) await this.storage.close();
    this.refusalLog.close();
    this.state = 'closed';
    this.log.info('gateway stopped');
  }

  /** Waits until a step of `stepMs` passes with no frame read (nothing more on the wire), at most `maxMs`. */
  private async drainIngest(stepMs: number, maxMs: number): Promise<void> {
    const s = this.ingest.stats;
    const deadline = Date.now() + maxMs;
    let seen = -1;
    while (Date.now() < deadline) {
      const now = s.frames + s.duplicates + s.errors;
      if (now === seen) return;
      seen = now;
      await sleep(stepMs);
    }
  }
}

// Shutdown bounds: reading what is on the wire, then storage settling it.
const DRAIN_STEP_MS = 20;
const DRAIN_MAX_MS = 500;
const SETTLE_MAX_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The alarm rules of types in force: already checked when their file was read (types-file.ts). */
function typeRulesIn(types: readonly DeviceTypeSpec[]): AlarmRule[] {
  const rules = typeRulesOf(types, 'device types');
  if (rules instanceof Error) throw rules;
  return rules;
}
