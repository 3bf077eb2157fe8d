/**
 * The OpenTelemetry SDK behind the telemetry ports: a tracer for the chain (core/telemetry/ports.ts)
 * and the daemon's metrics, both exported over OTLP/HTTP. This module is the only one that imports
 * the SDK, and src/node/telemetry/open.ts loads it with a dynamic import only when telemetry is on.
 *
 * Nothing here is registered globally (no global tracer or meter provider, no global propagator):
 * the providers belong to this daemon and end with it. Export runs in the background, batched and
 * bounded: a collector that is down or slow costs dropped spans, never a slower or failed call.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type ObservableResult,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { TelemetryConfig } from '../../common/config.js';
import type { AuditSyncStatus, QuotasStatus } from '../../common/status.js';
import type { GovernedCall, Outcome } from '../../core/chain.js';
import type { AuditRecord, Logger } from '../../core/ports.js';
import type { CallTrace, CallTracer, StageTrace, TraceContext, TracedStage } from '../../core/telemetry/ports.js';

/** What the metrics read when they are collected: the daemon's status, as `gatehouse status` shows it. */
export interface TelemetryObservations {
  servers(): { name: string; state: string }[];
  quotas(): QuotasStatus | undefined;
  auditSync(): AuditSyncStatus | undefined;
}

export interface SdkOptions {
  config: TelemetryConfig;
  /** Header values resolved from `${secret:…}`: held here, in memory, and nowhere else. */
  headers: Record<string, string>;
  version: string;
  logger: Logger;
  observe: TelemetryObservations;
  /** Tests: how long to wait between batches of spans (default 1 s). */
  spanDelayMs?: number;
}

/** How much is kept for a collector that does not answer: past it, spans are dropped (and counted), never queued without end. */
export const SPAN_QUEUE_LIMIT = 2048;
const SPAN_BATCH = 512;
/** One export's limit; retries of a failed one stay inside it. */
const EXPORT_TIMEOUT_MS = 10_000;

const METHOD: Record<GovernedCall['kind'], string> = { tool: 'tools/call', resource: 'resources/read', prompt: 'prompts/get' };
/** Latency buckets in seconds: Gatehouse's own sub-millisecond hop up to a five-minute call. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

export interface SdkTelemetry {
  readonly tracer: CallTracer;
  /** Every audit record passes here: calls, approvals and restarts are counted from what the audit log says happened. */
  observeAudit(record: AuditRecord): void;
  /** Exports what is left, then stops. */
  shutdown(): Promise<void>;
}

