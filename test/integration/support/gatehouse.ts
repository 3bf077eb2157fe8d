/**
 * Starting a real Gatehouse for a test: a throwaway home directory, a config file with the given
 * servers, a registered client with a token, and the daemon built by the real composition root.
 * `startGatehouse` runs it in this process; `spawnGatehouse` runs `gatehouse daemon` as a child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ConfigInput } from '../../../src/common/config.js';
import type { DaemonStatus } from '../../../src/common/status.js';
import { ClientRegistry } from '../../../src/node/client-registry.js';
import { callControl } from '../../../src/node/control/control-client.js';
import { HEAP_NODE_FLAGS } from '../../../src/node/heap.js';
import { startDaemon, type Daemon, runtimeInfoFile } from '../../../src/node/daemon.js';
import type { Logger } from '../../../src/core/ports.js';
import { resolvePaths, type GatehousePaths } from '../../../src/node/paths.js';

export const REPO = resolve(import.meta.dirname, '../../..');
export const BIN = join(REPO, 'bin', 'gatehouse.js');

export interface StartOptions {
  servers?: ConfigInput['servers'];
  config?: Omit<ConfigInput, 'servers'>;
  /** Client names to register; the first one's token is `token`. */
  clients?: string[];
  /** Added to the daemon's environment (`spawnGatehouse` only: the daemon's own process). */
  env?: NodeJS.ProcessEnv;
  /** A command the daemon runs under (`spawnGatehouse` only), such as bubblewrap to change what the daemon's machine looks like. */
  wrap?: string[];
  /** More arguments of `gatehouse daemon` (`spawnGatehouse` only), such as `--log-level debug`. */
  args?: string[];
}

export interface RunningGatehouse {
  home: string;
  paths: GatehousePaths;
  env: NodeJS.ProcessEnv;
  httpUrl: string;
  token: string;
  tokens: Record<string, string>;
  socketPath: string;
  logs: string[];
  status(): Promise<DaemonStatus>;
  writeConfig(servers: ConfigInput['servers'], config?: Omit<ConfigInput, 'servers'>): void;
  /** Stops the daemon and removes its home, unless `keepHome` (the test then reads what it left, and removes it). */
  stop(options?: { keepHome?: boolean }): Promise<void>;
}

export function makeHome(prefix = 'gh-test-'): { home: string; paths: GatehousePaths; env: NodeJS.ProcessEnv } {
  const home = mkdtempSync(join(tmpdir(), prefix));
  const env = { ...process.env, GATEHOUSE_HOME: home };
  const paths = resolvePaths({ platform: process.platform, env, homedir: home, uid: process.getuid?.() });
  mkdirSync(paths.configDir, { recursive: true, mode: 0o700 });
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  return { home, paths, env };
}

function writeConfigFile(paths: GatehousePaths, servers: ConfigInput['servers'], config: Omit<ConfigInput, 'servers'> = {}): void {
  const file: ConfigInput = { ...config, servers: servers ?? {} };
  file.listen ??= { http: { enabled: true, port: 0 } };
  writeFileSync(paths.configFile, JSON.stringify(file, null, 2), { mode: 0o600 });
}

function registerClients(paths: GatehousePaths, names: string[]): Record<string, string> {
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  return Object.fromEntries(names.map((name) => [name, registry.add(name)]));
}

