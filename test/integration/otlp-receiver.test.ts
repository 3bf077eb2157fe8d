/**
 * The test OTLP receiver (test/support/otlp-receiver.ts) against what the official SDK sends:
 * logs from the OTLP/HTTP logs exporter (JSON), and traces and metrics serialized as protobuf by
 * `@opentelemetry/otlp-transformer`. Other tests trust what it decodes, so it is checked here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { ProtobufMetricsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { attributesOf, startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

let receiver: OtlpReceiver;
const resource = resourceFromAttributes({ 'service.name': 'receiver-test' });

beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

const post = (path: string, type: string, body: Uint8Array | string) =>
  fetch(`${receiver.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });

describe('the test OTLP receiver', () => {
  it('decodes JSON logs from the official logs exporter', async () => {
    const exporter = new OTLPLogExporter({ url: `${receiver.url}/v1/logs` });
    const result = await new Promise<{ code: number }>((resolve) =>
      exporter.export(
        [
          {
            hrTime: [1_700_000_000, 5],
            hrTimeObserved: [1_700_000_001, 0],
            severityNumber: SeverityNumber.WARN,
            severityText: 'WARN',
            body: 'hello',
            eventName: 'test.event',
            resource,
            instrumentationScope: { name: 'scope' },
            attributes: { n: 3, s: 'x' },
            droppedAttributesCount: 0,
          },
        ],
        resolve,
      ),
    );
    await exporter.shutdown();
    expect(result.code).toBe(0);
    const [record] = receiver.logRecords();
    expect(record).toMatchObject({
      severityText: 'WARN',
      body: { stringValue: 'hello' },
      eventName: 'test.event',
      resource: { 'service.name': 'receiver-test' },
    });
    expect(attributesOf(record!.attributes)).toEqual({ n: 3, s: 'x' });
  });

  it('decodes protobuf traces with ids in hex', async () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(memory)] });
    const span = provider.getTracer('t').startSpan('governed call', { attributes: { 'gatehouse.server': 'memory' } });
    span.end();
    const [finished] = memory.getFinishedSpans();
    const response = await post('/v1/traces', 'application/x-protobuf', ProtobufTraceSerializer.serializeRequest([finished!])!);
    expect(response.status).toBe(200);
    const [got] = receiver.spans();
    expect(got).toMatchObject({
      name: 'governed call',
      traceId: finished!.spanContext().traceId,
      spanId: finished!.spanContext().spanId,
      resource: { 'service.name': 'receiver-test' },
    });
    expect(got!.attributes).toEqual({ 'gatehouse.server': 'memory' });
    expect(receiver.requests.at(-1)!.encoding).toBe('protobuf');
    await provider.shutdown();
  });

  it('decodes protobuf metrics', async () => {
    class Reader extends MetricReader {
      protected async onForceFlush(): Promise<void> {}
      protected async onShutdown(): Promise<void> {}
    }
    const reader = new Reader();
    const provider = new MeterProvider({ resource, readers: [reader] });
    provider.getMeter('m').createCounter('gatehouse.calls').add(2, { decision: 'ok' });
    const { resourceMetrics } = await reader.collect();
    const response = await post('/v1/metrics', 'application/x-protobuf', ProtobufMetricsSerializer.serializeRequest(resourceMetrics)!);
    expect(response.status).toBe(200);
    const [metric] = receiver.metrics();
    expect(metric).toMatchObject({ name: 'gatehouse.calls', sum: { dataPoints: [expect.objectContaining({ asDouble: 2 })] } });
    await provider.shutdown();
  });

  it('refuses on demand, malformed bodies, unknown paths and media types, recording none of them', async () => {
    const before = receiver.requests.length;
    receiver.failNext(1, 503);
    expect((await post('/v1/logs', 'application/json', '{}')).status).toBe(503);
    expect(receiver.refused).toBe(1);
    expect((await post('/v1/logs', 'application/json', '{"resourceLogs": [')).status).toBe(400);
    expect((await post('/v1/logs', 'application/x-protobuf', new Uint8Array([0x0a, 0xff, 0xff]))).status).toBe(400);
    expect((await post('/v1/profiles', 'application/json', '{}')).status).toBe(404);
    expect((await post('/v1/logs', 'text/plain', 'hi')).status).toBe(415);
    expect(receiver.requests.length).toBe(before);
  });
});