export function startSdk(options: SdkOptions): SdkTelemetry {
  const { config } = options;
  const resource = resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': options.version });
  const exporterOptions = (signal: 'traces' | 'metrics') => ({
    url: `${config.endpoint.replace(/\/+$/, '')}/v1/${signal}`,
    headers: { ...options.headers },
    timeoutMillis: EXPORT_TIMEOUT_MS,
    concurrencyLimit: 2,
  });
  const spanExporter = reporting(new OTLPTraceExporter(exporterOptions('traces')), options.logger);
  const tracerProvider = new BasicTracerProvider({
    resource,
    // A caller's own decision (the sampled flag of its traceparent) is followed; new traces are kept at the configured ratio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampling) }),
    spanProcessors: [
      new BatchSpanProcessor(spanExporter, {
        maxQueueSize: SPAN_QUEUE_LIMIT,
        maxExportBatchSize: SPAN_BATCH,
        scheduledDelayMillis: options.spanDelayMs ?? 1000,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    ],
  });
  const tracer = tracerProvider.getTracer('gatehouse', options.version);
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter(exporterOptions('metrics')),
    exportIntervalMillis: config.metricsIntervalMs,
    exportTimeoutMillis: Math.min(EXPORT_TIMEOUT_MS, config.metricsIntervalMs),
  });
  const meterProvider = new MeterProvider({
    resource,
    readers: [reader],
    views: [
      {
        instrumentName: 'mcp.server.operation.duration',
        aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: DURATION_BUCKETS } },
      },
    ],
  });
  const metrics = new CallMetrics(meterProvider, options.observe, options.version);
  return {
    tracer: new SdkCallTracer(tracer),
    observeAudit: (record) => metrics.observe(record),
    shutdown: async () => {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

/** Logs failed exports once per kind of failure (never the headers), so a person can see why nothing arrives. */
function reporting(exporter: SpanExporter, logger: Logger): SpanExporter {
  let lastError = '';
  return {
    export: (spans, done) =>
      exporter.export(spans, (result) => {
        const error = result.error ? String(result.error.message ?? result.error) : '';
        if (error !== lastError) {
          if (error !== '') logger.log('warn', 'telemetry.export_failed', { signal: 'traces', spans: spans.length, error });
          else logger.log('info', 'telemetry.export_recovered', { signal: 'traces' });
          lastError = error;
        }
        done(result);
      }),
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}

const propagator = new W3CTraceContextPropagator();
const metaGetter = {
  keys: (carrier: Record<string, unknown>) => Object.keys(carrier),
  get: (carrier: Record<string, unknown>, key: string) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
};
const metaSetter = {
  set: (carrier: Record<string, string>, key: string, value: string) => {
    carrier[key] = value;
  },
};

/** The trace context a caller sent in `_meta`; the propagator ignores one that is malformed (a new trace starts). */
function parentOf(call: GovernedCall): Context {
  const meta = call.meta;
  if (!meta || typeof meta.traceparent !== 'string') return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, meta, metaGetter);
}

/**
 * Span names and attributes follow the OpenTelemetry semantic conventions for MCP and GenAI tool
 * calls where they exist (`mcp.method.name`, `gen_ai.tool.name`, `gen_ai.operation.name`,
 * `error.type`); what is Gatehouse's own is under `gatehouse.*`. No argument value, result content
 * or secret is ever an attribute (SECURITY.md).
 */
export function callAttributes(call: GovernedCall): Attributes {
  const method = call.operation === 'complete' ? 'completion/complete' : METHOD[call.kind];
  const attributes: Attributes = {
    'mcp.method.name': method,
    'gatehouse.call.id': call.id,
    'gatehouse.server': call.server,
    'gatehouse.client': call.principal.client.name,
    'gatehouse.client.verified': call.principal.client.verified,
  };
  if (call.kind === 'tool') {
    attributes['gen_ai.operation.name'] = 'execute_tool';
    attributes['gen_ai.tool.name'] = call.name;
  } else if (call.kind === 'prompt') attributes['gen_ai.prompt.name'] = call.name;
  else attributes['mcp.resource.uri'] = call.name;
  return attributes;
}

/** `error.type` of an outcome (the deny code, `tool_error` for a tool's own error result, `failed`), or undefined when it succeeded. */
export function errorType(outcome: Outcome): string | undefined {
  if (outcome.kind === 'denied') return outcome.code;
  if (outcome.kind === 'failed') return outcome.rpcCode !== undefined ? String(outcome.rpcCode) : 'failed';
  return outcome.result.isError === true ? 'tool_error' : undefined;
}

export function decisionOf(outcome: Outcome): 'ok' | 'error' | 'denied' | 'failed' {
  return outcome.kind === 'ok' ? (outcome.result.isError === true ? 'error' : 'ok') : outcome.kind;
}

function outcomeAttributes(span: Span, outcome: Outcome): void {
  span.setAttribute('gatehouse.decision', decisionOf(outcome));
  const type = errorType(outcome);
  if (type !== undefined) span.setAttribute('error.type', type);
  if (outcome.kind === 'denied') {
    span.setAttribute('gatehouse.deny.code', outcome.code);
    span.setAttribute('gatehouse.deny.stage', outcome.stage);
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.code });
  } else if (outcome.kind === 'failed') {
    span.setAttribute('gatehouse.failed.stage', outcome.stage);
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'failed' });
  }
}

/** The chain's tracer over an SDK tracer (tests give it one with an in-memory exporter). */
export function sdkCallTracer(tracer: Tracer): CallTracer {
  return new SdkCallTracer(tracer);
}

class SdkCallTracer implements CallTracer {
  constructor(private readonly tracer: Tracer) {}

  startCall(call: GovernedCall): CallTrace {
    const attributes = callAttributes(call);
    const method = attributes['mcp.method.name'] as string;
    // The semantic conventions' span name: the method and its target.
    const name = call.kind === 'resource' ? method : `${method} ${call.name}`;
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parentOf(call));
    return new SdkCallTrace(this.tracer, span, method, call);
  }
}

