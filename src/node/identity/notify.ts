/**
 * Desktop notifications through `notify-send` where it is installed (libnotify). Never required:
 * when it is missing or fails, the caller's other channels (the daemon's terminal) carry the news.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The full path of a program on PATH, or undefined. */
export function findOnPath(program: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

export interface Notifier {
  /** True when a notification was handed to the desktop. */
  notify(title: string, body: string): boolean;
}

export class DesktopNotifier implements Notifier {
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  notify(title: string, body: string): boolean {
    const program = findOnPath('notify-send', this.env);
    if (!program) return false;
    try {
      // Arguments, never a shell: the body may carry a client's self-chosen name.
      const child = spawn(program, ['--app-name=Gatehouse', '--urgency=critical', title, body], { stdio: 'ignore', detached: false, env: this.env });
      child.on('error', () => undefined);
      child.unref();
      return true;
    } catch {
      return false;
    }
  }
}

export const noNotifier: Notifier = { notify: () => false };
