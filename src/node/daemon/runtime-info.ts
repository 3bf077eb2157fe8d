/**
 * Where `gatehouse status` and `gatehouse connect` find a running daemon: a small JSON file in the
 * user-only runtime directory, written once the endpoints listen and removed when the daemon stops;
 * and the last-seen note in the state directory (src/node/discovery.ts), which a bridge started
 * with only HOME, PATH and USER can still find, and which says when the daemon stopped.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeLastSeen } from '../discovery.js';
import type { GatehousePaths } from '../paths.js';

export interface RuntimeInfo {
  pid: number;
  version: string;
  startedAt: string;
  socketPath: string;
  controlSocketPath: string;
  httpUrl?: string;
}

export function runtimeInfoFile(paths: GatehousePaths): string {
  return join(paths.runtimeDir, 'daemon.json');
}

export function writeRuntimeInfo(paths: GatehousePaths, info: RuntimeInfo): void {
  writeFileSync(runtimeInfoFile(paths), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
}

export function removeRuntimeInfo(paths: GatehousePaths): void {
  rmSync(runtimeInfoFile(paths), { force: true });
}

export interface Presence {
  /** The daemon is stopping: the runtime file goes, the last-seen note says when. */
  withdraw(): void;
}

/** Writes both notes once the endpoints listen. `httpUrl` is the HTTP listener's base URL, if it listens. */
export function announcePresence(
  paths: GatehousePaths,
  daemon: { pid: number; version: string; startedAt: string; httpUrl?: string; dbusAddress?: string },
): Presence {
  const { pid, version, startedAt, httpUrl, dbusAddress } = daemon;
  const sockets = { socketPath: paths.socketPath, controlSocketPath: paths.controlSocketPath };
  writeRuntimeInfo(paths, { pid, version, startedAt, ...sockets, ...(httpUrl ? { httpUrl } : {}) });
  const lastSeen = { pid, version, startedAt, ...sockets, ...(httpUrl ? { httpUrl: `${httpUrl}/mcp` } : {}), ...(dbusAddress ? { dbusAddress } : {}) };
  writeLastSeen(paths, lastSeen);
  return {
    withdraw() {
      removeRuntimeInfo(paths);
      try {
        writeLastSeen(paths, { ...lastSeen, stoppedAt: new Date().toISOString() });
      } catch {
        // The note is a courtesy for bridges; a read-only state directory must not stop the shutdown.
      }
    },
  };
}
