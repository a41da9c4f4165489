/**
 * /metrics in Prometheus text format (prom-client). Every value is read from the gateway's own
 * counters at scrape time, so the hot paths pay nothing for metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CommandService } from './commands/commands.js';
import type { DeviceTable } from './devices.js';
import type { Ingest } from './ingest.js';
import type { LiveHub } from './live/hub.js';
import { OpenFds } from './open-fds.js';
import type { RefusalCounts } from './session/sessions.js';
import type { StorageHealth } from '../devices/api/json.js';

export interface MetricSources {
  devices: DeviceTable;
  ingest: Ingest;
  live: LiveHub;
  commands: CommandService;
  refusals: RefusalCounts;
  acksSent(): number;
  /** Ack flushes whose cursor lines did not all reach the cursor file. */
  ackCursorFailures?(): number;
  liveClients(): number;
  storage(): Record<string, unknown> & { status: string };
  /** The data folder's files (cursors, command journal): failing now, and writes that did not land. */
  files?: () => Record<string, { failing: boolean; refused: number }>;
  /** The device types file: reloads that took effect, reloads refused, and whether the file on disk is valid now. */
  types?: () => { reloads: number; failures: number; valid: boolean };
  /** Device management requests by action and outcome (registry/admin.ts). */
  deviceAdmin?: () => Iterable<{ action: string; result: string; n: number }>;
  /** JSON telemetry: messages taken by transport, and answers that waited in vain (ACK_TIMEOUT). */
  json?: () => { messages: Record<string, number>; timedOut: number };
  /** Alarms shown here (open ones by severity and state) and this instance's alarm counters. */
  alarms?: () => {
    open: Map<string, number>;
    transitions: Record<'active' | 'acknowledged' | 'cleared', number>;
    unpersisted: number;
    webhooks: Record<'delivered' | 'retried' | 'dead_letter', number>;
    mqtt: Record<'published' | 'failed', number>;
  };
  /** Embedded broker: messages dropped for offline persistent sessions that held --mqtt-max-queued. */
  mqttQueueDropped?: () => number;
  /** In a cluster: the backbone's counters. */
  cluster?: () => {
    resultsRelayed: number;
    sent: Record<'summary' | 'live' | 'history', number>;
    unsent: Record<'summary' | 'live' | 'history', number>;
    handoverTimeouts: number;
    historyUnavailable: number;
  };
}

