/**
 * The traced chain (core/telemetry/traced-chain.ts) with the real SDK adapter behind its port
 * (node/telemetry/sdk.ts), spans kept in the SDK's in-memory exporter: what one governed call
 * looks like as a trace, and how its W3C trace context travels from the caller to the server.
 */
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway, type GatewayDeps } from '../../src/core/gateway.js';
import { ADMIT, NoApprovals, NoQuotas, UnmanagedPolicy, type PolicyPort } from '../../src/core/governance.js';
import type { AuditRecord, ForwardOptions, UpstreamConnection, UpstreamLists } from '../../src/core/ports.js';
import type { Principal } from '../../src/core/principal.js';
import { withTraceContext } from '../../src/core/telemetry/traced-chain.js';
import { sdkCallTracer } from '../../src/node/telemetry/sdk.js';
import { FakeClock } from './fakes/fake-clock.js';

const principal: Principal = {
  user: { id: 'os:alice', source: 'os', displayName: 'alice', groups: [], roles: [] },
  client: { id: 'client:cursor', name: 'cursor', verified: true, transport: 'socket' },
};
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

class RecordingConnection implements UpstreamConnection {
  readonly protocolVersion = '2025-11-25';
  readonly serverInfo = { name: 'fake', version: '1' };
  readonly capabilities: Record<string, unknown> = { tools: {} };
  readonly instructions = undefined;
  readonly pid = 1;
  readonly exited = new Promise<never>(() => undefined);
  calls: { method: string; params: Record<string, unknown> }[] = [];
  async listAll(): Promise<UpstreamLists> {
    throw new Error('not used');
  }
  async request(method: string, params: Record<string, unknown>, _options: ForwardOptions): Promise<Record<string, unknown>> {
    this.calls.push({ method, params });
    return { content: [{ type: 'text', text: 'done' }] };
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

const providers: BasicTracerProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.shutdown()));
});

function setup(options: { traced?: boolean; policy?: PolicyPort; sampling?: number } = {}) {
  const exporter = new InMemorySpanExporter();
  const sampler = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampling ?? 1) });
  const provider = new BasicTracerProvider({ sampler, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  providers.push(provider);
  const audit: AuditRecord[] = [];
  const connection = new RecordingConnection();
  const ready = new Map<string, UpstreamLists>([
    ['memory', { tools: [{ name: 'read_graph' }, { name: 'delete_all' }], resources: [], resourceTemplates: [], prompts: [] }],
  ]);
  const deps: GatewayDeps = {
    directory: { readyLists: () => ready, connection: (server) => (ready.has(server) ? { connection, timeoutMs: 1000 } : undefined) },
    audit: { append: (record) => void audit.push(record) },
    clock: new FakeClock(),
    logger: { log: () => undefined },
    identity: { verify: () => ADMIT },
    policy: options.policy ?? new UnmanagedPolicy(),
    quota: new NoQuotas(),
    approval: new NoApprovals(),
    ...(options.traced === false ? {} : { tracer: sdkCallTracer(provider.getTracer('test')) }),
  };
  return { gateway: new Gateway(deps), exporter, connection, audit };
}

const ctx = () => ({ signal: new AbortController().signal });
const callSpan = (spans: ReadableSpan[]) => spans.find((s) => s.name.startsWith('tools/call'))!;
const children = (spans: ReadableSpan[]) => {
  const call = callSpan(spans);
  return spans
    .filter((s) => s.parentSpanContext?.spanId === call.spanContext().spanId)
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])
    .map((s) => `${s.name}${s.attributes['gatehouse.stage.phase'] === 'after' ? ' (after)' : ''}`);
};

/** Refuses every call, as a bundle without a permit would. */
const refusing: PolicyPort = Object.assign(new UnmanagedPolicy(), {
  decide: () => ({ allow: false, code: 'policy_denied' as const, reason: 'no permit', policyIds: ['p1'] }),
});

