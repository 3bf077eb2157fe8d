/**
 * Everything a benchmark client can call `echo` through, each a factory of client sessions: the
 * fixture directly over stdio (the baseline), a bare one-hop SDK proxy (the floor), Gatehouse over
 * its socket, through `gatehouse connect`, and over Streamable HTTP in both eras, and the peers.
 *
 * Clients are what IDEs run: the SDK v1 client (`@modelcontextprotocol/sdk`) for the 2025 era, on
 * every path of that era, baseline included; the SDK v2 client for the 2026-07-28 era, which v1
 * does not speak.
 */
import {
  Client as ClientV2,
  SSEClientTransport as SseV2,
  StreamableHTTPClientTransport as HttpV2,
  type Transport as TransportV2,
} from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport as SseV1 } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport as TransportV1 } from '@modelcontextprotocol/sdk/shared/transport.js';
import { BIN, CLIENT_NAME, FIXTURE, type RunningDaemon } from './gatehouse.js';
import type { RunningBareProxy, RunningPeer } from './peers.js';
import { descendantsOf } from './proc.js';
import { openLineTransport, openSocketTransport } from './socket-transport.js';

export const MODERN = '2026-07-28';
export type Era = 'legacy' | 'modern';
export const ARGS = { text: 'hello from the gatehouse benchmark' };

export interface Session {
  /** The name `echo` has on this path (`echo`, `fixture__echo`, ...). */
  tool: string;
  /** One `tools/call` (echo unless told otherwise); rejects on an error result. */
  call(tool?: string, args?: Record<string, unknown>): Promise<void>;
  /** Every tool name the session lists. */
  tools: string[];
  close(): Promise<void>;
}

