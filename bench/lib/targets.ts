/**
 * Everything a benchmark client can call `echo` through, each a factory of SDK client sessions:
 * the fixture directly over stdio (the baseline), Gatehouse over its socket, through
 * `gatehouse connect`, and over Streamable HTTP in both eras, and the peers.
 */
import { Client, SSEClientTransport, StreamableHTTPClientTransport, type Transport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { BIN, CLIENT_NAME, FIXTURE, type RunningDaemon } from './gatehouse.js';
import type { RunningPeer } from './peers.js';
import { descendantsOf } from './proc.js';
import { openSocketTransport } from './socket-transport.js';

export const MODERN = '2026-07-28';

export interface Session {
  client: Client;
  /** The name `echo` has on this path (`echo`, `fixture__echo`, ...). */
  tool: string;
  close(): Promise<void>;
}

export interface Target {
  id: string;
  label: string;
  kind: 'baseline' | 'gatehouse' | 'peer';
  /** How the client reaches the fixture, for the report. */
  path: string;
  era: 'legacy' | 'modern';
  /** One new client session. */
  open(): Promise<Session>;
  /** Throughput callers share one session (and so one fixture process) rather than one session each. */
  shared?: boolean;
  /** Which load shapes this path takes part in (both unless said otherwise). */
  latency?: boolean;
  throughput?: boolean;
  /** Processes that are the intermediary: their CPU time is the gateway's cost. */
  proxyPids(): number[];
  /** The fixture processes behind this target. */
  upstreamPids(): number[];
}

const CLIENT_INFO = { name: 'gatehouse-bench', version: '1.0.0' };

function newClient(era: 'legacy' | 'modern'): Client {
  return new Client(CLIENT_INFO, era === 'modern' ? { versionNegotiation: { mode: { pin: MODERN } } } : {});
}

async function connect(era: 'legacy' | 'modern', transport: Transport, onClose?: () => void): Promise<Session> {
  const client = newClient(era);
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const tool = tools.find((name) => name === 'echo') ?? tools.find((name) => name.endsWith('__echo') || name.endsWith('echo'));
  if (!tool) throw new Error(`no echo tool among ${JSON.stringify(tools)}`);
  const expected = era === 'modern' ? MODERN : undefined;
  if (expected && client.getNegotiatedProtocolVersion() !== expected) {
    throw new Error(`negotiated ${client.getNegotiatedProtocolVersion()} instead of ${expected}`);
  }
  return {
    client,
    tool,
    close: async () => {
      await client.close().catch(() => undefined);
      onClose?.();
    },
  };
}

/** A set of pids that belong to open sessions (fixtures of the baseline, bridges of `gatehouse connect`). */
class PidSet {
  private pids = new Set<number>();
  add(pid: number | null | undefined): () => void {
    if (typeof pid !== 'number') return () => undefined;
    this.pids.add(pid);
    return () => this.pids.delete(pid);
  }
  list(): number[] {
    return [...this.pids];
  }
}

function stdioTransport(command: string, args: string[], env?: Record<string, string>): StdioClientTransport {
  return new StdioClientTransport({ command, args, stderr: 'ignore', ...(env ? { env } : {}) });
}

/** The baseline: the SDK client spawning the fixture and speaking to it over stdio. */
export function directTarget(era: 'legacy' | 'modern', shared: boolean): Target {
  const fixtures = new PidSet();
  let sharedSession: Promise<Session> | undefined;
  let sharedUsers = 0;
  const openOwn = async (): Promise<Session> => {
    const transport = stdioTransport(process.execPath, [FIXTURE]);
    let forget = (): void => undefined;
    const session = await connect(era, transport, () => forget());
    forget = fixtures.add(transport.pid);
    return session;
  };
  return {
    id: shared ? `direct-1proc-${era}` : `direct-${era}`,
    label: shared ? `direct stdio, 16 callers on 1 connection (${era})` : `direct stdio (${era})`,
    kind: 'baseline',
    path: shared ? 'SDK client → stdio → fixture; all callers share one connection' : 'SDK client → stdio → fixture (one process per client)',
    era,
    shared,
    // One client alone is the latency baseline; for throughput, 16 callers share one fixture (as behind
    // every gateway but supergateway), because 16 freshly spawned fixtures stay cold (unoptimised) for
    // most of a short window and would measure V8's warm-up rather than the transport.
    latency: !shared,
    throughput: shared,
    open: async () => {
      if (!shared) return openOwn();
      sharedSession ??= openOwn();
      const session = await sharedSession;
      sharedUsers++;
      return {
        ...session,
        close: async () => {
          if (--sharedUsers > 0) return;
          sharedSession = undefined;
          await session.close();
        },
      };
    },
    proxyPids: () => [],
    upstreamPids: () => fixtures.list(),
  };
}

export function gatehouseTargets(daemon: RunningDaemon): Target[] {
  const proxy = () => [daemon.pid];
  const upstream = () => descendantsOf(daemon.pid);
  const bridges = new PidSet();
  const http = (era: 'legacy' | 'modern'): Target => ({
    id: `gatehouse-http-${era}`,
    label: era === 'modern' ? `Gatehouse HTTP, stateless (${MODERN})` : 'Gatehouse HTTP, sessionful (2025)',
    kind: 'gatehouse',
    path: `SDK client → Streamable HTTP ${daemon.httpUrl}/mcp (Bearer) → daemon → stdio → fixture`,
    era,
    open: () =>
      connect(
        era,
        new StreamableHTTPClientTransport(new URL(`${daemon.httpUrl}/mcp`), {
          requestInit: { headers: { Authorization: `Bearer ${daemon.home.token}` } },
        }) as Transport,
      ),
    proxyPids: proxy,
    upstreamPids: upstream,
  });
  const socket = (era: 'legacy' | 'modern'): Target => ({
    id: `gatehouse-socket-${era}`,
    label: era === 'modern' ? `Gatehouse socket (${MODERN})` : 'Gatehouse socket (2025)',
    kind: 'gatehouse',
    path: 'SDK client → unix socket (hello line, then NDJSON MCP) → daemon → stdio → fixture',
    era,
    open: async () => connect(era, await openSocketTransport(daemon.socketPath, CLIENT_NAME, daemon.home.token)),
    proxyPids: proxy,
    upstreamPids: upstream,
  });
  return [
    socket('legacy'),
    socket('modern'),
    {
      id: 'gatehouse-connect',
      label: 'Gatehouse via `gatehouse connect` (2025)',
      kind: 'gatehouse',
      path: 'SDK client → stdio → `gatehouse connect` bridge → unix socket → daemon → stdio → fixture',
      era: 'legacy',
      open: async () => {
        const transport = stdioTransport(process.execPath, [BIN, 'connect', '--client', CLIENT_NAME, '--token-file', daemon.home.tokenFile], {
          GATEHOUSE_HOME: daemon.home.home,
          PATH: process.env.PATH ?? '',
        });
        let forget = (): void => undefined;
        const session = await connect('legacy', transport, () => forget());
        forget = bridges.add(transport.pid);
        return session;
      },
      // The bridges are part of Gatehouse's cost on this path.
      proxyPids: () => [daemon.pid, ...bridges.list()],
      upstreamPids: upstream,
    },
    http('legacy'),
    http('modern'),
  ];
}

export function peerTargets(peer: RunningPeer): Target[] {
  const name = peer.pkg.name;
  const proxy = () => [peer.pid];
  const upstream = () => descendantsOf(peer.pid);
  const describe: Record<string, string> = {
    supergateway: 'stateful Streamable HTTP; one fixture child per session',
    'mcp-proxy': 'Streamable HTTP; one fixture child shared by all sessions',
    'mcp-hub': 'SSE at /mcp; one fixture child shared, tools namespaced',
  };
  const make = (era: 'legacy' | 'modern'): Target => ({
    id: `${name}-${era}`,
    label: `${name} ${peer.pkg.version} (${era === 'modern' ? MODERN : peer.transport === 'sse' ? 'SSE, 2025' : '2025'})`,
    kind: 'peer',
    path: `SDK client → ${peer.url} (${describe[name] ?? peer.transport})`,
    era,
    open: () => connect(era, (peer.transport === 'sse' ? new SSEClientTransport(new URL(peer.url)) : new StreamableHTTPClientTransport(new URL(peer.url))) as Transport),
    proxyPids: proxy,
    upstreamPids: upstream,
  });
  return peer.modern ? [make('legacy'), make('modern')] : [make('legacy')];
}
