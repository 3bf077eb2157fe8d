/**
 * Launching one stdio MCP server: an allow-listed environment, stderr split into capped lines,
 * and a graceful stop (close stdin, SIGTERM, SIGKILL after the grace period).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readLines } from '../lines.js';
import type { Readable, Writable } from 'node:stream';
import type { StdioServerConfig } from '../../common/config.js';

/** The only variables a child inherits from the daemon; everything else must be declared in its config. */
export const INHERITED_ENV: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TERM',
  'XDG_RUNTIME_DIR',
  // Windows needs these to start most programs at all.
  'SYSTEMROOT',
  'SYSTEMDRIVE',
  'WINDIR',
  'COMSPEC',
  'PATHEXT',
  'TEMP',
  'TMP',
  'USERPROFILE',
  'APPDATA',
  'LOCALAPPDATA',
  'PROGRAMDATA',
  'PROGRAMFILES',
];

export function childEnvironment(declared: Record<string, string>, parent: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(parent)) {
    if (name.startsWith('LC_') && value !== undefined) env[name] = value;
  }
  return { ...env, ...declared };
}

/** Longest stderr line kept; a longer one is cut and marked. */
export const MAX_STDERR_LINE = 8192;

export interface LaunchedChild {
  readonly pid: number | undefined;
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Settles when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Close stdin, then SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs: number): Promise<void>;
}

/** What to run instead of the configured command: the sandbox's launcher, with the environment already complete. */
export interface SpawnAs {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** A descriptor the process gets as its descriptor 3 (the writing end of a sandbox's trace pipe). */
  traceFd?: number;
}

export function launchChild(config: StdioServerConfig, onStderrLine: (line: string) => void, spawnAs?: SpawnAs): Promise<LaunchedChild> {
  return new Promise((resolve, reject) => {
    let child: ChildProcessByStdio<Writable, Readable, Readable>;
    try {
      child = spawn(spawnAs?.command ?? config.command, spawnAs?.args ?? config.args, {
        cwd: spawnAs ? spawnAs.cwd : config.cwd,
        env: spawnAs?.env ?? childEnvironment(config.env),
        stdio: spawnAs?.traceFd !== undefined ? ['pipe', 'pipe', 'pipe', spawnAs.traceFd] : ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
        // Own process group on POSIX, so that stopping reaches grandchildren a wrapper script started;
        // and a new session, so no server (confined or not) has the daemon's terminal to inject input into.
        detached: process.platform !== 'win32',
      }) as ChildProcessByStdio<Writable, Readable, Readable>;
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
      child.once('exit', (code, signal) => done({ code, signal }));
    });
    void readLines(child.stderr, { maxLine: MAX_STDERR_LINE, onLine: onStderrLine, onOversized: (head) => onStderrLine(`${head} [line cut]`) });
    // A child that dies early can make writes fail with EPIPE; the exit is what reports it.
    child.stdin.on('error', () => undefined);
    child.once('error', (error) => reject(error));
    child.once('spawn', () => {
      const signalGroup = (signal: NodeJS.Signals): void => {
        try {
          if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, signal);
          else child.kill(signal);
        } catch {
          // Already gone.
        }
      };
      let stopping: Promise<void> | undefined;
      resolve({
        pid: child.pid,
        stdin: child.stdin,
        stdout: child.stdout,
        exited,
        stop(graceMs: number): Promise<void> {
          stopping ??= (async () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.stdin.end();
            signalGroup('SIGTERM');
            const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
            await exited;
            clearTimeout(timer);
            // Leave no grandchild behind in the group.
            signalGroup('SIGKILL');
          })();
          return stopping;
        },
      });
    });
  });
}