export interface Target {
  id: string;
  label: string;
  kind: 'baseline' | 'floor' | 'gatehouse' | 'peer';
  /** How the client reaches the fixture, for the report. */
  path: string;
  era: Era;
  /** Which endpoint a verdict about this path concerns. */
  endpoint: 'stdio' | 'socket' | 'bridge' | 'http';
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

function check(result: unknown): void {
  if ((result as { isError?: boolean }).isError) throw new Error(`echo answered with an error: ${JSON.stringify(result).slice(0, 300)}`);
}

/** The path's name for `echo`; empty when the server has none (a caller then names its tool on every call). */
function pickEcho(tools: string[]): string {
  return tools.find((name) => name === 'echo') ?? tools.find((name) => name.endsWith('__echo')) ?? '';
}

/** An SDK v1 client session, as IDEs open them (2025 era). */
export async function connectV1(transport: TransportV1, onClose?: () => void): Promise<Session> {
  const client = new ClientV1(CLIENT_INFO);
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const tool = pickEcho(tools);
  return {
    tool,
    tools,
    call: async (name = tool, args = ARGS) => check(await client.callTool({ name, arguments: args })),
    close: async () => {
      // An IDE that closes a 2025 HTTP session says so (DELETE), so that the gateway can let it go.
      if (transport instanceof HttpV1) await transport.terminateSession().catch(() => undefined);
      await client.close().catch(() => undefined);
      onClose?.();
    },
  };
}

/** An SDK v2 client session pinned to the 2026-07-28 era. */
export async function connectV2(transport: TransportV2, onClose?: () => void): Promise<Session> {
  const client = new ClientV2(CLIENT_INFO, { versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(transport);
  if (client.getNegotiatedProtocolVersion() !== MODERN) throw new Error(`negotiated ${client.getNegotiatedProtocolVersion()} instead of ${MODERN}`);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const tool = pickEcho(tools);
  return {
    tool,
    tools,
    call: async (name = tool, args = ARGS) => check(await client.callTool({ name, arguments: args })),
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

/** The baseline: the client spawning the fixture and speaking to it over stdio. */
export function directTarget(era: Era, shared: boolean): Target {
  const fixtures = new PidSet();
  let sharedSession: Promise<Session> | undefined;
  let sharedUsers = 0;
  const openOwn = async (): Promise<Session> => {
    let forget = (): void => undefined;
    if (era === 'legacy') {
      const transport = new StdioV1({ command: process.execPath, args: [FIXTURE], stderr: 'ignore' });
      const session = await connectV1(transport, () => forget());
      forget = fixtures.add(transport.pid);
      return session;
    }
    const transport = new StdioV2({ command: process.execPath, args: [FIXTURE], stderr: 'ignore' });
    const session = await connectV2(transport, () => forget());
    forget = fixtures.add(transport.pid);
    return session;
  };
  return {
    id: shared ? `direct-1proc-${era}` : `direct-${era}`,
    label: shared ? `direct stdio, callers sharing 1 connection (${era})` : `direct stdio (${era})`,
    kind: 'baseline',
    endpoint: 'stdio',
    path: shared ? 'client → stdio → fixture; all callers share one connection' : 'client → stdio → fixture (one process per client)',
    era,
    shared,
    // One client alone is the latency baseline; for throughput, the callers share one fixture (as behind
    // every gateway but supergateway), because freshly spawned fixtures stay cold (unoptimised) for
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

/** The floor: the same fixture behind a bare one-hop SDK proxy, on a unix socket and on Streamable HTTP. */
export function bareTargets(bare: RunningBareProxy): Target[] {
  const proxy = () => [bare.pid];
  const upstream = () => descendantsOf(bare.pid);
  return [
    {
      id: 'bare-socket',
      label: 'bare one-hop SDK proxy, unix socket (2025)',
      kind: 'floor',
      endpoint: 'socket',
      path: 'SDK v1 client → unix socket (NDJSON) → SDK v1 Server → SDK v1 Client → stdio → fixture',
      era: 'legacy',
      open: async () => connectV1((await openLineTransport(bare.socketPath)) as unknown as TransportV1),
      proxyPids: proxy,
      upstreamPids: upstream,
    },
    {
      id: 'bare-http',
      label: 'bare one-hop SDK proxy, Streamable HTTP (2025)',
      kind: 'floor',
      endpoint: 'http',
      path: `SDK v1 client → Streamable HTTP ${bare.url} → SDK v1 Server → SDK v1 Client → stdio → fixture`,
      era: 'legacy',
      open: () => connectV1(new HttpV1(new URL(bare.url)) as unknown as TransportV1),
      proxyPids: proxy,
      upstreamPids: upstream,
    },
  ];
}

export function gatehouseTargets(daemon: RunningDaemon): Target[] {
  const proxy = () => [daemon.pid];
  const upstream = () => descendantsOf(daemon.pid);
  const bridges = new PidSet();
  // Sessions take the paired clients in turn, as many IDEs would (one client may hold 16 HTTP sessions).
  const paired = [{ name: CLIENT_NAME, token: daemon.home.token }, ...daemon.home.clients];
  let turn = 0;
  const next = () => paired[turn++ % paired.length]!;
  const auth = () => ({ headers: { Authorization: `Bearer ${next().token}` } });
  return [
    {
      id: 'gatehouse-socket-legacy',
      label: 'Gatehouse socket (2025)',
      kind: 'gatehouse',
      endpoint: 'socket',
      path: 'SDK v1 client → unix socket (hello line, then NDJSON MCP) → daemon → stdio → fixture',
      era: 'legacy',
      open: async () => {
        const client = next();
        return connectV1((await openSocketTransport(daemon.socketPath, client.name, client.token)) as unknown as TransportV1);
      },
      proxyPids: proxy,
      upstreamPids: upstream,
    },
    {
      id: 'gatehouse-socket-modern',
      label: `Gatehouse socket (${MODERN})`,
      kind: 'gatehouse',
      endpoint: 'socket',
      path: 'SDK v2 client → unix socket (hello line, then NDJSON MCP) → daemon → stdio → fixture',
      era: 'modern',
      open: async () => {
        const client = next();
        return connectV2(await openSocketTransport(daemon.socketPath, client.name, client.token));
      },
      proxyPids: proxy,
      upstreamPids: upstream,
    },
    {
      id: 'gatehouse-connect',
      label: 'Gatehouse via `gatehouse connect` (2025)',
      kind: 'gatehouse',
      endpoint: 'bridge',
      path: 'SDK v1 client → stdio → `gatehouse connect` bridge → unix socket → daemon → stdio → fixture',
      era: 'legacy',
      open: async () => {
        const transport = new StdioV1({
          command: process.execPath,
          args: [BIN, 'connect', '--client', CLIENT_NAME, '--token-file', daemon.home.tokenFile],
          env: { GATEHOUSE_HOME: daemon.home.home, PATH: process.env.PATH ?? '' },
          stderr: 'ignore',
        });
        let forget = (): void => undefined;
        const session = await connectV1(transport, () => forget());
        forget = bridges.add(transport.pid);
        return session;
      },
      // The bridges are part of Gatehouse's cost on this path.
      proxyPids: () => [daemon.pid, ...bridges.list()],
      upstreamPids: upstream,
    },
    {
      id: 'gatehouse-http-legacy',
      label: 'Gatehouse HTTP, sessionful (2025)',
      kind: 'gatehouse',
      endpoint: 'http',
      path: `SDK v1 client → Streamable HTTP ${daemon.httpUrl}/mcp (Bearer) → daemon → stdio → fixture`,
      era: 'legacy',
      open: () => connectV1(new HttpV1(new URL(`${daemon.httpUrl}/mcp`), { requestInit: auth() }) as unknown as TransportV1),
      proxyPids: proxy,
      upstreamPids: upstream,
    },
    {
      id: 'gatehouse-http-modern',
      label: `Gatehouse HTTP, stateless (${MODERN})`,
      kind: 'gatehouse',
      endpoint: 'http',
      path: `SDK v2 client → Streamable HTTP ${daemon.httpUrl}/mcp (Bearer) → daemon → stdio → fixture`,
      era: 'modern',
      open: () => connectV2(new HttpV2(new URL(`${daemon.httpUrl}/mcp`), { requestInit: auth() }) as TransportV2),
      proxyPids: proxy,
      upstreamPids: upstream,
    },
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
  const make = (era: Era): Target => ({
    id: `${name}-${era}`,
    label: `${name} ${peer.pkg.version} (${era === 'modern' ? MODERN : peer.transport === 'sse' ? 'SSE, 2025' : '2025'})`,
    kind: 'peer',
    endpoint: 'http',
    path: `SDK ${era === 'modern' ? 'v2' : 'v1'} client → ${peer.url} (${describe[name] ?? peer.transport})`,
    era,
    open: () => {
      const url = new URL(peer.url);
      if (era === 'modern') return connectV2((peer.transport === 'sse' ? new SseV2(url) : new HttpV2(url)) as TransportV2);
      return connectV1((peer.transport === 'sse' ? new SseV1(url) : new HttpV1(url)) as unknown as TransportV1);
    },
    proxyPids: proxy,
    upstreamPids: upstream,
  });
  return peer.modern ? [make('legacy'), make('modern')] : [make('legacy')];
}
