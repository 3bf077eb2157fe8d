/**
 * Forwarding to a SIEM as OpenTelemetry logs over OTLP/HTTP, through the official SDK's logs
 * exporter (`@opentelemetry/exporter-logs-otlp-http`, JSON encoding). Each event becomes one log
 * record whose `log.record.uid` attribute is the event's own id, so a SIEM can drop the repeats
 * that at-least-once delivery may bring. One resource per device (`gatehouse.device.id`, `host.name`).
 *
 * The exporter is used directly, not behind a batch processor: the hub's outbox is the batch and
 * the retry queue. `SiemForwarder.send` resolves only once the receiver has taken the whole batch,
 * and the outbox deletes its rows only then (`HubStore.forward`); a failure rejects, the rows stay,
 * and the next round sends them again.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { SeverityNumber, type LogAttributes } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { HrTime } from '@opentelemetry/api';
import type { AuditEvent } from '../core/audit/event.js';

export interface SiemConfig {
  /** The OTLP/HTTP logs endpoint, e.g. `https://collector.example.com:4318/v1/logs`. */
  endpoint: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface OutboxRow {
  device: string;
  hash: string;
  body: string;
}

const SCOPE = { name: 'gatehouse.audit', version: '1' };

function hrTime(ms: number): HrTime {
  const whole = Math.floor(ms / 1000);
  return [whole, Math.round((ms - whole * 1000) * 1_000_000)];
}

/** The attributes of one event's log record; absent fields are left out, never sent empty. */
export function eventAttributes(event: AuditEvent, hash: string): LogAttributes {
  const attributes: LogAttributes = {};
  const put = (key: string, value: string | number | undefined) => {
    if (value !== undefined) attributes[key] = typeof value === 'number' ? Math.round(value) : value;
  };
  put('log.record.uid', event.id);
  put('gatehouse.event.type', event.type);
  put('gatehouse.device.id', event.device);
  put('gatehouse.event.seq', event.seq);
  put('gatehouse.event.hash', hash);
  put('gatehouse.call.id', event.callId);
  put('enduser.id', event.user);
  put('gatehouse.client', event.client);
  put('gatehouse.server', event.server);
  put('gatehouse.item.kind', event.kind);
  put('gatehouse.item.name', event.name);
  put('gatehouse.decision', event.decision);
  put('gatehouse.stage', event.stage);
  put('gatehouse.reason_code', event.code);
  put('gatehouse.policy.mode', event.policyMode);
  put('gatehouse.policy.version', event.policyVersion);
  put('gatehouse.latency_ms', event.latencyMs);
  put('gatehouse.args.digest', event.argsDigest);
  put('gatehouse.result.digest', event.resultDigest);
  put('gatehouse.event', JSON.stringify(event));
  return attributes;
}

/** One outbox row as the SDK's log record, under its device's resource. */
export function toLogRecord(event: AuditEvent, hash: string, resource: Resource, observedMs: number): ReadableLogRecord {
  const problem = event.decision === 'denied' || event.decision === 'failed' || event.decision === 'error' || event.type === 'server.crashed';
  const what = [event.type, event.server && event.name ? `${event.server}/${event.name}` : event.server, event.decision].filter(Boolean).join(' ');
  return {
    hrTime: hrTime(Date.parse(event.at)),
    hrTimeObserved: hrTime(observedMs),
    severityNumber: problem ? SeverityNumber.WARN : SeverityNumber.INFO,
    severityText: problem ? 'WARN' : 'INFO',
    eventName: `gatehouse.${event.type}`,
    body: what,
    resource,
    instrumentationScope: SCOPE,
    attributes: eventAttributes(event, hash),
    droppedAttributesCount: 0,
  };
}

export function toLogRecords(rows: OutboxRow[], hosts: Map<string, string>, observedMs: number): ReadableLogRecord[] {
  const resources = new Map<string, Resource>();
  const resourceOf = (device: string): Resource => {
    let resource = resources.get(device);
    if (!resource) {
      const host = hosts.get(device);
      resource = resourceFromAttributes({ 'service.name': 'gatehouse', 'gatehouse.device.id': device, ...(host ? { 'host.name': host } : {}) });
      resources.set(device, resource);
    }
    return resource;
  };
  return rows.map((row) => toLogRecord(JSON.parse(row.body) as AuditEvent, row.hash, resourceOf(row.device), observedMs));
}

/** One exporter per hub instance, shut down with it. */
export class SiemForwarder {
  private readonly exporter: OTLPLogExporter;

  constructor(private readonly config: SiemConfig) {
    this.exporter = new OTLPLogExporter({
      url: config.endpoint,
      headers: config.headers ?? {},
      timeoutMillis: config.timeoutMs ?? 10_000,
      // One batch in flight per instance: the outbox holds its rows' locks until it is answered.
      concurrencyLimit: 1,
    });
  }

  /** Resolves once the receiver has accepted every record; rejects otherwise (the rows stay in the outbox). */
  send(rows: OutboxRow[], hosts: Map<string, string>, observedMs = Date.now()): Promise<void> {
    const records = toLogRecords(rows, hosts, observedMs);
    return new Promise((resolve, reject) => {
      this.exporter.export(records, (result: ExportResult) => {
        if (result.code === ExportResultCode.SUCCESS) resolve();
        else reject(new Error(`the SIEM at ${this.config.endpoint} did not take the batch: ${result.error?.message ?? 'export failed'}`));
      });
    });
  }

  shutdown(): Promise<void> {
    return this.exporter.shutdown();
  }
}
