/**
 * A throwaway Gatehouse for a benchmark: its own GATEHOUSE_HOME, a config naming the fixture
 * servers, a registered client token, and `gatehouse daemon` as a child process (so that its CPU
 * time and resident memory can be read from /proc apart from the load generator's).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ConfigInput } from '../../src/common/config.js';
import type { DaemonStatus } from '../../src/common/status.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { HEAP_NODE_FLAGS } from '../../src/node/heap.js';
import { resolvePaths, type GatehousePaths } from '../../src/node/paths.js';
import { cpuMs, FatalError, rssMb, startProcess, stopProcess, waitFor, type Tracked } from './proc.js';

/** The repository root: the nearest folder up from here whose package.json is Gatehouse's. */
export const REPO = findRepo(import.meta.dirname);
export const BIN = join(REPO, 'bin', 'gatehouse.js');
export const FIXTURE = join(REPO, 'bench', 'fixtures', 'echo-server.mjs');
export const CLIENT_NAME = 'bench';

function findRepo(from: string): string {
  let dir = from;
  for (let i = 0; i < 10; i++) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'gatehouse') return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find the Gatehouse repository above ${from}`);
}

export type ServersInput = NonNullable<ConfigInput['servers']>;

/** `count` fixture servers named fixture, fixture2, ... (or fixture01.. when several), each exposing `tools` tools. */
export function fixtureServers(count: number, tools = 1): ServersInput {
  const servers: ServersInput = {};
  for (let i = 1; i <= count; i++) {
    const name = count === 1 ? 'fixture' : `fixture${String(i).padStart(2, '0')}`;
    servers[name] = {
      type: 'stdio',
      command: process.execPath,
      args: tools > 1 ? [FIXTURE, '--tools', String(tools)] : [FIXTURE],
    };
  }
  return servers;
}

export interface GatehouseHome {
  home: string;
  paths: GatehousePaths;
  env: NodeJS.ProcessEnv;
  token: string;
  tokenFile: string;
  /**
   * More paired clients (`bench-01` …), for loads of many sessions: one client may hold only 16
   * 2025-era HTTP sessions (LEGACY_SESSIONS_PER_CLIENT), as an IDE would, so 256 sessions are spread
   * over several clients as 256 IDEs would be.
   */
  clients: { name: string; token: string }[];
  remove(): void;
}

/** Paired clients beyond the first; 64 × 16 HTTP sessions covers the largest curve point (256 sessions) four times over. */
const EXTRA_CLIENTS = 64;

export function makeHome(servers: ServersInput): GatehouseHome {
  const home = mkdtempSync(join(tmpdir(), 'gh-bench-'));
  // No reachable Secret Service: the daemon's audit device key is then never written to the user's
  // keychain (on a desktop, every throwaway home would otherwise leave an item behind); signing of
  // audit checkpoints waits, calls are recorded as usual.
  const env: NodeJS.ProcessEnv = { ...process.env, GATEHOUSE_HOME: home, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/gatehouse-bench-no-keychain' };
  const paths = resolvePaths({ platform: process.platform, env, homedir: home, uid: process.getuid?.() });
  mkdirSync(paths.configDir, { recursive: true, mode: 0o700 });
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const config: ConfigInput = { servers, listen: { http: { enabled: true, port: 0 } } };
  writeFileSync(paths.configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  const token = registry.add(CLIENT_NAME);
  const clients = Array.from({ length: EXTRA_CLIENTS }, (_, i) => {
    const name = `${CLIENT_NAME}-${String(i + 1).padStart(2, '0')}`;
    return { name, token: registry.add(name) };
  });
  const tokenFile = join(home, 'client-token');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  return { home, paths, env, token, tokenFile, clients, remove: () => rmSync(home, { recursive: true, force: true }) };
}

export interface RunningDaemon {
  home: GatehouseHome;
  process: Tracked;
  pid: number;
  socketPath: string;
  httpUrl: string;
  /** From spawn to every configured server ready, in ms (includes Node start-up and module loading). */
  readyMs: number;
  /** Restarts the daemon needed before every server was ready (0 on a clean start), with the reasons. */
  startRestarts: number;
  startErrors: string[];
  status(): Promise<DaemonStatus>;
  cpuMs(): number;
  rssMb(): number | undefined;
  stop(): Promise<void>;
}

export interface SpawnDaemonOptions {
  servers: ServersInput;
  /** Extra Node flags for the daemon (`--cpu-prof`, ...). */
  nodeFlags?: string[];
  readyTimeoutMs?: number;
}

/** `gatehouse daemon` as a child; resolves once every configured server is ready. */
export async function spawnDaemon(options: SpawnDaemonOptions): Promise<RunningDaemon> {
  const home = makeHome(options.servers);
  const expected = Object.keys(options.servers).length;
  const t0 = performance.now();
  // The Node options the bin script's first line gives `gatehouse daemon` (src/node/heap.ts), then the scenario's.
  const nodeFlags = [...HEAP_NODE_FLAGS, ...(options.nodeFlags ?? [])];
  const proc = startProcess('gatehouse daemon', process.execPath, [...nodeFlags, BIN, 'daemon', '--log-level', 'warn'], {
    env: home.env,
    cwd: REPO,
  });
  const status = async () => (await callControl(home.paths.controlSocketPath, 'status', {}, 10_000)) as DaemonStatus;
  try {
    await waitFor(
      'the daemon and all its servers to be ready',
      async () => {
        if (proc.child.exitCode !== null) throw new FatalError(`gatehouse daemon exited early:\n${proc.output().slice(-3000)}`);
        if (!existsSync(home.paths.controlSocketPath)) return false;
        const s = await status();
        // A server that failed to start is restarted by the daemon (backing off); only a crash loop is final.
        const failed = s.servers.find((srv) => srv.state === 'crash-looping');
        if (failed) throw new FatalError(`server ${failed.name} is ${failed.state}: ${failed.lastError ?? ''}`);
        return s.servers.length === expected && s.servers.every((srv) => srv.state === 'ready');
      },
      options.readyTimeoutMs ?? 60_000,
    );
  } catch (error) {
    await stopProcess(proc);
    home.remove();
    throw error;
  }
  const readyMs = performance.now() - t0;
  const settled = await status();
  const startRestarts = settled.servers.reduce((n, srv) => n + srv.restarts, 0);
  const startErrors = settled.servers.filter((srv) => srv.restarts > 0).map((srv) => `${srv.name}: ${srv.lastError ?? 'restarted'}`);
  const info = JSON.parse(readFileSync(join(home.paths.runtimeDir, 'daemon.json'), 'utf8')) as { httpUrl?: string; socketPath: string };
  return {
    home,
    process: proc,
    pid: proc.pid,
    socketPath: info.socketPath,
    httpUrl: info.httpUrl ?? '',
    readyMs,
    startRestarts,
    startErrors,
    status,
    cpuMs: () => cpuMs(proc.pid) ?? 0,
    rssMb: () => rssMb(proc.pid),
    stop: async () => {
      await stopProcess(proc, 10_000);
      home.remove();
    },
  };
}
