/**
 * The daemon's own log, behind the core's `Logger` port, written with pino: on a terminal, readable
 * lines (pino-pretty: time, level, what happened, the fields); otherwise, or with
 * `--log-format json`, one JSON object per line (`{"level":"info","time":"…","event":"daemon.ready",…}`)
 * for collectors and scripts.
 *
 * Both write synchronously to the given file descriptor, so a line a person must see (a pairing
 * question, the console's one-time link), written straight to the terminal by its own code, is never
 * held back, reordered or reformatted by the log: they share the terminal, not a stream.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import pino from 'pino';
import type PinoPretty from 'pino-pretty';
import type { LogLevel, Logger } from '../core/ports.js';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFormat = 'pretty' | 'json';

export function isLogLevel(value: string): value is LogLevel {
  return value in ORDER;
}

export function isLogFormat(value: string): value is LogFormat {
  return value === 'pretty' || value === 'json';
}

export interface LoggerOptions {
  format: LogFormat;
  level?: LogLevel;
  /** A file descriptor (default 2, stderr) or a writable for tests. */
  destination?: number | { write(text: string): unknown };
  /** Colours in the pretty format (default: when the destination is a terminal). */
  colorize?: boolean;
}

/** The log format a daemon uses by default: readable on a terminal, JSON otherwise. */
export function defaultLogFormat(isTerminal: boolean): LogFormat {
  return isTerminal ? 'pretty' : 'json';
}

/**
 * pino-pretty and its dozen packages are loaded only by a logger that prints for a person: a daemon
 * whose log goes to a file or a service manager (JSON) never holds them (about 1 MB of heap,
 * BENCHMARKS.md, daemon memory). It is CommonJS, so it loads synchronously, as a logger is made.
 */
function prettyStream(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}

export function pinoLogger(options: LoggerOptions): Logger {
  const given = options.destination ?? 2;
  // A writer object becomes a stream that hands each line on at once (its callback runs synchronously).
  const destination: number | Writable =
    typeof given === 'number'
      ? given
      : new Writable({
          write(chunk: Buffer | string, _encoding, done) {
            given.write(chunk.toString());
            done();
          },
        });
  const level = options.level ?? 'info';
  const base = {
    level,
    base: null,
    messageKey: 'event',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const stream =
    options.format === 'pretty'
      ? prettyStream()({
          destination,
          sync: true,
          colorize: options.colorize ?? false,
          messageKey: 'event',
          translateTime: 'SYS:HH:MM:ss',
          ignore: 'pid,hostname',
          singleLine: true,
          // Gatehouse's `error` fields are messages, not Error objects: keep them on the line.
          errorLikeObjectKeys: ['err'],
        })
      : typeof destination === 'number'
        ? pino.destination({ dest: destination, sync: true })
        : destination;
  const log = pino(base, stream);
  return {
    log(lvl, event, fields) {
      if (ORDER[lvl] < ORDER[level]) return;
      log[lvl](fields ?? {}, event);
    },
  };
}

/** One JSON object per line, through any writer (the hub's log, tests): the JSON format without a file descriptor. */
export function jsonLogger(write: (line: string) => void, minimum: LogLevel = 'info'): Logger {
  return pinoLogger({ format: 'json', level: minimum, destination: { write: (text: string) => write(text) } });
}
