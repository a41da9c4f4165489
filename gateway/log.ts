/** Structured JSON log lines on stderr (stdout is kept for the one "listening on" line). */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'gateway' }, redact: ['token', '*.token', 'authorization'] }, pino.destination({ fd: 2, sync: false }));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