/** A counter whose value is another component's running total. */
function mirror(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** gateway_process_open_fds from open-fds.ts in place of prom-client's, which lists /proc/self/fd. */
function openFds(registry: Registry): void {
  const name = 'gateway_process_open_fds';
  if (registry.getSingleMetric(name) === undefined) return; // not Linux: prom-client has none either
  registry.removeSingleMetric(name);
  const fds = OpenFds.forThisKernel();
  if (fds === undefined) return;
  new Gauge({
    name,
    help: fds.method === 'stat' ? 'Number of open file descriptors.' : 'Number of open file descriptors (counted in the background after each scrape: the previous scrape’s count).',
    registers: [registry],
    collect() {
      const n = fds.count();
      if (Number.isFinite(n)) this.set(n);
    },
  });
}

export function createMetrics(src: MetricSources): { registry: Registry; liveLatency: Histogram } {
  const registry = new Registry();
  // prom-client names its own process_* and nodejs_*: the prefix only says whose they are.
  collectDefaultMetrics({ register: registry, prefix: 'gateway_', eventLoopMonitoringPrecision: 20 });
  // Gauges named *_total break the Prometheus naming rules (promtool flags them); the same
  // figures are in gateway_nodejs_active_{handles,requests,resources} by type.
  for (const name of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`gateway_nodejs_active_${name}_total`);
  openFds(registry);
  const s = src.ingest.stats;
  // In a cluster every instance knows every device: with --workers these are not summed.
  new Gauge({
    name: 'gateway_devices_online',
    help: 'Devices connected now (to any instance of the cluster)',
    aggregator: 'max',
    registers: [registry],
    collect() {
      this.set(src.devices.online);
    },
  });
  new Gauge({
    name: 'gateway_devices_known',
    help: 'Devices in the registry or seen since start',
    aggregator: 'max',
    registers: [registry],
    collect() {
      this.set(src.devices.size);
    },
  });
  new Gauge({
    name: 'gateway_connections',
    help: 'Devices connected to this instance, by transport',
    labelNames: ['transport'],
    registers: [registry],
    collect() {
      let ws = 0;
      let mqtt = 0;
      for (const d of src.devices.all()) {
        if (!d.online || d.link?.instance !== undefined) continue;
        if (d.link?.transport === 'mqtt') mqtt++;
        else ws++;
      }
      this.set({ transport: 'ws' }, ws);
      this.set({ transport: 'mqtt' }, mqtt);
    },
  });
  mirror(registry, 'gateway_frames_total', 'Telemetry frames ingested (duplicates excluded)', () => s.frames);
  mirror(registry, 'gateway_readings_total', 'Readings ingested', () => s.readings);
  mirror(registry, 'gateway_duplicates_total', 'Replayed frames dropped by dedupe', () => s.duplicates);
  mirror(registry, 'gateway_gaps_total', 'Sequence numbers given up as lost', () => {
    let g = 0;
    for (const d of src.devices.all()) g += d.gaps;
    return g;
  });
  new Counter({
    name: 'gateway_refusals_total',
    help: 'Devices turned away or ended for bad input, by refusal code (README: Refusals) and transport (ws, mqtt, bridge, http)',
    labelNames: ['code', 'transport'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of src.refusals.entries()) this.inc({ code: r.code, transport: r.transport }, r.n);
    },
  });
  new Counter({
    name: 'gateway_errors_total',
    help: 'Refusals by code, summed over transports (gateway_refusals_total has the transport)',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of s.errorsByCode) this.inc({ code }, n);
    },
  });
  if (src.json) {
    const j = src.json;
    new Counter({
      name: 'gateway_json_messages_total',
      help: 'JSON telemetry messages taken, by transport (mqtt, bridge, http): new ones count in gateway_frames_total too, duplicates in gateway_duplicates_total',
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [transport, n] of Object.entries(j().messages)) this.inc({ transport }, n);
      },
    });
    mirror(registry, 'gateway_json_answers_timed_out_total', 'JSON telemetry answers (PUBACK, HTTP 202) not given because the readings were not safe in time (ACK_TIMEOUT)', () => j().timedOut);
  }
  if (src.cluster) {
    const c = src.cluster;
    for (const kind of ['summary', 'live', 'history'] as const) {
      mirror(registry, `gateway_cluster_${kind}_messages_sent_total`, `Backbone messages of kind ${kind} published to the other instances`, () => c().sent[kind]);
      mirror(registry, `gateway_cluster_${kind}_messages_unsent_total`, `Backbone messages of kind ${kind} not published because the backbone was down (live: the viewers elsewhere get too_old on resume; summary: sent again later)`, () => c().unsent[kind]);
    }
    mirror(registry, 'gateway_cluster_handover_timeouts_total', "Devices that moved here whose previous instance did not tell their cursor in time (their resent frames may count twice)", () => c().handoverTimeouts);
    mirror(registry, 'gateway_cluster_history_unavailable_total', 'History requests answered HISTORY_OWNER_UNAVAILABLE (memory store: an instance holding part of it is gone or did not answer)', () => c().historyUnavailable);
    mirror(registry, 'gateway_cluster_results_relayed_total', 'Command results passed on to the instance owning the command', () => c().resultsRelayed);
  }
  mirror(registry, 'gateway_acks_sent_total', 'Ack frames sent to devices', src.acksSent);
  if (src.ackCursorFailures) {
    mirror(registry, 'gateway_ack_cursor_write_failures_total', 'Ack flushes whose cursor lines did not all reach the cursor file (disk full, I/O error): their acks waited for a later flush', src.ackCursorFailures);
  }
  mirror(registry, 'gateway_live_dropped_total', 'Live messages a slow dashboard client did not get', () => src.live.dropped);
  new Gauge({
    name: 'gateway_live_clients',
    help: 'Dashboard clients (/live and SSE)',
    registers: [registry],
    collect() {
      this.set(src.liveClients());
    },
  });
  new Gauge({
    name: 'gateway_commands',
    help: 'Commands by lifecycle state (unfinished, and finished ones still kept)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const [state, n] of Object.entries(src.commands.counts())) this.set({ state }, n);
    },
  });
  new Counter({
    name: 'gateway_command_outcomes_total',
    help: 'Commands this instance finished, by outcome: acked, failed (the device refused or reported failure), expired (TTL passed before delivery), timed_out (no result in time)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [outcome, n] of Object.entries(src.commands.outcomes)) this.inc({ outcome }, n);
    },
  });
  if (src.deviceAdmin) {
    const outcomes = src.deviceAdmin;
    new Counter({
      name: 'gateway_device_admin_total',
      help: 'Device management requests (add, update, rotate, disable, enable, delete) by outcome: ok, or the refusal code (REGISTRY_NOT_PERSISTED: the disk refused, nothing changed)',
      labelNames: ['action', 'result'],
      registers: [registry],
      collect() {
        this.reset();
        for (const o of outcomes()) this.inc({ action: o.action, result: o.result }, o.n);
      },
    });
  }
  if (src.files) {
    const files = src.files;
    new Gauge({
      name: 'gateway_file_failing',
      help: 'A data-folder file the disk refuses (1) until it is rewritten: cursors hold acks back, commandJournal refuses new commands, deviceRegistry refuses device changes',
      labelNames: ['file'],
      registers: [registry],
      collect() {
        for (const [file, f] of Object.entries(files())) this.set({ file }, f.failing ? 1 : 0);
      },
    });
    new Counter({
      name: 'gateway_file_writes_refused_total',
      help: 'Appends to a data-folder file that did not land (cursors: a round of acks held back; commandJournal: a command refused or a transition kept in memory)',
      labelNames: ['file'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [file, f] of Object.entries(files())) this.inc({ file }, f.refused);
      },
    });
  }
  if (src.types) {
    const types = src.types;
    new Counter({
      name: 'gateway_types_reloads_total',
      help: 'Reloads of the device types file (--types): ok put new types in force, failed kept the previous ones (the log says why: TYPES_INVALID)',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.reset();
        const t = types();
        this.inc({ result: 'ok' }, t.reloads);
        this.inc({ result: 'failed' }, t.failures);
      },
    });
    new Gauge({
      name: 'gateway_types_file_valid',
      help: 'The device types file on disk is valid and in force (1), or its last reload failed and older types are in force (0)',
      registers: [registry],
      collect() {
        this.set(types().valid ? 1 : 0);
      },
    });
  }
  if (src.alarms) alarmMetrics(registry, src.alarms);
  if (src.mqttQueueDropped) {
    mirror(registry, 'gateway_mqtt_queue_dropped_total', "Messages (alarm changes for $operator integrations) the embedded broker did not queue for an offline persistent MQTT session (clean=false) because it held --mqtt-max-queued already; the newest are dropped, as by Mosquitto's max_queued_messages", src.mqttQueueDropped);
  }
  storageMetrics(registry, src.storage);
  const liveLatency = new Histogram({
    name: 'gateway_live_latency_seconds',
    help: 'Time from a reading reaching the gateway to its live message going out to dashboards',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1],
    registers: [registry],
  });
  src.live.onLatency((seconds) => liveLatency.observe(seconds));
  return { registry, liveLatency };
}

