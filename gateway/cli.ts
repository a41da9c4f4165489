#!/usr/bin/env node
/** `gateway` command: parse settings, start, print the URL, stop cleanly on SIGINT/SIGTERM. */
import { helpText, parseConfig } from './config.js';
import { GatewayError } from './errors.js';
import { Gateway } from './gateway.js';
import { createLogger } from './log.js';

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`gateway: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(helpText() + '\n');
    return;
  }
  const log = createLogger(parsed.config.logLevel, parsed.config.logFormat as 'auto' | 'json' | 'pretty');
  const gateway = new Gateway(parsed.config, { log });
  try {
    await gateway.start();
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : 'START_FAILED';
    process.stderr.write(`gateway: could not start [${code}]: ${(err as Error).message}\n`);
    await gateway.close().catch(() => {});
    process.exit(1);
  }
  const dashboard = gateway.operatorTokenGenerated ? `${gateway.url}/?token=${gateway.operatorToken}` : `${gateway.url}/`;
  process.stdout.write(`gateway listening on ${gateway.url} (dashboard: ${dashboard})${gateway.mqttUrl ? `; MQTT on ${gateway.mqttUrl}` : ''}\n`);
  if (gateway.operatorTokenGenerated) {
    process.stdout.write('No operator token was configured (--operator-token / GATEWAY_OPERATOR_TOKEN), so one was generated for this run.\n');
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
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

void main();
