/**
 * The peer gateways, started with `node <their bin>` (never npx) around the same fixture:
 * supergateway 4.x (stdio → Streamable HTTP, stateful), mcp-proxy 6.x (stdio → Streamable HTTP,
 * both eras) and mcp-hub 4.x (many stdio servers → one SSE endpoint).
 *
 * They are found in `--peers DIR` / GATEHOUSE_BENCH_PEERS (a folder with node_modules/), else in the
 * repository's own node_modules. A peer that is not installed is reported, not fatal.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE, REPO } from './gatehouse.js';
import { tmpdir as osTmpdir } from 'node:os';
import { FatalError, freePort, startProcess, stopProcess, waitFor, waitForHttp, type Tracked } from './proc.js';

export type PeerName = 'supergateway' | 'mcp-proxy' | 'mcp-hub';
export const PEER_MAJOR: Record<PeerName, number> = { supergateway: 4, 'mcp-proxy': 6, 'mcp-hub': 4 };

export interface PeerPackage {
  name: PeerName;
  version: string;
  bin: string;
}

/** Where a peer's package is installed, or why it cannot be used. */
export function findPeer(name: PeerName, peersDir: string | undefined): PeerPackage | { name: PeerName; missing: string } {
  const roots = [...(peersDir ? [peersDir] : []), REPO];
  for (const root of roots) {
    const dir = join(root, 'node_modules', name);
    const manifestPath = join(dir, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { version: string; bin?: string | Record<string, string> };
    const major = Number(manifest.version.split('.')[0]);
    if (major !== PEER_MAJOR[name])
      return { name, missing: `${name}@${manifest.version} is installed in ${root}, but the benchmark expects ${PEER_MAJOR[name]}.x` };
    const binRel = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[name];
    if (!binRel) return { name, missing: `${name}@${manifest.version} declares no "${name}" bin` };
    return { name, version: manifest.version, bin: join(dir, binRel) };
  }
  return {
    name,
    missing: `not installed (looked in ${roots.map((r) => join(r, 'node_modules')).join(', ')}); add ${name}@${PEER_MAJOR[name]} to devDependencies or pass --peers DIR`,
  };
}

export interface RunningPeer {
  pkg: PeerPackage;
  process: Tracked;
  pid: number;
  /** The MCP endpoint a client connects to. */
  url: string;
  transport: 'streamable-http' | 'sse';
  /** Serves the 2026-07-28 stateless era too. */
  modern: boolean;
  readyMs: number;
  /** Anything about this run of the peer that the report should say. */
  notes: string[];
  stop(): Promise<void>;
}

/** `servers` and `toolsPerServer` apply to mcp-hub only (the other peers front one server). */
export async function startPeer(pkg: PeerPackage, options: { servers?: number; toolsPerServer?: number; readyTimeoutMs?: number } = {}): Promise<RunningPeer> {
  const port = await freePort();
  const t0 = performance.now();
  const base = `http://127.0.0.1:${port}`;
  if (pkg.name === 'supergateway') {
    // Stateful: one fixture child per client session (its stateless mode spawns a child per request).
    // Logging off: at its default level it prints every message it relays.
    const proc = startProcess('supergateway', process.execPath, [
      pkg.bin,
      '--stdio',
      `${quote(process.execPath)} ${quote(FIXTURE)}`,
      '--outputTransport',
      'streamableHttp',
      '--stateful',
      '--port',
      String(port),
      '--logLevel',
      'none',
    ]);
    await waitForHttp(`${base}/mcp`, 20_000, proc);
    return done(pkg, proc, `${base}/mcp`, 'streamable-http', false, t0);
  }
  if (pkg.name === 'mcp-proxy') {
    // One fixture child shared by every session; the stream endpoint serves both eras (--modern is its default).
    const proc = startProcess('mcp-proxy', process.execPath, [
      pkg.bin,
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--server',
      'stream',
      '--',
      process.execPath,
      FIXTURE,
    ]);
    await waitForHttp(`${base}/mcp`, 20_000, proc);
    return done(pkg, proc, `${base}/mcp`, 'streamable-http', true, t0);
  }
  // mcp-hub: its state, logs and caches go to a throwaway HOME/XDG tree. Its marketplace catalogue is
  // pre-seeded there as fresh, so that it does not try to fetch it from the internet at start-up.
  const home = mkdtempSync(join(tmpdir(), 'mcp-hub-bench-'));
  const cacheDir = join(home, 'data', 'mcp-hub', 'cache');
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(
    join(cacheDir, 'registry.json'),
    JSON.stringify({
      registry: { version: 'bench', generatedAt: Date.now(), totalServers: 1, servers: [{ id: 'none', name: 'none', description: 'placeholder' }] },
      lastFetchedAt: Date.now(),
      serverDocumentation: {},
    }),
  );
  const configFile = join(home, 'mcp-hub.json');
  const count = options.servers ?? 1;
  const tools = options.toolsPerServer ?? 1;
  const mcpServers: Record<string, { command: string; args: string[] }> = {};
  for (let i = 1; i <= count; i++) {
    mcpServers[count === 1 ? 'fixture' : `fixture${String(i).padStart(2, '0')}`] = {
      command: process.execPath,
      args: tools > 1 ? [FIXTURE, '--tools', String(tools)] : [FIXTURE],
    };
  }
  writeFileSync(configFile, JSON.stringify({ mcpServers }, null, 2));
  const env = { ...process.env, HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_STATE_HOME: join(home, 'state'), XDG_CONFIG_HOME: join(home, 'config') };
  const proc = startProcess('mcp-hub', process.execPath, [pkg.bin, '--port', String(port), '--config', configFile], { env, cwd: home });
  try {
    await waitFor(
      'mcp-hub to connect its server',
      async () => {
        if (proc.child.exitCode !== null) throw new FatalError(`mcp-hub exited early:\n${proc.output().slice(-2000)}`);
        const response = await fetch(`${base}/api/health`).catch(() => undefined);
        if (!response?.ok) return false;
        const health = (await response.json()) as { servers?: { status?: string }[] };
        return health.servers?.length === count && health.servers.every((srv) => srv.status === 'connected');
      },
      options.readyTimeoutMs ?? 30_000,
    );
  } catch (error) {
    await stopProcess(proc);
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  const peer = done(pkg, proc, `${base}/mcp`, 'sse', false, t0);
  if (/Fetching marketplace registry/.test(proc.output())) peer.notes.push('mcp-hub tried to fetch its marketplace catalogue despite the seeded cache');
  const stop = peer.stop;
  peer.stop = async () => {
    await stop();
    rmSync(home, { recursive: true, force: true });
  };
  return peer;
}

function done(pkg: PeerPackage, proc: Tracked, url: string, transport: RunningPeer['transport'], modern: boolean, t0: number): RunningPeer {
  return { pkg, process: proc, pid: proc.pid, url, transport, modern, readyMs: performance.now() - t0, notes: [], stop: () => stopProcess(proc) };
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export interface RunningBareProxy {
  pid: number;
  socketPath: string;
  url: string;
  readyMs: number;
  stop(): Promise<void>;
}

export const BARE_PROXY = join(REPO, 'bench', 'fixtures', 'bare-proxy.mjs');

/** The bare one-hop SDK proxy (bench/fixtures/bare-proxy.mjs) around the fixture. */
export async function startBareProxy(): Promise<RunningBareProxy> {
  const dir = mkdtempSync(join(osTmpdir(), 'gh-bench-bare-'));
  const socketPath = join(dir, 'bare.sock');
  const port = await freePort();
  const t0 = performance.now();
  const proc = startProcess('bare proxy', process.execPath, [BARE_PROXY, '--socket', socketPath, '--port', String(port), '--', process.execPath, FIXTURE], {
    cwd: REPO,
  });
  try {
    const line = await waitFor(
      'the bare proxy to listen',
      async () => {
        if (proc.child.exitCode !== null) throw new FatalError(`the bare proxy exited early:\n${proc.output().slice(-2000)}`);
        return proc
          .output()
          .split('\n')
          .find((l) => l.startsWith('{"socket"'));
      },
      20_000,
    );
    const info = JSON.parse(line) as { socket: string; url: string };
    return {
      pid: proc.pid,
      socketPath: info.socket,
      url: info.url,
      readyMs: performance.now() - t0,
      stop: async () => {
        await stopProcess(proc);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopProcess(proc);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
