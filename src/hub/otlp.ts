/**
 * Forwarding to a SIEM as OpenTelemetry logs over OTLP/HTTP with JSON encoding
 * (`POST <endpoint>` with `ExportLogsServiceRequest`). Each event becomes one log record whose
 * `log.record.uid` attribute is the event's own id, so a SIEM can drop the repeats that
 * at-least-once delivery may bring. One resource per device (`gatehouse.device.id`, `host.name`).
 */
import type { AuditEvent } from '../core/audit/event.js';

type AnyValue = { stringValue: string } | { intValue: string } | { boolValue: boolean } | { doubleValue: number };
interface KeyValue {
  key: string;
  value: AnyValue;
}

export interface OtlpLogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  eventName: string;
  body: { stringValue: string };
  attributes: KeyValue[];
}

export interface ExportLogsServiceRequest {
  resourceLogs: { resource: { attributes: KeyValue[] }; scopeLogs: { scope: { name: string; version: string }; logRecords: OtlpLogRecord[] }[] }[];
}

const str = (key: string, value: string | undefined): KeyValue[] => (value === undefined ? [] : [{ key, value: { stringValue: value } }]);
const int = (key: string, value: number | undefined): KeyValue[] => (value === undefined ? [] : [{ key, value: { intValue: String(Math.round(value)) } }]);

export function toLogRecord(event: AuditEvent, hash: string, observedMs: number): OtlpLogRecord {
  const problem = event.decision === 'denied' || event.decision === 'failed' || event.decision === 'error' || event.type === 'server.crashed';
  const what = [event.type, event.server && event.name ? `${event.server}/${event.name}` : event.server, event.decision].filter(Boolean).join(' ');
  return {
    timeUnixNano: `${BigInt(Date.parse(event.at)) * 1_000_000n}`,
    observedTimeUnixNano: `${BigInt(Math.round(observedMs)) * 1_000_000n}`,
    severityNumber: problem ? 13 : 9,
    severityText: problem ? 'WARN' : 'INFO',
    eventName: `gatehouse.${event.type}`,
    body: { stringValue: what },
    attributes: [
      ...str('log.record.uid', event.id),
      ...str('gatehouse.event.type', event.type),
      ...str('gatehouse.device.id', event.device),
      ...int('gatehouse.event.seq', event.seq),
      ...str('gatehouse.event.hash', hash),
      ...str('gatehouse.call.id', event.callId),
      ...str('enduser.id', event.user),
      ...str('gatehouse.client', event.client),
      ...str('gatehouse.server', event.server),
      ...str('gatehouse.item.kind', event.kind),
      ...str('gatehouse.item.name', event.name),
      ...str('gatehouse.decision', event.decision),
      ...str('gatehouse.stage', event.stage),
      ...str('gatehouse.reason_code', event.code),
      ...str('gatehouse.policy.mode', event.policyMode),
      ...str('gatehouse.policy.version', event.policyVersion),
      ...int('gatehouse.latency_ms', event.latencyMs),
      ...str('gatehouse.args.digest', event.argsDigest),
      ...str('gatehouse.result.digest', event.resultDigest),
      ...str('gatehouse.event', JSON.stringify(event)),
    ],
  };
}

export function toExportRequest(rows: { device: string; hash: string; body: string }[], hosts: Map<string, string>, observedMs: number): ExportLogsServiceRequest {
  const byDevice = new Map<string, OtlpLogRecord[]>();
  for (const row of rows) {
    const records = byDevice.get(row.device) ?? [];
    records.push(toLogRecord(JSON.parse(row.body) as AuditEvent, row.hash, observedMs));
    byDevice.set(row.device, records);
  }
  return {
    resourceLogs: [...byDevice].map(([device, logRecords]) => ({
      resource: {
        attributes: [...str('service.name', 'gatehouse'), ...str('gatehouse.device.id', device), ...str('host.name', hosts.get(device) || undefined)],
      },
      scopeLogs: [{ scope: { name: 'gatehouse.audit', version: '1' }, logRecords }],
    })),
  };
}

export interface SiemConfig {
  /** The OTLP/HTTP logs endpoint, e.g. `https://collector.example.com:4318/v1/logs`. */
  endpoint: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export async function postLogs(config: SiemConfig, request: ExportLogsServiceRequest): Promise<void> {
  const response = await fetch(config.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(config.headers ?? {}) },
    body: JSON.stringify(request),
    signal: AbortSignal.timeout(config.timeoutMs ?? 10_000),
  });
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    throw new Error(`the SIEM at ${config.endpoint} answered ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }
}