/** Alarm figures: open alarms as a gauge (the whole cluster's on every instance), this instance's running totals as counters. */
function alarmMetrics(registry: Registry, read: NonNullable<MetricSources['alarms']>): void {
  new Gauge({
    name: 'gateway_alarms_active',
    help: 'Alarms not cleared (active or acknowledged), by severity and state; in a cluster every instance shows all of them',
    labelNames: ['severity', 'state'],
    aggregator: 'max',
    registers: [registry],
    collect() {
      this.reset();
      for (const severity of ['critical', 'major', 'minor', 'warning']) for (const state of ['active', 'acknowledged']) this.set({ severity, state }, 0);
      for (const [k, n] of read().open) {
        const [severity, state] = k.split('\u0000');
        this.set({ severity: severity!, state: state! }, n);
      }
    },
  });
  new Counter({
    name: 'gateway_alarm_transitions_total',
    help: 'Alarm transitions of alarms this instance owns, by the state entered (active = raised)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of Object.entries(read().transitions)) this.inc({ state }, n);
    },
  });
  mirror(registry, 'gateway_alarm_transitions_unpersisted_total', "Alarm transitions by a rule that did not reach <data-dir>/alarms.jsonl when they happened (disk full or failing); written with the file's rewrite once the disk recovers, lost if the gateway dies first", () => read().unpersisted);
  new Counter({
    name: 'gateway_alarm_webhook_deliveries_total',
    help: 'Alarm webhook deliveries by outcome: delivered (2xx), retried (a try failed; another follows), dead_letter (given up after the last try, refused with a 4xx, or the queue was full)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [outcome, n] of Object.entries(read().webhooks)) this.inc({ outcome }, n);
    },
  });
  new Counter({
    name: 'gateway_alarm_mqtt_publishes_total',
    help: 'Alarm changes published on MQTT alarms/{deviceId}, by outcome: published (the broker took it), failed (it did not: bridge disconnected)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [outcome, n] of Object.entries(read().mqtt)) this.inc({ outcome }, n);
    },
  });
}

