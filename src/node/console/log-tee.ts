/**
 * Live server logs for the console: the supervisor writes each server's stderr lines (already
 * scrubbed of known secret values) to its log sink; this sink passes every line on to the real one
 * (the rotating log files) and to a listener.
 */
import type { ServerLogSink } from '../../core/ports.js';

export function teeLogSink(sink: ServerLogSink, onLine: (server: string, line: string) => void): ServerLogSink {
  return {
    open(server: string) {
      const file = sink.open(server);
      return {
        write(line: string) {
          file.write(line);
          try {
            onLine(server, line);
          } catch {
            // The console's trouble is never the server's.
          }
        },
        close() {
          file.close();
        },
      };
    },
  };
}