describe('tracing a governed call', () => {
  it('gives a call one span with a child span per stage, in the order the stages run', async () => {
    const { gateway, exporter } = setup();
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', { q: 'secret value' }, undefined, ctx());
    expect(outcome.kind).toBe('ok');
    const spans = exporter.getFinishedSpans();
    expect(children(spans)).toEqual([
      'gatehouse.audit',
      'gatehouse.identity',
      'gatehouse.policy',
      'gatehouse.quota',
      'gatehouse.approval',
      'gatehouse.upstream',
      'gatehouse.audit (after)',
    ]);
    const call = callSpan(spans);
    expect(call.name).toBe('tools/call read_graph');
    expect(call.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'read_graph',
      'gatehouse.server': 'memory',
      'gatehouse.client': 'cursor',
      'gatehouse.decision': 'ok',
    });
    expect(call.attributes['error.type']).toBeUndefined();
  });

  it('never puts an argument value or a result into a span', async () => {
    const { gateway, exporter } = setup();
    await gateway.callTool(principal, {}, 'memory__read_graph', { q: 'hunter2-argument' }, undefined, ctx());
    const text = JSON.stringify(exporter.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })));
    expect(text).not.toContain('hunter2-argument');
    expect(text).not.toContain('done');
  });

  it('continues the trace the caller sent in _meta and hands the upstream span to the server in its _meta', async () => {
    const { gateway, exporter, connection } = setup();
    const meta = { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, tracestate: 'vendor=abc', progressToken: 7 };
    await gateway.callTool(principal, {}, 'memory__read_graph', {}, meta, ctx());
    const spans = exporter.getFinishedSpans();
    const call = callSpan(spans);
    expect(call.spanContext().traceId).toBe(TRACE_ID);
    expect(call.parentSpanContext?.spanId).toBe(PARENT_ID);
    const upstream = spans.find((s) => s.name === 'gatehouse.upstream')!;
    const sent = connection.calls[0]!.params._meta as Record<string, unknown>;
    expect(sent).toEqual({ traceparent: `00-${TRACE_ID}-${upstream.spanContext().spanId}-01`, tracestate: 'vendor=abc', progressToken: 7 });
  });

  it('starts a new trace when the caller sent a malformed traceparent, and still gives the server a valid one', async () => {
    const { gateway, exporter, connection } = setup();
    await gateway.callTool(principal, {}, 'memory__read_graph', {}, { traceparent: '00-not-a-trace-01' }, ctx());
    const call = callSpan(exporter.getFinishedSpans());
    expect(call.parentSpanContext).toBeUndefined();
    expect((connection.calls[0]!.params._meta as Record<string, string>).traceparent).toMatch(new RegExp(`^00-${call.spanContext().traceId}-[0-9a-f]{16}-01$`));
  });

  it('names the deny code and the stage that refused, and opens no span for the stages the call never reached', async () => {
    const { gateway, exporter, connection } = setup({ policy: refusing });
    const outcome = await gateway.callTool(principal, {}, 'memory__delete_all', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'denied', code: 'policy_denied' });
    expect(connection.calls).toEqual([]);
    const spans = exporter.getFinishedSpans();
    expect(children(spans)).toEqual(['gatehouse.audit', 'gatehouse.identity', 'gatehouse.policy', 'gatehouse.audit (after)']);
    const call = callSpan(spans);
    expect(call.attributes).toMatchObject({
      'gatehouse.decision': 'denied',
      'gatehouse.deny.code': 'policy_denied',
      'gatehouse.deny.stage': 'policy',
      'error.type': 'policy_denied',
    });
    expect(call.status).toMatchObject({ code: 2, message: 'policy_denied' });
    expect(spans.find((s) => s.name === 'gatehouse.policy')!.attributes['gatehouse.deny.code']).toBe('policy_denied');
  });

  it('traces a call to a hidden tool as refused, without an upstream span', async () => {
    const hidden: PolicyPort = Object.assign(new UnmanagedPolicy(), { visible: () => false });
    const { gateway, exporter } = setup({ policy: hidden });
    await gateway.callTool(principal, {}, 'memory__delete_all', {}, undefined, ctx());
    const spans = exporter.getFinishedSpans();
    expect(children(spans)).toEqual(['gatehouse.audit', 'gatehouse.audit (after)']);
    expect(callSpan(spans).attributes).toMatchObject({ 'gatehouse.deny.code': 'unknown_tool', 'gatehouse.decision': 'denied' });
  });

  it('records nothing for a call the sampler leaves out, and still passes its trace id on to the server, marked not sampled', async () => {
    const { gateway, exporter, connection } = setup({ sampling: 0 });
    await gateway.callTool(principal, {}, 'memory__read_graph', {}, { traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` }, ctx());
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect((connection.calls[0]!.params._meta as Record<string, string>).traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
  });

  it('follows the caller sampled flag over its own ratio', async () => {
    const { gateway, exporter } = setup({ sampling: 0 });
    await gateway.callTool(principal, {}, 'memory__read_graph', {}, { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` }, ctx());
    expect(callSpan(exporter.getFinishedSpans()).spanContext().traceId).toBe(TRACE_ID);
  });

  it('without a tracer, passes the caller _meta to the server exactly as sent', async () => {
    const { gateway, exporter, connection } = setup({ traced: false });
    const meta = { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, tracestate: 'vendor=abc' };
    await gateway.callTool(principal, {}, 'memory__read_graph', {}, meta, ctx());
    expect(connection.calls[0]!.params._meta).toEqual(meta);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('withTraceContext', () => {
  it('replaces the caller trace context and keeps the rest of _meta', () => {
    expect(withTraceContext({ traceparent: 'old', tracestate: 'old=1', progressToken: 1 }, { traceparent: 'new' })).toEqual({
      traceparent: 'new',
      progressToken: 1,
    });
    expect(withTraceContext(undefined, { traceparent: 'new', tracestate: 'a=b' })).toEqual({ traceparent: 'new', tracestate: 'a=b' });
  });
});
