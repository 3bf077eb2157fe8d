/**
 * What telemetry costs per governed call (issue 16): the same chain with telemetry off and on, side
 * by side in one run, in rounds that alternate so that the machine's noise falls on both alike.
 *
 *   off:        the daemon without a `telemetry` config: the plain chain, no SDK loaded
 *   on:         the SDK as the daemon runs it (node/telemetry/sdk.ts): a span per call and per
 *               stage, every one sampled, the metrics fed from the audit records, and the batches
 *               exported over OTLP/HTTP to a receiver in this process that reads and drops them
 *               (so the export's own CPU is counted too)
 *   unsampled:  on, with `sampling: 0` (spans are not recorded; metrics still count)
 *
 * Each is measured twice: with an audit sink that keeps nothing (the chain's own CPU, where tracing
 * weighs most), and with the SQLite audit log the daemon uses (what a call really pays).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TelemetrySchema } from '../../src/common/config.js';
import type { AuditRecord, AuditSink, UpstreamConnection, UpstreamLists } from '../../src/core/ports.js';
import type { CallTracer } from '../../src/core/telemetry/ports.js';
import { SqliteAuditStore } from '../../src/node/audit/sqlite-store.js';
import { startSdk, type SdkTelemetry } from '../../src/node/telemetry/sdk.js';
import { benchGateway, benchPrincipal } from '../lib/gateway.js';

export interface TelemetryVariant {
  name: 'off' | 'on' | 'unsampled';
  /** Median over the rounds of µs per call. */
  noAuditUs: number;
  sqliteAuditUs: number;
}

export interface TelemetryBenchResult {
  calls: number;
  rounds: number;
  variants: TelemetryVariant[];
  /** Spans the receiver got during the run (the on variant's, proving they were exported). */
  spansReceived: number;
}

const inputSchema = { type: 'object' as const, properties: { text: { type: 'string' } }, required: ['text'] };

async function perCallUs(n: number, call: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await call();
  return ((performance.now() - t0) / n) * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** An OTLP/HTTP endpoint that reads each request, counts the spans of JSON trace requests, and answers 200. */
async function sink(): Promise<{ url: string; spans: () => number; close: () => Promise<void> }> {
  let spans = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces')
        spans += (
          Buffer.concat(chunks)
            .toString('utf8')
            .match(/"spanId"/g) ?? []
        ).length;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans: () => spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The calls' audit sink as the daemon builds it when telemetry is on: every record also feeds the metrics. */
function observed(audit: AuditSink, sdk: SdkTelemetry | undefined): AuditSink {
  if (!sdk) return audit;
  return {
    append: (record: AuditRecord) => {
      audit.append(record);
      sdk.observeAudit(record);
    },
    ...(audit.durable ? { durable: () => audit.durable!() } : {}),
  };
}

export async function telemetryScenario(options: { calls: number; rounds: number; log: (line: string) => void }): Promise<TelemetryBenchResult> {
  const { calls, rounds } = options;
  const receiver = await sink();
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-telemetry-'));
  const audit = new SqliteAuditStore({ file: join(dir, 'audit.db') });
  const observe = { servers: () => [], quotas: () => undefined, auditSync: () => undefined };
  const sdks: Record<'on' | 'unsampled', SdkTelemetry> = {
    on: startSdk({
      config: TelemetrySchema.parse({ endpoint: receiver.url, metricsIntervalMs: 1000 }),
      headers: {},
      version: 'bench',
      logger: { log: () => undefined },
      observe,
    }),
    unsampled: startSdk({
      config: TelemetrySchema.parse({ endpoint: receiver.url, sampling: 0, metricsIntervalMs: 1000 }),
      headers: {},
      version: 'bench',
      logger: { log: () => undefined },
      observe,
    }),
  };
  try {
    const instant: UpstreamConnection = {
      protocolVersion: '2025-11-25',
      serverInfo: { name: 'gatehouse-bench-echo', version: '1.0.0' },
      capabilities: { tools: {} },
      instructions: undefined,
      pid: undefined,
      listAll: async () => ({ tools: [{ name: 'echo', inputSchema }], resources: [], resourceTemplates: [], prompts: [] }),
      request: async () => ({ content: [{ type: 'text', text: 'hello from the gatehouse benchmark' }] }),
      ping: async () => undefined,
      close: async () => undefined,
      exited: new Promise(() => undefined),
    };
    const lists = new Map<string, UpstreamLists>([['fixture', { tools: [{ name: 'echo', inputSchema }], resources: [], resourceTemplates: [], prompts: [] }]]);
    const principal = benchPrincipal('socket');
    const signal = new AbortController().signal;
    const args = { text: 'hello from the gatehouse benchmark' };
    const nothing: AuditSink = { append: () => undefined };
    const names = ['off', 'on', 'unsampled'] as const;
    const gateways = names.map((name) => {
      const sdk = name === 'off' ? undefined : sdks[name];
      const tracer: CallTracer | undefined = sdk?.tracer;
      return {
        name,
        noAudit: benchGateway(lists, instant, observed(nothing, sdk), tracer),
        sqlite: benchGateway(lists, instant, observed(audit, sdk), tracer),
      };
    });
    const samples = new Map<string, { noAudit: number[]; sqlite: number[] }>(names.map((n) => [n, { noAudit: [], sqlite: [] }]));
    // Warm every path before the first measured round.
    for (const g of gateways) {
      await perCallUs(Math.min(2000, calls), () => g.noAudit.callTool(principal, {}, 'fixture__echo', args, undefined, { signal }));
      await perCallUs(Math.min(500, calls), () => g.sqlite.callTool(principal, {}, 'fixture__echo', args, undefined, { signal }));
    }
    const sqliteCalls = Math.max(200, Math.floor(calls / 10));
    for (let round = 0; round < rounds; round++) {
      // Alternate the order, so that neither variant always runs first.
      const order = round % 2 === 0 ? gateways : [...gateways].reverse();
      for (const g of order) {
        samples.get(g.name)!.noAudit.push(await perCallUs(calls, () => g.noAudit.callTool(principal, {}, 'fixture__echo', args, undefined, { signal })));
        samples.get(g.name)!.sqlite.push(await perCallUs(sqliteCalls, () => g.sqlite.callTool(principal, {}, 'fixture__echo', args, undefined, { signal })));
      }
    }
    const variants = names.map((name) => ({ name, noAuditUs: median(samples.get(name)!.noAudit), sqliteAuditUs: median(samples.get(name)!.sqlite) }));
    await Promise.all(Object.values(sdks).map((s) => s.shutdown()));
    return { calls, rounds, variants, spansReceived: receiver.spans() };
  } finally {
    await Promise.allSettled(Object.values(sdks).map((s) => s.shutdown()));
    audit.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