class SdkCallTrace implements CallTrace {
  private readonly context: Context;
  private unrecorded: StageTrace | undefined;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    private readonly method: string,
    private readonly call: GovernedCall,
  ) {
    this.context = trace.setSpan(ROOT_CONTEXT, span);
  }

  startStage(stage: TracedStage, phase?: 'before' | 'after'): StageTrace {
    // A call the sampler left out records nothing: its stages get no spans, and the server gets the
    // call's own context (the trace id, marked not sampled), so the trace still joins up downstream.
    if (!this.span.isRecording()) return (this.unrecorded ??= new SdkStageTrace(this.span, false));
    const upstream = stage === 'upstream';
    const attributes: Attributes = { 'gatehouse.stage': stage };
    if (phase === 'after') attributes['gatehouse.stage.phase'] = 'after';
    if (upstream) {
      attributes['mcp.method.name'] = this.method;
      attributes['gatehouse.server'] = this.call.server;
      if (this.call.kind === 'tool') attributes['gen_ai.tool.name'] = this.call.name;
    }
    const span = this.tracer.startSpan(`gatehouse.${stage}`, { kind: upstream ? SpanKind.CLIENT : SpanKind.INTERNAL, attributes }, this.context);
    return new SdkStageTrace(span);
  }

  end(outcome: Outcome): void {
    outcomeAttributes(this.span, outcome);
    this.span.end();
  }
}

class SdkStageTrace implements StageTrace {
  /** `owned`: this stage's own span, ended here; otherwise the call's, only lent for its context. */
  constructor(
    private readonly span: Span,
    private readonly owned = true,
  ) {}

  traceContext(): TraceContext | undefined {
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, this.span), carrier, metaSetter);
    return carrier.traceparent ? { traceparent: carrier.traceparent, ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}) } : undefined;
  }

  end(outcome?: Outcome): void {
    if (!this.owned) return;
    if (outcome) outcomeAttributes(this.span, outcome);
    this.span.end();
  }
}

/** Past this many series of calls, further ones are counted under one overflow series (as the SDK's own cardinality limit does). */
export const CALL_SERIES_LIMIT = 2000;

/**
 * The daemon's metrics. Calls, refusals, latency, approvals and restarts are counted from the audit
 * records (what the log says happened, hidden and unknown items included); server states, quota use
 * and audit sync lag are read from the daemon's status when the metrics are collected.
 */
export class CallMetrics {
  /** Calls and refusals tallied here and reported when collected: a Map increment per call instead of the SDK's per-add attribute hashing. */
  private readonly calls = new Map<string, { attributes: Attributes; value: number }>();
  private readonly refusals = new Map<string, { attributes: Attributes; value: number }>();
  private readonly durationAttributes = new Map<string, Attributes>();
  private readonly duration;
  private readonly approvalsAsked;
  private readonly approvalsAnswered;
  private readonly approvalsExpired;
  private readonly restarts;

  constructor(provider: MeterProvider, observe: TelemetryObservations, version: string) {
    const meter = provider.getMeter('gatehouse', version);
    const tallies = (name: string, description: string, tally: Map<string, { attributes: Attributes; value: number }>) =>
      meter.createObservableCounter(name, { description, unit: '{call}' }).addCallback((result) => {
        for (const { attributes, value } of tally.values()) result.observe(value, attributes);
      });
    tallies('gatehouse.calls', 'Governed calls, by server, item, client and decision', this.calls);
    tallies('gatehouse.calls.refused', 'Calls refused, by server, item, client, stage and deny code', this.refusals);
    this.duration = meter.createHistogram('mcp.server.operation.duration', { description: 'How long a governed call took, per server', unit: 's' });
    this.approvalsAsked = meter.createCounter('gatehouse.approvals.asked', { description: 'Questions put to the person', unit: '{request}' });
    this.approvalsAnswered = meter.createCounter('gatehouse.approvals.answered', {
      description: 'Questions the person answered, by answer',
      unit: '{request}',
    });
    this.approvalsExpired = meter.createCounter('gatehouse.approvals.expired', { description: 'Questions nobody answered in time', unit: '{request}' });
    this.restarts = meter.createCounter('gatehouse.server.restarts', { description: 'Servers back after a crash or failed health check', unit: '{restart}' });
    const gauge = (name: string, description: string, unit: string, read: (result: ObservableResult) => void) =>
      meter.createObservableGauge(name, { description, unit }).addCallback(read);
    gauge('gatehouse.server.state', 'Each server with its state (1)', '{server}', (result) => {
      for (const server of observe.servers()) result.observe(1, { 'gatehouse.server': server.name, 'gatehouse.server.state': server.state });
    });
    gauge('gatehouse.quota.used', 'The most any scope has used of each quota in its window', '{call}', (result) => {
      for (const quota of observe.quotas()?.quotas ?? []) {
        result.observe(Math.max(0, ...quota.usage.map((u) => u.used)), { 'gatehouse.quota.id': quota.id, 'gatehouse.quota.window': quota.window });
      }
    });
    gauge('gatehouse.quota.limit', "Each quota's limit in its window", '{call}', (result) => {
      for (const quota of observe.quotas()?.quotas ?? [])
        result.observe(quota.limit, { 'gatehouse.quota.id': quota.id, 'gatehouse.quota.window': quota.window });
    });
    gauge('gatehouse.audit.sync.lag', 'Age of the oldest audit event the hub does not hold yet', 's', (result) => {
      const sync = observe.auditSync();
      if (sync) result.observe(sync.lagSeconds, { 'gatehouse.audit.sync.state': sync.state });
    });
    gauge('gatehouse.audit.sync.lag.records', 'Audit events the hub does not hold yet', '{event}', (result) => {
      const sync = observe.auditSync();
      if (sync) result.observe(sync.lagRecords, { 'gatehouse.audit.sync.state': sync.state });
    });
  }