/** Storage figures (StorageHealth), each as its own metric: levels as gauges, running totals as counters. */
function storageMetrics(registry: Registry, health: MetricSources['storage']): void {
  const figure = (key: keyof StorageHealth): number => {
    const v = health()[key];
    return typeof v === 'number' ? v : 0;
  };
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  gauge('gateway_storage_buffered_points', 'Points in memory waiting for the database (the batch being filled included)', () => figure('buffered'));
  gauge('gateway_storage_spill_bytes', 'Bytes of spill files on disk (bounded by --spill-max-bytes)', () => figure('spilledBytes'));
  gauge('gateway_storage_spilled_points', 'Points in the spill files not yet in the database', () => figure('spilledPoints'));
  gauge('gateway_storage_degraded', '1 while storage is not ok (points wait in memory or the spill file; nothing lost), else 0', () => (health().status === 'ok' ? 0 : 1));
  gauge('gateway_storage_down', '1 while storage is down (the database fails and the spill cannot take more: frames are refused with STORAGE_FULL), else 0', () => (health().status === 'down' ? 1 : 0));
  mirror(registry, 'gateway_storage_points_written_total', 'Points the database accepted (a point re-sent after an outage counts again)', () => figure('written'));
  mirror(registry, 'gateway_storage_write_retries_total', 'Write requests sent again after a retryable failure', () => figure('retried'));
  mirror(registry, 'gateway_storage_frames_refused_total', 'Frames refused with STORAGE_FULL (memory and spill full): never acked, their devices resend them', () => figure('refused'));
  mirror(registry, 'gateway_storage_points_rejected_total', 'Points the database refused for good (type conflict, bad data)', () => figure('rejected'));
  mirror(registry, 'gateway_storage_points_lost_total', 'Points given up: a spill record that failed its checksum, or points nowhere to go at close', () => figure('lost'));
}
