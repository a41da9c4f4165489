#!/usr/bin/env node
/** `gateway` command: parse settings, start, print the URL, stop cleanly on SIGINT/SIGTERM. */
import { clusterMetrics, isWorker, reportListening, runPrimary, workerConfig } from './cluster/workers.js';
import { helpText, parseConfig, type GatewayConfig } from './config.js';
import { GatewayError } from './errors.js';
import { runFrameCli } from './frame-cli.js';
import { Gateway } from './gateway.js';
import { createLogger } from './log.js';
import { LoginCodes } from './login/codes.js';
import { loginLink } from './login/routes.js';
import { Signer } from './login/signing.js';
import { workerLoginSync } from './login/sync.js';

async function main(): Promise<void> {
  if (process.argv[2] === 'frame') {
    process.exitCode = runFrameCli(process.argv.slice(3));
    return;
  }
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`gateway: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(helpText() + '\n\n' + 'gateway frame --help: make one telemetry frame for mosquitto_pub and other tools that send bytes\n');
    return;
  }
  const config = parsed.config;
  const log = createLogger(config.logLevel, config.logFormat as 'auto' | 'json' | 'pretty');
  if (config.workers > 1 && !isWorker()) return primary(config, log);
  const worker = isWorker();
  if (!worker) warnIfNoDeviceCanConnect(config, log);
  let gateway: Gateway;
  try {
    gateway = worker ? new Gateway(workerConfig(config), { log, metrics: clusterMetrics, loginSync: workerLoginSync(), sharedPorts: true }) : new Gateway(config, { log });
  } catch (err) {
    // Building the gateway reads the registry and checks the storage settings: a bad one is a
    // config error (one line, exit 2), like a bad flag.
    const code = err instanceof GatewayError ? err.code : 'START_FAILED';
    process.stderr.write(`gateway: [${code}] ${(err as Error).message}\n`);
    process.exit(err instanceof GatewayError ? 2 : 1);
  }
  try {
    await gateway.start();
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : 'START_FAILED';
    process.stderr.write(`gateway: could not start [${code}]: ${(err as Error).message}\n`);
    await gateway.close().catch(() => {});
    process.exit(1);
  }
  if (worker) {
    reportListening({ url: gateway.url, port: gateway.port, ...(gateway.mqttUrl ? { mqttUrl: gateway.mqttUrl } : {}) });
  } else {
    printListening(gateway.url, gateway.loginLink(), gateway.operatorTokenGenerated ? gateway.operatorToken : undefined, gateway.mqttUrl, '');
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`gateway: second ${signal}, exiting at once\n`);
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      process.stderr.write('gateway: shutdown took longer than 10 s; exiting\n');
      process.exit(1);
    }, 10_000);
    deadline.unref();
    gateway.close().then(
      () => {
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`gateway: error while stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  // A worker stops when its primary says so: Ctrl-C reaches the whole process group, and the
  // primary then stops every worker in order.
  process.on('SIGINT', () => (worker ? undefined : stop('SIGINT')));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** Without a fleet key or a registry every device is refused (401): say so before anyone wonders why. */
function warnIfNoDeviceCanConnect(config: GatewayConfig, log: ReturnType<typeof createLogger>): void {
  if (config.fleetKey !== undefined || config.registry !== undefined) return;
  log.warn('neither --fleet-key (GATEWAY_FLEET_KEY) nor --registry (GATEWAY_REGISTRY) is set, so every device will be refused with 401 (NO_CREDENTIALS_SOURCE): set one of them');
}

/**
 * The one line users and scripts look for (the URL, and the dashboard link with a one-time login
 * code, never the token: browsers keep what is in a URL), then the generated token for scripts.
 */
function printListening(url: string, login: string, generatedToken: string | undefined, mqttUrl: string | undefined, extra: string): void {
  process.stdout.write(`gateway listening on ${url} (dashboard: ${login})${mqttUrl ? `; MQTT on ${mqttUrl}` : ''}${extra}\n`);
  process.stdout.write('The dashboard link logs one browser in, within 2 minutes. For another: POST /api/login-codes with the operator token (README "Operator login").\n');
  if (generatedToken) {
    process.stdout.write(`No operator token was configured (--operator-token / GATEWAY_OPERATOR_TOKEN), so one was generated for this run: ${generatedToken}\n`);
  }
}

async function primary(config: GatewayConfig, log: ReturnType<typeof createLogger>): Promise<void> {
  const generated = config.operatorToken === undefined;
  let run;
  try {
    run = await runPrimary(config, log);
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : 'START_FAILED';
    process.stderr.write(`gateway: could not start [${code}]: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const login = loginLink(run.url, new LoginCodes(new Signer(run.operatorToken)).issue().code);
  printListening(run.url, login, generated ? run.operatorToken : undefined, run.mqttUrl, `; ${config.workers} workers`);
  let signals = 0;
  const onSignal = (signal: string) => {
    if (++signals > 1) {
      process.stderr.write(`gateway: second ${signal}, exiting at once\n`);
      process.exit(1);
    }
    run.stop(signal);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const code = await run.stopped;
  log.flush();
  process.exit(code);
}

void main();
