/**
 * `tools/list` over 50 servers × 100 tools as one aggregate: end to end against a real daemon with
 * 50 fixture processes, and in-process through `Gateway.listTools` over a directory built here.
 */
import { Client, SSEClientTransport, type Transport } from '@modelcontextprotocol/client';
import type { ToolItem, UpstreamLists } from '../../src/core/ports.js';
import { CLIENT_NAME, fixtureServers, spawnDaemon } from '../lib/gatehouse.js';
import { startPeer, type PeerPackage } from '../lib/peers.js';
import { openSocketTransport, RawSocketClient } from '../lib/socket-transport.js';
import { rssMb, settle } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';
import { benchGateway, benchPrincipal } from '../lib/gateway.js';

export interface CatalogResult {
  servers: number;
  toolsPerServer: number;
  e2e?: {
    readyMs: number;
    /** Server restarts the daemon needed before all were ready, and why. */
    startRestarts: number;
    startErrors: string[];
    rssMb: number | undefined;
    tools: number;
    responseBytes: number;
    /** From ready to the daemon and its servers at rest (under 5 % of a CPU over half a second), when the measurement began. */
    settledMs?: number;
    /** False when they were still busy after 15 s, and the measurement began anyway. */
    rested?: boolean;
    /** Raw JSON-RPC on the socket: request written → whole answer line received (not parsed). */
    raw: Summary;
    /** The SDK client's `listTools()` on the socket (includes the client parsing and validating 5,000 tools). */
    sdk: Summary;
  };
  e2eError?: string;
  /** mcp-hub aggregating the same servers, listed by the same SDK client over its SSE endpoint. */
  mcpHub?: { version: string; readyMs: number; tools: number; sdk: Summary; rssMb: number | undefined };
  mcpHubError?: string;
  inProcess: {
    /** Rebuilding the aggregate view (a server's lists changed). */
    refresh: Summary;
    /** `Gateway.listTools(principal, aggregate)`: the per-principal filter. */
    listTools: Summary;
    /** listTools plus `JSON.stringify` of the result, the part of the answer Gatehouse itself builds. */
    listAndSerialize: Summary;
    tools: number;
  };
}

/** The fixture's own tool shapes, so the in-process view matches what the daemon holds. */
function fixtureTools(count: number): ToolItem[] {
  const inputSchema = { type: 'object', properties: { text: { type: 'string', description: 'Returned unchanged.' } }, required: ['text'] };
  const tools: ToolItem[] = [{ name: 'echo', description: 'Returns its text argument.', inputSchema }];
  for (let i = 1; i < count; i++) tools.push({ name: `tool_${i}`, description: `Benchmark filler tool number ${i}; behaves like echo.`, inputSchema });
  return tools;
}

export function inProcessCatalog(servers: number, toolsPerServer: number, reps: number): CatalogResult['inProcess'] {
  const lists = new Map<string, UpstreamLists>();
  for (let i = 1; i <= servers; i++) {
    lists.set(`fixture${String(i).padStart(2, '0')}`, { tools: fixtureTools(toolsPerServer), resources: [], resourceTemplates: [], prompts: [] });
  }
  const gateway = benchGateway(lists, undefined, { append: () => undefined });
  const principal = benchPrincipal('in-process');
  const time = (fn: () => unknown, n: number): number[] => {
    for (let i = 0; i < Math.min(20, n); i++) fn(); // warm-up
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      fn();
      out.push(performance.now() - t0);
    }
    return out;
  };
  const count = gateway.listTools(principal, {}).length;
  return {
    refresh: summarize(time(() => gateway.refresh(), Math.max(10, Math.floor(reps / 4)))),
    listTools: summarize(time(() => gateway.listTools(principal, {}), reps)),
    listAndSerialize: summarize(time(() => JSON.stringify({ tools: gateway.listTools(principal, {}) }), reps)),
    tools: count,
  };
}

