/** The daemon's own log: one JSON object per line on stderr (or any writable), filtered by level. */
import type { LogLevel, Logger } from '../core/ports.js';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function jsonLogger(write: (line: string) => void, minimum: LogLevel = 'info'): Logger {
  return {
    log(level, event, fields) {
      if (ORDER[level] < ORDER[minimum]) return;
      write(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }) + '\n');
    },
  };
}

export function isLogLevel(value: string): value is LogLevel {
  return value in ORDER;
}
