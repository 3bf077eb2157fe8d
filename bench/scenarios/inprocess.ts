/**
 * Gatehouse's own CPU cost per governed call, with no process hops and no serialisation: the same
 * SDK client, downstream server, gateway chain, audit log and upstream SDK client the daemon runs,
 * linked by in-memory transports to an in-process copy of the fixture's handlers.
 *
 *   direct:   client ⇄ fixture server
 *   chain:    Gateway.callTool with an upstream that answers at once (the governance chain alone)
 *   gateway:  client ⇄ downstream server → Gateway (chain + SQLite audit) → upstream client ⇄ fixture server
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, InMemoryTransport, type Transport } from '@modelcontextprotocol/client';
import { Server } from '@modelcontextprotocol/server';
import type { AuditSink, UpstreamConnection, UpstreamLists } from '../../src/core/ports.js';
import { SqliteAuditStore } from '../../src/node/audit/sqlite-store.js';
import { createDownstreamServer } from '../../src/node/downstream/mcp-server.js';
import { ListTexts } from '../../src/node/downstream/wire-json.js';
import { benchGateway, benchPrincipal } from '../lib/gateway.js';

export interface InProcessResult {
  calls: number;
  /** µs per call, sequential. */
  directUs: number;
  chainUs: number;
  /** The same chain with an audit sink that keeps nothing: what the durable audit costs, by difference. */
  chainNoAuditUs: number;
  gatewayUs: number;
}

const inputSchema = { type: 'object' as const, properties: { text: { type: 'string' } }, required: ['text'] };

function fixtureServer(): Server {
  const server = new Server({ name: 'gatehouse-bench-echo', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler('tools/list', async () => ({ tools: [{ name: 'echo', description: 'Returns its text argument.', inputSchema }] }));
  server.setRequestHandler('tools/call', async (request) => {
    const text = (request.params?.arguments as { text?: unknown } | undefined)?.text;
    return { content: [{ type: 'text' as const, text: typeof text === 'string' ? text : '' }] };
  });
  return server;
}

async function linked(server: Server): Promise<Client> {
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(b as unknown as Parameters<Server['connect']>[0]);
  const client = new Client({ name: 'gatehouse-bench', version: '1.0.0' });
  await client.connect(a as Transport);
  return client;
}

async function perCallUs(n: number, call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(2000, n); i++) await call();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await call();
  return ((performance.now() - t0) / n) * 1000;
}

export async function inProcessScenario(calls: number): Promise<InProcessResult> {
  const args = { name: 'echo', arguments: { text: 'hello from the gatehouse benchmark' } };
  const direct = await linked(fixtureServer());
  const directUs = await perCallUs(calls, () => direct.callTool(args));
  await direct.close();

  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-inproc-'));
  // The store the daemon uses, with its default durability: every call waits for its attempt and its outcome to commit.
  const audit = new SqliteAuditStore({ file: join(dir, 'audit.db') });
  try {
    const upstreamClient = await linked(fixtureServer());
    const upstream: UpstreamConnection = {
      protocolVersion: upstreamClient.getNegotiatedProtocolVersion(),
      serverInfo: { name: 'gatehouse-bench-echo', version: '1.0.0' },
      capabilities: { tools: {} },
      instructions: undefined,
      pid: undefined,
      listAll: async () => ({ tools: [{ name: 'echo', inputSchema }], resources: [], resourceTemplates: [], prompts: [] }),
      // As the real connector forwards: the SDK client's request(), which validates the result.
      request: async (method, params, options) =>
        (await upstreamClient.request({ method, params } as never, { signal: options.signal, timeout: options.timeoutMs } as never)) as Record<string, unknown>,
      ping: async () => undefined,
      close: async () => undefined,
      exited: new Promise(() => undefined),
    };
    const instant: UpstreamConnection = { ...upstream, request: async () => ({ content: [{ type: 'text', text: 'hello from the gatehouse benchmark' }] }) };
    const lists = new Map<string, UpstreamLists>([['fixture', { tools: [{ name: 'echo', inputSchema }], resources: [], resourceTemplates: [], prompts: [] }]]);
    const makeGateway = (connection: UpstreamConnection, sink: AuditSink = audit) => benchGateway(lists, connection, sink);
    const principal = benchPrincipal('socket');
    const chainGateway = makeGateway(instant);
    const signal = new AbortController().signal;
    const chainUs = await perCallUs(calls, () => chainGateway.callTool(principal, {}, 'fixture__echo', args.arguments, undefined, { signal }));
    const noAudit = makeGateway(instant, { append: () => undefined });
    const chainNoAuditUs = await perCallUs(calls, () => noAudit.callTool(principal, {}, 'fixture__echo', args.arguments, undefined, { signal }));

    const gateway = makeGateway(upstream);
    const downstream = createDownstreamServer(
      gateway,
      { session: { principal, scope: {}, era: 'legacy' }, running: 0 },
      { version: 'bench', lists: new ListTexts() },
    );
    const client = await linked(downstream);
    const viaArgs = { ...args, name: 'fixture__echo' };
    const gatewayUs = await perCallUs(calls, () => client.callTool(viaArgs));
    await client.close();
    await upstreamClient.close();
    return { calls, directUs, chainUs, chainNoAuditUs, gatewayUs };
  } finally {
    audit.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