export async function catalogScenario(options: {
  servers: number;
  toolsPerServer: number;
  reps: number;
  mcpHub?: PeerPackage | undefined;
  log: (line: string) => void;
}): Promise<CatalogResult> {
  const { servers, toolsPerServer, reps, log } = options;
  const result: CatalogResult = { servers, toolsPerServer, inProcess: inProcessCatalog(servers, toolsPerServer, reps * 4) };
  log(`  in-process Gateway.listTools over ${result.inProcess.tools} tools: p50 ${result.inProcess.listTools.p50.toFixed(3)} ms`);
  log(`  starting a daemon with ${servers} fixture servers × ${toolsPerServer} tools ...`);
  let daemon;
  try {
    daemon = await spawnDaemon({ servers: fixtureServers(servers, toolsPerServer), readyTimeoutMs: 180_000 });
  } catch (error) {
    result.e2eError = String(error);
    return result;
  }
  try {
    const rest = await settle(daemon.pid);
    log(`  ready in ${daemon.readyMs.toFixed(0)} ms; ${rest.rested ? 'at rest' : 'still busy'} ${rest.waitedMs.toFixed(0)} ms later; measuring tools/list`);
    const raw = await RawSocketClient.open(daemon.socketPath, CLIENT_NAME, daemon.home.token);
    const first = JSON.parse(await raw.request('tools/list', {})) as { result?: { tools?: unknown[] } };
    const tools = first.result?.tools?.length ?? 0;
    if (tools !== servers * toolsPerServer) throw new Error(`the aggregate lists ${tools} tools, expected ${servers * toolsPerServer}`);
    let bytes = 0;
    for (let i = 0; i < 5; i++) bytes = await raw.requestBytes('tools/list', {});
    const rawSamples: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      bytes = await raw.requestBytes('tools/list', {});
      rawSamples.push(performance.now() - t0);
    }
    raw.close();
    const client = new Client({ name: 'gatehouse-bench', version: '1.0.0' });
    await client.connect(await openSocketTransport(daemon.socketPath, CLIENT_NAME, daemon.home.token));
    await client.listTools();
    const sdkSamples: number[] = [];
    for (let i = 0; i < Math.max(5, Math.floor(reps / 5)); i++) {
      const t0 = performance.now();
      await client.listTools();
      sdkSamples.push(performance.now() - t0);
    }
    await client.close();
    result.e2e = {
      readyMs: daemon.readyMs,
      startRestarts: daemon.startRestarts,
      startErrors: daemon.startErrors.slice(0, 5),
      rssMb: daemon.rssMb(),
      tools,
      responseBytes: bytes,
      settledMs: rest.waitedMs,
      rested: rest.rested,
      raw: summarize(rawSamples),
      sdk: summarize(sdkSamples),
    };
  } catch (error) {
    result.e2eError = String(error);
  } finally {
    await daemon.stop();
  }
  if (options.mcpHub) {
    log(`  starting mcp-hub with the same ${servers} servers ...`);
    try {
      const hub = await startPeer(options.mcpHub, { servers, toolsPerServer, readyTimeoutMs: 180_000 });
      try {
        const client = new Client({ name: 'gatehouse-bench', version: '1.0.0' });
        await client.connect(new SSEClientTransport(new URL(hub.url)) as Transport);
        const tools = (await client.listTools()).tools.length;
        const samples: number[] = [];
        for (let i = 0; i < Math.max(5, Math.floor(reps / 5)); i++) {
          const t0 = performance.now();
          await client.listTools();
          samples.push(performance.now() - t0);
        }
        await client.close();
        result.mcpHub = { version: options.mcpHub.version, readyMs: hub.readyMs, tools, sdk: summarize(samples), rssMb: rssMb(hub.pid) };
      } finally {
        await hub.stop();
      }
    } catch (error) {
      result.mcpHubError = String(error);
    }
  }
  return result;
}
