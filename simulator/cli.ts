#!/usr/bin/env node
/**
 * `simulate` command: parse flags, run the fleet with a live status line, print the summary (or
 * with --json one JSON object) and exit 0 when every frame sent was acked, 1 when not, 2 for bad
 * flags. Ctrl-C (SIGINT) or SIGTERM stops early, drains and still prints the summary; a second
 * one exits at once.
 */
import { incidentCast } from './incident.js';
import { helpText, OptionError, parseOptions, type Parsed } from './options.js';
import { Simulation } from './run.js';
import { StatusPrinter } from './status.js';
import { formatSummary } from './summary.js';

function main(): void {
  let parsed: Parsed;
  try {
    parsed = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    process.stderr.write(`simulate: ${err.message}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(helpText() + '\n');
    return;
  }
  const o = parsed.options;
  const status = new StatusPrinter(process.stderr, o.statusEveryS);
  process.stderr.write(
    `simulate: ${o.devices} device${o.devices === 1 ? '' : 's'} (${o.types.join(', ')}) at ${o.rate} Hz over ${o.transport} to ${o.url}, ` +
      `${o.durationS > 0 ? `for ${o.durationS} s` : 'until Ctrl-C'}, ${o.workers === 0 ? 'in the main thread' : `${o.workers} worker thread${o.workers === 1 ? '' : 's'}`}\n`,
  );
  if (o.incident) {
    const cast = incidentCast(o.types, o.devices, o.idPrefix);
    const again = o.incidentEveryS > 0 ? `, again every ${o.incidentEveryS} s` : ', once';
    process.stderr.write(cast.length > 0 ? `simulate: --incident (seconds from the start${again}):\n${cast.map((p) => `  ${p.text}\n`).join('')}` : 'simulate: --incident: no device of a type that has a part\n');
  }
  const sim = Simulation.start(o, { onStatus: (s) => status.update(s) });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.stderr.write(`\nsimulate: second ${signal}, exiting without a summary\n`);
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`\nsimulate: ${signal}: stopping, waiting up to ${o.drainS} s for the last acks (again to quit at once)\n`);
    void sim.stop();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  void sim.done.then((summary) => {
    status.end();
    process.stdout.write(o.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
    // Exit explicitly: a gateway that never answered may leave sockets half-open.
    process.exitCode = summary.ok ? 0 : 1;
    process.stdout.write('', () => process.exit(summary.ok ? 0 : 1));
  });
}

main();
