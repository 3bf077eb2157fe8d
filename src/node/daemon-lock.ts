/**
 * One daemon per Gatehouse home. The lock is a file created exclusively (O_EXCL) that holds the
 * owner's pid; a lock whose pid is no longer alive is stale and is taken over. Two daemons
 * starting at the same instant cannot both win: only one exclusive create succeeds.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../common/errors.js';

export interface DaemonLock {
  readonly file: string;
  release(): void;
}

export function acquireDaemonLock(runtimeDir: string): DaemonLock {
  const file = join(runtimeDir, 'daemon.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return {
        file,
        release() {
          if (released) return;
          released = true;
          try {
            if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
          } catch {
            // Already gone.
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new GatehouseError('already_running', `another Gatehouse daemon (pid ${owner}) is already running for this home (${file})`);
      }
      // Stale: its owner is gone. Remove it and try once more.
      try {
        unlinkSync(file);
      } catch {
        // Someone else removed it first; the next exclusive create decides.
      }
    }
  }
  throw new GatehouseError('already_running', `another Gatehouse daemon is starting for this home (${file})`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
