/**
 * Where `gatehouse status` and `gatehouse connect` find a running daemon: a small JSON file in the
 * user-only runtime directory, written once the endpoints listen and removed when the daemon stops.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
