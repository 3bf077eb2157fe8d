/**
 * A small OTLP/HTTP receiver on loopback, standing in for an OpenTelemetry Collector (none is
 * packaged here). It takes `POST /v1/logs`, `/v1/traces` and `/v1/metrics` in either encoding
 * (`application/x-protobuf` or `application/json`), decodes protobuf with the generated types of
 * `@opentelemetry/otlp-transformer`, and keeps every request as the OTLP JSON shape (ids in hex,
 * 64-bit integers as strings), so a test reads both encodings the same way.
 *
 * `failNext(n, status)` makes the next n requests fail (as a collector that is down or
 * overloaded would) without recording them: the sender must retry. `stall(true)` holds every
 * request open without an answer, as a hung collector would.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';

export type OtlpSignal = 'logs' | 'traces' | 'metrics';

export interface ReceivedRequest {
  signal: OtlpSignal;
  encoding: 'protobuf' | 'json';
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export type AttributeValue = string | number | boolean | unknown[] | Record<string, unknown> | undefined;
export interface OtlpKeyValue {
  key: string;
  value: Record<string, unknown>;
}

/** A log record or metric, with the attributes of the resource it came under. */
export type Received<T = Record<string, unknown>> = T & { resource: Record<string, AttributeValue>; scope: Record<string, unknown> | undefined };

/** A span as OTLP JSON has it, with its attributes as a plain object and its resource's attributes beside it. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  attributes: Record<string, AttributeValue>;
  status?: { code?: number; message?: string };
  resource: Record<string, AttributeValue>;
  scope: Record<string, unknown> | undefined;
}

/** One data point of one metric. */
export interface ReceivedPoint {
  metric: string;
  unit?: string;
  attributes: Record<string, AttributeValue>;
  /** Sums and gauges: the value; histograms: the count (see `sum`, `bucketCounts`). */
  value: number;
  sum?: number;
  bucketCounts?: number[];
  resource: Record<string, AttributeValue>;
}

export interface OtlpReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** How many requests were refused on purpose (see `failNext`). */
  refused: number;
  logRecords(): Received[];
  spans(): ReceivedSpan[];
  metrics(): Received[];
  /** Every data point of every metric, flattened. */
  points(): ReceivedPoint[];
  failNext(count: number, status?: number): void;
  stall(on: boolean): void;
  /** Requests held open by `stall` now. */
  held(): number;
  close(): Promise<void>;
}

interface GeneratedType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): Record<string, unknown>;
}

const PATHS: Record<string, OtlpSignal> = { '/v1/logs': 'logs', '/v1/traces': 'traces', '/v1/metrics': 'metrics' };
const MAX_BODY = 32 * 1024 * 1024;
const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

function generatedTypes(): Record<OtlpSignal, GeneratedType> {
  const require = createRequire(import.meta.url);
  // The generated module is protobufjs static code: namespaces of classes with decode/toObject.
  const root = require('@opentelemetry/otlp-transformer/build/src/generated/root') as {
    opentelemetry: { proto: { collector: Record<string, { v1: Record<string, GeneratedType> }> } };
  };
  const c = root.opentelemetry.proto.collector;
  return {
    logs: c.logs!.v1.ExportLogsServiceRequest!,
    traces: c.trace!.v1.ExportTraceServiceRequest!,
    metrics: c.metrics!.v1.ExportMetricsServiceRequest!,
  };
}

/** protobufjs renders bytes as base64; OTLP JSON writes trace and span ids in hex. */
function idsToHex(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(idsToHex);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = ID_FIELDS.has(k) && typeof v === 'string' ? Buffer.from(v, 'base64').toString('hex') : idsToHex(v);
  return out;
}

/** The attributes of a record, resource or span as a plain object. */
export function attributesOf(attributes: unknown): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of (attributes as OtlpKeyValue[] | undefined) ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

