/**
 * Structured log lines on stderr (stdout is kept for the one "listening on" line): JSON lines for
 * log shippers, or readable colored lines when stderr is a terminal (--log-format overrides).
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export function createLogger(level: string, format: 'auto' | 'json' | 'pretty' = 'auto'): Logger {
  const options = { level, base: { service: 'gateway' }, redact: ['token', '*.token', 'authorization', 'password'] };
  const readable = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true);
  if (readable) return pino(options, pretty({ destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' }));
  return pino(options, pino.destination({ fd: 2, sync: false }));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
