/**
 * Named pipes for the sandboxes' tracers, made with `mkfifo` (Node has no call for it). Spawning a
 * process blocks the daemon's event loop until the child has started its program, and on a busy
 * machine that wait is long: with 50 servers starting at once, a profile of the daemon showed about
 * 14 ms of it per `mkfifo`, one per server, on top of the server's own spawn. So pipes asked for while
 * one `mkfifo` runs wait for it to finish and are then made together, by one more run: a start of
 * 50 confined servers spawns `mkfifo` a handful of times, not 50. A lone request (a restart) runs at once.
 */
import { execFile } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { errorMessage } from '../../common/errors.js';

interface Request {
  path: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class FifoMaker {
  private waiting: Request[] = [];
  private running = false;

  /** `mkfifo`: the program's path, found when the host was probed. */
  constructor(readonly program: string) {}

  /** Makes a named pipe at `path`, readable and writable by the user only. */
  make(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ path, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting;
        this.waiting = [];
        const failure = await this.run(batch.map((r) => r.path));
        if (failure === undefined) {
          for (const r of batch) r.resolve();
          continue;
        }
        // One bad path fails the whole run: settle each by what is on disk now, and make the rest one by one.
        for (const r of batch) {
          if (isFifo(r.path)) r.resolve();
          else {
            const alone = batch.length === 1 ? failure : await this.run([r.path]);
            if (alone === undefined) r.resolve();
            else r.reject(new Error(`mkfifo: ${alone}`));
          }
        }
      }
    } finally {
      this.running = false;
    }
  }

  private run(paths: string[]): Promise<string | undefined> {
    return new Promise((resolve) =>
      execFile(this.program, ['-m', '600', '--', ...paths], { timeout: 10_000, env: {} }, (error) => resolve(error ? errorMessage(error) : undefined)),
    );
  }
}

function isFifo(path: string): boolean {
  try {
    return lstatSync(path).isFIFO();
  } catch {
    return false;
  }
}