function anyValue(v: Record<string, unknown> | undefined): AttributeValue {
  if (!v) return undefined;
  if ('stringValue' in v) return v.stringValue as string;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('boolValue' in v) return v.boolValue as boolean;
  if ('arrayValue' in v) return ((v.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(anyValue);
  if ('kvlistValue' in v) return attributesOf((v.kvlistValue as { values?: unknown }).values);
  return undefined;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const types = generatedTypes();
  const requests: ReceivedRequest[] = [];
  let failures: { left: number; status: number } = { left: 0, status: 503 };
  let refused = 0;
  let stalled = false;
  const held = new Set<ServerResponse>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => {
      const signal = PATHS[(req.url ?? '').split('?')[0]!];
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (req.method !== 'POST' || !signal) return void res.writeHead(404).end();
      if (size > MAX_BODY) return void res.writeHead(413).end();
      if (stalled) return void held.add(res);
      if (failures.left > 0) {
        failures.left--;
        refused++;
        return void res.writeHead(failures.status, { 'content-type': 'text/plain' }).end('refused by the test');
      }
      const raw = Buffer.concat(chunks);
      let body: Record<string, unknown>;
      try {
        if (type === 'application/x-protobuf') {
          const decoded = types[signal].decode(raw);
          body = idsToHex(types[signal].toObject(decoded, { longs: String, enums: Number, bytes: String, defaults: false })) as Record<string, unknown>;
        } else if (type === 'application/json') body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
        else return void res.writeHead(415).end();
      } catch (error) {
        return void res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
      }
      requests.push({ signal, encoding: type === 'application/json' ? 'json' : 'protobuf', headers: req.headers, body });
      // An empty response message means full success, in either encoding.
      if (type === 'application/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  /** Every item of one signal, flattened out of its resource and scope envelopes. */
  const flatten = (signal: OtlpSignal, outer: string, inner: string, items: string): Received[] => {
    const out: Received[] = [];
    for (const r of requests) {
      if (r.signal !== signal) continue;
      for (const group of (r.body[outer] as Record<string, unknown>[] | undefined) ?? []) {
        const resource = attributesOf((group.resource as { attributes?: unknown } | undefined)?.attributes);
        for (const scoped of (group[inner] as Record<string, unknown>[] | undefined) ?? []) {
          for (const item of (scoped[items] as Record<string, unknown>[] | undefined) ?? []) {
            out.push({ ...item, resource, scope: scoped.scope as Record<string, unknown> | undefined });
          }
        }
      }
    }
    return out;
  };

  return {
    url,
    requests,
    get refused() {
      return refused;
    },
    logRecords: () => flatten('logs', 'resourceLogs', 'scopeLogs', 'logRecords'),
    spans: () =>
      flatten('traces', 'resourceSpans', 'scopeSpans', 'spans').map((span) => ({
        ...(span as unknown as ReceivedSpan),
        attributes: attributesOf(span.attributes),
      })),
    metrics: () => flatten('metrics', 'resourceMetrics', 'scopeMetrics', 'metrics'),
    points: () => flatten('metrics', 'resourceMetrics', 'scopeMetrics', 'metrics').flatMap((metric) => pointsOf(metric, metric.resource)),
    failNext(count: number, status = 503) {
      failures = { left: count, status };
    },
    stall(on: boolean) {
      stalled = on;
      if (on) return;
      for (const res of held) res.writeHead(503, { 'content-type': 'text/plain' }).end('was stalled');
      held.clear();
    },
    held: () => held.size,
    close: async () => {
      for (const res of held) res.destroy();
      held.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type DataPoint = {
  attributes?: unknown;
  asInt?: string | number;
  asDouble?: number;
  count?: string | number;
  sum?: number;
  bucketCounts?: (string | number)[];
};

function pointsOf(metric: Record<string, unknown>, resource: Record<string, AttributeValue>): ReceivedPoint[] {
  const name = metric.name as string;
  const unit = metric.unit as string | undefined;
  const data = (metric.sum ?? metric.gauge ?? metric.histogram) as { dataPoints?: DataPoint[] } | undefined;
  return (data?.dataPoints ?? []).map((p) => ({
    metric: name,
    ...(unit !== undefined ? { unit } : {}),
    attributes: attributesOf(p.attributes),
    value: metric.histogram ? Number(p.count ?? 0) : Number(p.asInt ?? p.asDouble ?? 0),
    ...(p.sum !== undefined ? { sum: Number(p.sum) } : {}),
    ...(p.bucketCounts ? { bucketCounts: p.bucketCounts.map(Number) } : {}),
    resource,
  }));
}