  observe(record: AuditRecord): void {
    switch (record.type) {
      case 'call.outcome':
        return this.callEnded(record);
      case 'approval.requested':
        if (record.callId !== undefined) this.approvalsAsked.add(1, itemAttributes(record));
        return;
      case 'approval.decided': {
        const approval = record.approval;
        if (record.callId === undefined || !approval) return;
        if (approval.decision === 'timeout') this.approvalsExpired.add(1, itemAttributes(record));
        else if (approval.by === 'user') this.approvalsAnswered.add(1, { ...itemAttributes(record), 'gatehouse.approval.decision': approval.decision });
        return;
      }
      case 'server.restarted':
        if (record.server !== undefined) this.restarts.add(1, { 'gatehouse.server': record.server });
        return;
      default:
        return;
    }
  }

  private callEnded(record: AuditRecord): void {
    const method = record.kind ? METHOD[record.kind] : 'unknown';
    const decision = record.decision ?? 'failed';
    const denied = decision === 'denied';
    // Resources are counted per server only (see itemAttributes).
    const item = record.kind === 'resource' ? '' : (record.name ?? '');
    const key = `${method}\u0000${record.server ?? ''}\u0000${item}\u0000${record.client ?? ''}\u0000${decision}\u0000${denied ? `${record.code ?? ''}\u0000${record.stage ?? ''}` : ''}`;
    const attributes = (): Attributes => {
      const a = itemAttributes(record);
      a['gatehouse.client'] = record.client ?? '';
      a['gatehouse.decision'] = decision;
      if (denied) {
        a['gatehouse.deny.code'] = record.code ?? '';
        a['gatehouse.deny.stage'] = record.stage ?? '';
      }
      return a;
    };
    tally(this.calls, key, attributes);
    if (denied) tally(this.refusals, key, attributes);
    if (record.latencyMs !== undefined) {
      const error = decision === 'ok' ? '' : (record.code ?? decision);
      const durationKey = `${method}\u0000${record.server ?? ''}\u0000${error}`;
      let duration = this.durationAttributes.get(durationKey);
      if (!duration) {
        duration = { 'mcp.method.name': method, 'gatehouse.server': record.server ?? '', ...(error !== '' ? { 'error.type': error } : {}) };
        if (this.durationAttributes.size < CALL_SERIES_LIMIT) this.durationAttributes.set(durationKey, duration);
      }
      this.duration.record(record.latencyMs / 1000, duration);
    }
  }
}

const OVERFLOW = '\u0000overflow';
function tally(map: Map<string, { attributes: Attributes; value: number }>, key: string, attributes: () => Attributes): void {
  let series = map.get(key);
  if (!series) {
    if (map.size >= CALL_SERIES_LIMIT) key = OVERFLOW;
    series = map.get(key);
    if (!series) map.set(key, (series = { attributes: key === OVERFLOW ? { 'otel.metric.overflow': true } : attributes(), value: 0 }));
  }
  series.value++;
}

/**
 * The server and the item a record names. A resource's URI is left out of metrics (every file would
 * be a series of its own, and a path says more than a name); spans carry it.
 */
function itemAttributes(record: AuditRecord): Attributes {
  const attributes: Attributes = { 'mcp.method.name': record.kind ? METHOD[record.kind] : 'unknown', 'gatehouse.server': record.server ?? '' };
  if (record.kind === 'tool') attributes['gen_ai.tool.name'] = record.name ?? '';
  else if (record.kind === 'prompt') attributes['gen_ai.prompt.name'] = record.name ?? '';
  return attributes;
}
