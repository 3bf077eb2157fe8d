/**
 * A device for hub tests: its own local audit store (the real SQLite store, with `n` events), its
 * device key, and the real hub client, as `gatehouse audit enrol` and the sync sender use them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDeviceKey, type DeviceKey } from '../../src/core/audit/device-key.js';
import type { BatchRequest } from '../../src/core/audit/protocol.js';
import type { AuditRecord } from '../../src/core/ports.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { HubClient } from '../../src/node/audit/hub-client.js';
import { SqliteAuditStore } from '../../src/node/audit/sqlite-store.js';

export interface TestDevice {
  store: SqliteAuditStore;
  key: DeviceKey;
  client: HubClient;
  /** The next `limit` events after `after`, as the sync sender would send them. */
  batch(after: number, limit: number): BatchRequest;
  close(): void;
}

/** A governed call's outcome: odd calls by alice, even by bob; every fourth denied. */
export function callRecord(i: number, at = Date.now() - 60_000 + i): AuditRecord {
  return {
    type: 'call.outcome',
    at: new Date(at).toISOString(),
    callId: `call-${i}`,
    user: i % 2 ? 'os:alice' : 'os:bob',
    client: 'cursor',
    server: 'memory',
    kind: 'tool',
    name: i % 4 ? 'read_graph' : 'delete_entities',
    decision: i % 4 ? 'ok' : 'denied',
    ...(i % 4 ? {} : { stage: 'policy', code: 'policy_denied' }),
  } as AuditRecord;
}

export async function testDevice(
  hubUrl: string,
  n = 0,
  events: (i: number) => AuditRecord = (i) => callRecord(i),
  fetchImpl?: typeof fetch,
): Promise<TestDevice> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-hub-dev-'));
  const store = new SqliteAuditStore({ file: join(dir, 'audit.db'), checkpointEvery: 1_000_000 });
  const key = await loadDeviceKey(new MemorySecretStore(), store.device, { create: true });
  for (let i = 1; i <= n; i++) store.append(events(i));
  // The store records the key as the event after these (`audit.device_key`).
  store.setDeviceKey(key);
  await store.durable();
  return {
    store,
    key,
    client: new HubClient({ url: hubUrl, key, ...(fetchImpl ? { fetch: fetchImpl } : {}) }),
    batch: (after, limit) => ({ device: store.device, ...store.readBatch(after, limit) }),
    close() {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