export async function startGatehouse(options: StartOptions = {}): Promise<RunningGatehouse> {
  const { home, paths, env } = makeHome();
  writeConfigFile(paths, options.servers, options.config);
  const tokens = registerClients(paths, options.clients ?? ['test-client']);
  const logs: string[] = [];
  const logger: Logger = { log: (level, event, fields) => logs.push(JSON.stringify({ level, event, ...fields })) };
  let daemon: Daemon;
  try {
    // Nobody can be asked here (no terminal, no notifier), whatever is installed: pairing fails closed. Pairing itself: pairing-*.test.ts.
    daemon = await startDaemon({ paths, logger, env, human: { terminal: null, notifier: { notify: () => false } } });
  } catch (error) {
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  return {
    home,
    paths,
    env,
    httpUrl: daemon.httpUrl ?? '',
    token: Object.values(tokens)[0] ?? '',
    tokens,
    socketPath: paths.socketPath,
    logs,
    status: async () => daemon.status(),
    writeConfig: (servers, config) => writeConfigFile(paths, servers, config),
    stop: async (options) => {
      await daemon.stop();
      if (!options?.keepHome) rmSync(home, { recursive: true, force: true });
    },
  };
}

/** `gatehouse daemon` as a child process; resolves once it reports ready. */
export async function spawnGatehouse(options: StartOptions = {}): Promise<RunningGatehouse & { child: ChildProcess; stderr: () => string }> {
  const made = makeHome();
  const { home, paths } = made;
  const env = { ...made.env, ...(options.env ?? {}) };
  writeConfigFile(paths, options.servers, options.config);
  const tokens = registerClients(paths, options.clients ?? ['test-client']);
  // Node with the options the bin script's first line gives it (src/node/heap.ts), as `gatehouse daemon` runs.
  const argv = [...(options.wrap ?? []), process.execPath, ...HEAP_NODE_FLAGS, BIN, 'daemon', ...(options.args ?? [])];
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (stderr.includes('"daemon.ready"')) break;
    if (child.exitCode !== null) throw new Error(`gatehouse daemon exited early:\n${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gatehouse daemon did not become ready:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const info = JSON.parse(readFileSync(runtimeInfoFile(paths), 'utf8')) as { httpUrl?: string };
  return {
    home,
    paths,
    env,
    child,
    stderr: () => stderr,
    httpUrl: info.httpUrl ?? '',
    token: Object.values(tokens)[0] ?? '',
    tokens,
    socketPath: paths.socketPath,
    logs: [],
    status: async () => (await callControl(paths.controlSocketPath, 'status', {})) as DaemonStatus,
    writeConfig: (servers, config) => writeConfigFile(paths, servers, config),
    stop: async (options) => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      if (!options?.keepHome) rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a truthy value (or throws after `timeoutMs`). */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface TerminalDaemon {
  child: ChildProcess;
  /** Everything the daemon's terminal showed so far. */
  screen(): string;
  /** The person types a line into the terminal and presses Enter. */
  type(line: string): void;
  /** The daemon's own pid (not the terminal's). */
  pid(): number | undefined;
  /** SIGTERM to the daemon, then waits for the terminal to close (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/**
 * `gatehouse <args>` on a pseudo-terminal (util-linux `script`), as a person runs it in a terminal:
 * what it shows is the person's screen, and what the test types goes to its terminal's input.
 * `script` is the Node script run with `args`. The bin script is run as a command, as `gatehouse`
 * is from PATH (its first line names Node and its options); another script is run by this Node.
 * `script` hands the command to a shell, which `exec` replaces, so the program is the terminal's
 * foreground process group by itself, as a person's shell makes it. Without `exec`, a /bin/sh that
 * stays in between (util-linux `script` runs $SHELL, and /bin/sh when SHELL is unset, as on CI)
 * takes the terminal's Ctrl-C too and dies of it.
 */
export function spawnOnTerminal(args: string[], env: NodeJS.ProcessEnv, paths: GatehousePaths, script = BIN): TerminalDaemon {
  const argv = script === BIN ? [BIN, ...args] : [process.execPath, script, ...args];
  const command = `exec ${argv.map((a) => JSON.stringify(a)).join(' ')}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...env, TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
  const pid = (): number | undefined => {
    try {
      return (JSON.parse(readFileSync(join(paths.runtimeDir, 'daemon.json'), 'utf8')) as { pid: number }).pid;
    } catch {
      return undefined;
    }
  };
  return {
    child,
    screen: () => output,
    type: (line) => void child.stdin!.write(`${line}\n`),
    pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const daemonPid = pid();
      try {
        if (daemonPid) process.kill(daemonPid, 'SIGTERM');
        else child.kill('SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
