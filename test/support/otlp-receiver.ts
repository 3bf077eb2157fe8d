/**
 * A small OTLP/HTTP receiver on loopback, standing in for an OpenTelemetry Collector (none is
 * packaged here). It takes `POST /v1/traces`, `/v1/metrics` and `/v1/logs` in the OTLP JSON
 * encoding (what the SDK's `*-otlp-http` exporters send) and keeps every request, with helpers that
 * flatten spans, metric points and log records with their resource's attributes.
 *
 * A protobuf request is answered 415 (and recorded as refused): the generated protobuf types are no
 * longer shipped by the SDK's transformer package, and Gatehouse's exporters send JSON.
 *
 * `failNext(n, status)` makes the next n requests fail as a collector that is down or overloaded
 * would; `stall(true)` holds every request open without an answer, as a hung collector would.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type OtlpSignal = 'traces' | 'metrics' | 'logs';

export interface ReceivedRequest {
  signal: OtlpSignal;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export type AttributeValue = string | number | boolean | AttributeValue[] | { [key: string]: AttributeValue } | undefined;
interface KeyValue {
  key: string;
  value: Record<string, unknown>;
}

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
  /** `http://127.0.0.1:PORT`, the endpoint to configure (the signal paths are added by the sender). */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Requests refused as unreadable (wrong encoding, bad JSON), with why. */
  readonly refused: { path: string; reason: string }[];
  spans(): ReceivedSpan[];
  points(): ReceivedPoint[];
  failNext(count: number, status?: number): void;
  stall(on: boolean): void;
  /** Requests held open by `stall` now. */
  held(): number;
  close(): Promise<void>;
}

/** An OTLP AnyValue as a plain value (64-bit integers arrive as strings in OTLP JSON). */
export function anyValue(value: Record<string, unknown> | undefined): AttributeValue {
  if (!value) return undefined;
  if ('stringValue' in value) return value.stringValue as string;
  if ('boolValue' in value) return value.boolValue as boolean;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('arrayValue' in value) return ((value.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(anyValue);
  if ('kvlistValue' in value) return attributesOf((value.kvlistValue as { values?: KeyValue[] }).values);
  return undefined;
}

export function attributesOf(list: KeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

const SIGNALS: Record<string, OtlpSignal> = { '/v1/traces': 'traces', '/v1/metrics': 'metrics', '/v1/logs': 'logs' };
const MAX_BODY = 16 * 1024 * 1024;

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = [];
  const refused: { path: string; reason: string }[] = [];
  let failing = 0;
  let failStatus = 503;
  let stalled = false;
  const held = new Set<ServerResponse>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      const signal = SIGNALS[path];
      if (req.method !== 'POST' || !signal) return answer(res, 404, { error: 'not an OTLP path' });
      if (stalled) {
        held.add(res);
        return;
      }
      if (failing > 0) {
        failing--;
        return answer(res, failStatus, { error: 'failing on purpose' });
      }
      const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type !== 'application/json') {
        refused.push({ path, reason: `content-type ${type || '(none)'}` });
        return answer(res, 415, { error: 'this receiver reads OTLP JSON only' });
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch (error) {
        refused.push({ path, reason: `bad JSON: ${(error as Error).message}` });
        return answer(res, 400, { error: 'bad JSON' });
      }
      requests.push({ signal, headers: req.headers, body });
      answer(res, 200, {});
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    refused,
    spans: () =>
      requests
        .filter((r) => r.signal === 'traces')
        .flatMap((r) =>
          ((r.body.resourceSpans ?? []) as { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]).flatMap((rs) =>
            (rs.scopeSpans ?? []).flatMap((ss) =>
              (ss.spans ?? []).map(
                (span): ReceivedSpan => ({
                  ...(span as unknown as ReceivedSpan),
                  attributes: attributesOf(span.attributes as KeyValue[] | undefined),
                  resource: attributesOf(rs.resource?.attributes),
                }),
              ),
            ),
          ),
        ),
    points: () =>
      requests
        .filter((r) => r.signal === 'metrics')
        .flatMap((r) =>
          ((r.body.resourceMetrics ?? []) as { resource?: { attributes?: KeyValue[] }; scopeMetrics?: { metrics?: Record<string, unknown>[] }[] }[]).flatMap((rm) =>
            (rm.scopeMetrics ?? []).flatMap((sm) => (sm.metrics ?? []).flatMap((metric) => pointsOf(metric, attributesOf(rm.resource?.attributes)))),
          ),
        ),
    failNext: (count, status = 503) => {
      failing = count;
      failStatus = status;
    },
    stall: (on) => {
      stalled = on;
      if (!on) for (const res of held) answer(res, 503, { error: 'was stalled' });
      if (!on) held.clear();
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

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

type DataPoint = { attributes?: KeyValue[]; asInt?: string | number; asDouble?: number; count?: string | number; sum?: number; bucketCounts?: (string | number)[] };

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
