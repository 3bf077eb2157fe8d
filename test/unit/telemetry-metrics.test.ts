/**
 * The daemon's metrics (node/telemetry/sdk.ts, CallMetrics) on the real SDK, collected on demand:
 * what the audit records count (approvals, restarts) and what is read from status when collected
 * (quota use against limits, audit sync lag). Calls, refusals and latency are proven end to end
 * in test/integration/telemetry.test.ts.
 */
import { MeterProvider, MetricReader, type DataPoint, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditSyncStatus, QuotasStatus } from '../../src/common/status.js';
import type { AuditRecord } from '../../src/core/ports.js';
import { CallMetrics, type TelemetryObservations } from '../../src/node/telemetry/sdk.js';

/** Collects when asked, as a collector's scrape would. */
class OnDemandReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const providers: MeterProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.shutdown()));
});

function setup(observe: Partial<TelemetryObservations> = {}) {
  const reader = new OnDemandReader();
  const provider = new MeterProvider({ readers: [reader] });
  providers.push(provider);
  const metrics = new CallMetrics(provider, { servers: () => [], quotas: () => undefined, auditSync: () => undefined, ...observe }, '0.0.0');
  const points = async (name: string): Promise<DataPoint<number>[]> => {
    const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
    const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
    return (metric?.dataPoints ?? []) as DataPoint<number>[];
  };
  return { metrics, points };
}

const at = '2026-12-02T00:00:00.000Z';
const who = { callId: 'c1', user: 'u', client: 'ide', server: 'crm', kind: 'tool' as const, name: 'refund' };

describe('the daemon metrics', () => {
  it('counts approvals asked, answered by the person, and expired', async () => {
    const { metrics, points } = setup();
    const records: AuditRecord[] = [
      { type: 'approval.requested', at, ...who },
      { type: 'approval.requested', at, ...who },
      { type: 'approval.decided', at, ...who, decision: 'allowed', approval: { required: true, decision: 'approved', scope: 'once', by: 'user', at } },
      { type: 'approval.decided', at, ...who, decision: 'denied', approval: { required: true, decision: 'timeout', at } },
    ];
    for (const record of records) metrics.observe(record);
    expect((await points('gatehouse.approvals.asked')).map((p) => p.value)).toEqual([2]);
    const answered = await points('gatehouse.approvals.answered');
    expect(answered.map((p) => [p.attributes['gatehouse.approval.decision'], p.value])).toEqual([['approved', 1]]);
    expect((await points('gatehouse.approvals.expired')).map((p) => [p.attributes['gen_ai.tool.name'], p.value])).toEqual([['refund', 1]]);
  });

  it('counts server restarts per server', async () => {
    const { metrics, points } = setup();
    metrics.observe({ type: 'server.restarted', at, server: 'crm', detail: { restarts: 1 } });
    metrics.observe({ type: 'server.restarted', at, server: 'crm', detail: { restarts: 2 } });
    expect((await points('gatehouse.server.restarts')).map((p) => [p.attributes['gatehouse.server'], p.value])).toEqual([['crm', 2]]);
  });

  it('reports quota use against each limit, and the audit sync lag, as status has them when collected', async () => {
    const quotas: QuotasStatus = {
      rateLimits: [],
      quotas: [
        {
          id: 'writes-per-day',
          window: 'day',
          per: 'user',
          tools: 'crm__*',
          limit: 50,
          usage: [
            { scope: 'user a', used: 12, remaining: 38 },
            { scope: 'user a, tool crm__refund', used: 30, remaining: 20 },
          ],
        },
      ],
    };
    const sync: AuditSyncStatus = { hub: 'https://hub', device: 'd', state: 'backing-off', acked: 10, head: 25, lagRecords: 15, lagSeconds: 42 };
    const { points } = setup({ quotas: () => quotas, auditSync: () => sync });
    expect((await points('gatehouse.quota.used')).map((p) => [p.attributes['gatehouse.quota.id'], p.value])).toEqual([['writes-per-day', 30]]);
    expect((await points('gatehouse.quota.limit')).map((p) => p.value)).toEqual([50]);
    expect((await points('gatehouse.audit.sync.lag')).map((p) => [p.attributes['gatehouse.audit.sync.state'], p.value])).toEqual([['backing-off', 42]]);
    expect((await points('gatehouse.audit.sync.lag.records')).map((p) => p.value)).toEqual([15]);
  });

  it('leaves resource URIs out of metric attributes', async () => {
    const { metrics, points } = setup();
    metrics.observe({
      type: 'call.outcome',
      at,
      callId: 'c2',
      client: 'ide',
      server: 'fs',
      kind: 'resource',
      name: 'file:///home/a/salaries.xlsx',
      decision: 'ok',
      latencyMs: 3,
    });
    const calls = await points('gatehouse.calls');
    expect(calls).toHaveLength(1);
    expect(JSON.stringify(calls[0]!.attributes)).not.toContain('salaries');
    expect(calls[0]!.attributes['mcp.method.name']).toBe('resources/read');
  });
});
