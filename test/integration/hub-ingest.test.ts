/**
 * The hub against a real PostgreSQL (started by this file): enrolment, idempotent ingest, chain
 * checks with gaps, forks and forged records flagged, admin queries, monthly partitions, policy
 * bundles with ETags, SIEM forwarding over OTLP/HTTP, two instances over one database, and the
 * device's sync sender when the hub is down or slow.
 */
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDeviceKey, type DeviceKey } from '../../src/core/audit/device-key.js';
import { deviceRequestPayload, sha256Hex } from '../../src/core/audit/event.js';
import { formatDeviceAuthorization, type BatchRequest } from '../../src/core/audit/protocol.js';
import type { AuditRecord, Logger } from '../../src/core/ports.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { canonicalJson } from '../../src/core/digest.js';
import { sha256Hex as tokenHash, startHub, type RunningHub } from '../../src/hub/server.js';
import { HubClient, HubError } from '../../src/node/audit/hub-client.js';
import { SqliteAuditStore } from '../../src/node/audit/sqlite-store.js';
import { AuditSyncSender } from '../../src/node/audit/sync.js';
import { attributesOf, startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
import { freePort, startPostgres, type TestPostgres } from '../support/postgres.js';

const ADMIN = 'admin-token-for-tests';
const ENROL = 'enrolment-secret-for-tests';
const quiet: Logger = { log: () => undefined };

let postgres: TestPostgres;
let databaseUrl: string;
let hub: RunningHub;
let otlp: OtlpReceiver;
const dirs: string[] = [];
const stores: SqliteAuditStore[] = [];

async function hubOn(port = 0, siem = true): Promise<RunningHub> {
  return startHub(
    {
      databaseUrl,
      host: '127.0.0.1',
      port,
      adminTokenHashes: [tokenHash(ADMIN)],
      enrolmentSecretHashes: [tokenHash(ENROL)],
      ...(siem ? { siem: { endpoint: `${otlp.url}/v1/logs` } } : {}),
      forwardIntervalMs: 100,
    },
    quiet,
  );
}

beforeAll(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase('hub_ingest');
  otlp = await startOtlpReceiver();
  hub = await hubOn();
});

afterAll(async () => {
  for (const s of stores) s.close();
  await hub?.close();
  await otlp?.close();
  await postgres?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A device: its own local store with `n` events, its key, and a client for the hub. */
async function device(n = 0, events: (i: number) => AuditRecord = record): Promise<{ store: SqliteAuditStore; key: DeviceKey; client: HubClient }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-hub-dev-'));
  dirs.push(dir);
  const store = new SqliteAuditStore({ file: join(dir, 'audit.db'), checkpointEvery: 1_000_000 });
  stores.push(store);
  const key = await loadDeviceKey(new MemorySecretStore(), store.device, { create: true });
  for (let i = 1; i <= n; i++) store.append(events(i));
  // The store records the key as the event after these (`audit.device_key`).
  store.setDeviceKey(key);
  await store.durable();
  return { store, key, client: new HubClient({ url: hub.url, key }) };
}

function record(i: number): AuditRecord {
  return {
    type: 'call.outcome',
    at: new Date(Date.now() - 60_000 + i).toISOString(),
    callId: `call-${i}`,
    user: i % 2 ? 'os:alice' : 'os:bob',
    client: 'cursor',
    server: 'memory',
    kind: 'tool',
    name: i % 4 ? 'read_graph' : 'delete_entities',
    decision: i % 4 ? 'ok' : 'denied',
  };
}

const batch = (store: SqliteAuditStore, after: number, limit: number): BatchRequest => ({ device: store.device, ...store.readBatch(after, limit) });

async function admin(path: string, token = ADMIN): Promise<Response> {
  return fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

async function signedPost(key: DeviceKey, path: string, body: string, ts = Date.now()): Promise<Response> {
  return fetch(`${hub.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: formatDeviceAuthorization(key.device, ts, key.sign(deviceRequestPayload('POST', path, ts, body))),
    },
    body,
  });
}

describe('enrolment', () => {
  it('enrols a device that proves it holds the key, and is idempotent', async () => {
    const d = await device();
    expect(await d.client.enrol(ENROL)).toMatchObject({ device: d.store.device, acked: 0, status: 'active' });
    expect(await d.client.enrol(ENROL)).toMatchObject({ acked: 0 });
  });

  it('refuses a wrong enrolment secret, and a second enrolment of the same device with another key', async () => {
    const d = await device();
    await expect(d.client.enrol('wrong-secret')).rejects.toThrow(/valid enrolment secret/);
    await d.client.enrol(ENROL);
    const impostor = await loadDeviceKey(new MemorySecretStore(), d.store.device, { create: true });
    await expect(new HubClient({ url: hub.url, key: impostor }).enrol(ENROL)).rejects.toThrow(/already enrolled with another key/);
  });
});

describe('ingest', () => {
  it('stores a batch, acknowledges its last event, and counts a replay as duplicates without storing twice', async () => {
    const d = await device(50);
    await d.client.enrol(ENROL);
    const first = await d.client.sendBatch(batch(d.store, 0, 50));
    expect(first).toMatchObject({ acked: 50, accepted: 50, duplicates: 0, flags: [] });
    const replay = await d.client.sendBatch(batch(d.store, 0, 50));
    expect(replay).toMatchObject({ acked: 50, accepted: 0, duplicates: 50 });
    const { rows } = await hub.store.pool.query('SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM events WHERE device = $1', [d.store.device]);
    expect(rows[0]).toEqual({ n: 50, d: 50 });
    expect((await d.client.state())!.acked).toBe(50);
  });

  it('flags a gap, holds later events, and acknowledges through them once the gap is filled', async () => {
    const d = await device(30);
    await d.client.enrol(ENROL);
    await d.client.sendBatch(batch(d.store, 0, 10));
    const ahead = await d.client.sendBatch(batch(d.store, 20, 10));
    expect(ahead.acked).toBe(10);
    expect(ahead.flags).toEqual([expect.objectContaining({ kind: 'gap', seq: 11, message: expect.stringMatching(/events 11–20 have not arrived/) })]);
    const filled = await d.client.sendBatch(batch(d.store, 10, 10));
    expect(filled.acked).toBe(30);
    const flags = (await (await admin(`/v1/admin/flags?device=${d.store.device}`)).json()) as { flags: { kind: string; resolvedAt: string | null }[] };
    expect(flags.flags).toEqual([expect.objectContaining({ kind: 'gap', resolvedAt: expect.any(String) })]);
  });

  it('refuses a forged record (edited body), keeps the events before it, and flags it with the sequence number', async () => {
    const d = await device(10);
    await d.client.enrol(ENROL);
    const b = batch(d.store, 0, 10);
    b.events[6] = { ...b.events[6]!, body: b.events[6]!.body.replace('"os:alice"', '"os:mallory"').replace('"os:bob"', '"os:mallory"') };
    const error = await d.client.sendBatch(b).catch((e: HubError) => e);
    expect(error).toBeInstanceOf(HubError);
    expect(error).toMatchObject({ status: 422, code: 'forged_record' });
    expect((error as Error).message).toMatch(/event 7: its content does not match its hash/);
    expect((await d.client.state())!.acked).toBe(6);
  });

  it('refuses a re-hashed record whose link to its predecessor breaks', async () => {
    const d = await device(10);
    await d.client.enrol(ENROL);
    await d.client.sendBatch(batch(d.store, 0, 5));
    const b = batch(d.store, 5, 5);
    const event = JSON.parse(b.events[0]!.body);
    event.prev = 'f'.repeat(64);
    const body = canonicalJson(event);
    b.events[0] = { seq: 6, body, hash: sha256Hex(body) };
    await expect(d.client.sendBatch(b)).rejects.toMatchObject({
      status: 422,
      message: expect.stringMatching(/event 6 names predecessor ffffffffffff but event 5 hashes to/),
    });
    const flags = await hub.store.flags(d.store.device);
    expect(flags.map((f) => [f.kind, f.seq])).toContainEqual(['broken_link', 6]);
  });

  it("refuses a checkpoint whose signature is not the device's", async () => {
    const d = await device(5);
    await d.client.enrol(ENROL);
    const other = await loadDeviceKey(new MemorySecretStore(), d.store.device, { create: true });
    const b = batch(d.store, 0, 5);
    const forged = { device: d.store.device, seq: 5, hash: b.events[4]!.hash, at: new Date().toISOString(), keyId: d.key.keyId };
    const { signCheckpoint } = await import('../../src/core/audit/event.js');
    b.checkpoints = [signCheckpoint(other.sign, forged)];
    await expect(d.client.sendBatch(b)).rejects.toMatchObject({
      status: 422,
      message: expect.stringMatching(/checkpoint at event 5: the signature does not verify/),
    });
    expect((await hub.store.flags(d.store.device)).map((f) => f.kind)).toContain('bad_signature');
  });

  it('flags a fork when an event arrives that differs from the one it already holds', async () => {
    const d = await device(5);
    await d.client.enrol(ENROL);
    await d.client.sendBatch(batch(d.store, 0, 5));
    const b = batch(d.store, 0, 5);
    const event = JSON.parse(b.events[2]!.body);
    event.decision = 'denied';
    const body = canonicalJson(event);
    b.events = [{ seq: 3, body, hash: sha256Hex(body) }];
    b.checkpoints = [];
    await expect(d.client.sendBatch(b)).rejects.toMatchObject({
      status: 422,
      message: expect.stringMatching(/event 3 differs from the one the hub already holds/),
    });
    expect((await hub.store.flags(d.store.device)).map((f) => f.kind)).toContain('fork');
  });

  it('answers bad requests with precise errors: unknown device, no or bad signature, stale time, malformed and oversized bodies', async () => {
    const stranger = await device(2);
    await expect(stranger.client.sendBatch(batch(stranger.store, 0, 2))).rejects.toMatchObject({
      status: 404,
      code: 'unknown_device',
      message: expect.stringMatching(/not enrolled/),
    });

    const d = await device(2);
    await d.client.enrol(ENROL);
    const path = `/v1/devices/${d.store.device}/events`;
    const unsigned = await fetch(`${hub.url}${path}`, { method: 'POST', body: '{}' });
    expect(unsigned.status).toBe(401);
    const body = JSON.stringify(batch(d.store, 0, 2));
    const other = await loadDeviceKey(new MemorySecretStore(), d.store.device, { create: true });
    expect(((await (await signedPost(other, path, body)).json()) as { error: { code: string } }).error.code).toBe('bad_signature');
    const stale = await signedPost(d.key, path, body, Date.now() - 3_600_000);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('stale_request');
    const garbage = await signedPost(d.key, path, '{"device": ');
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { error: { message: string } }).error.message).toMatch(/not JSON/);
    const wrongShape = await signedPost(d.key, path, JSON.stringify({ device: d.store.device, events: [{ seq: 1, hash: 'x', body: 'y' }] }));
    expect(((await wrongShape.json()) as { error: { message: string } }).error.message).toMatch(/events\[0\]\.hash must be 64 lower-case hex digits/);
    const huge = await signedPost(d.key, path, JSON.stringify({ device: d.store.device, events: [], pad: 'x'.repeat(17 * 1024 * 1024) }));
    expect(huge.status).toBe(413);
    expect((await d.client.state())!.acked).toBe(0);
  });
});

describe('admin queries', () => {
  it('filter by user, tool, decision and device, and need an admin token', async () => {
    const d = await device(40);
    await d.client.enrol(ENROL);
    await d.client.sendBatch(batch(d.store, 0, 40));
    expect((await admin('/v1/admin/events', 'not-the-token')).status).toBe(401);
    const res = await admin(`/v1/admin/events?device=${d.store.device}&user=os:bob&decision=denied&tool=delete_entities`);
    const { events } = (await res.json()) as { events: { seq: number; event: AuditRecord }[] };
    expect(events.map((e) => e.event.callId)).toEqual([
      'call-4',
      'call-8',
      'call-12',
      'call-16',
      'call-20',
      'call-24',
      'call-28',
      'call-32',
      'call-36',
      'call-40',
    ]);
    const paged = (await (await admin(`/v1/admin/events?device=${d.store.device}&after=35&limit=3`)).json()) as { events: { seq: number }[] };
    expect(paged.events.map((e) => e.seq)).toEqual([36, 37, 38]);
    const bad = await admin('/v1/admin/events?colour=red');
    expect(bad.status).toBe(400);
  });

  it('keep events in monthly partitions, created for the month an event belongs to', async () => {
    const d = await device(3, (i) => ({ ...record(i), at: new Date(Date.UTC(2024, 1, 10, 12, 0, i)).toISOString() }));
    await d.client.enrol(ENROL);
    await d.client.sendBatch(batch(d.store, 0, 3));
    const { rows } = await hub.store.pool.query('SELECT DISTINCT tableoid::regclass::text AS part FROM events WHERE device = $1', [d.store.device]);
    expect(rows).toEqual([{ part: 'events_2024_02' }]);
  });
});

describe('policy bundles', () => {
  it('are published by an admin and served to enrolled devices with an ETag', async () => {
    const bytes = Buffer.from('{"signed":"bundle","version":7}');
    const put = await fetch(`${hub.url}/v1/admin/bundle`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/jose' },
      body: bytes,
    });
    expect(put.status).toBe(201);
    const { etag } = (await put.json()) as { etag: string };
    const d = await device();
    await d.client.enrol(ENROL);
    const got = await d.client.fetchBundle();
    expect(got).toMatchObject({ notModified: false, etag, contentType: 'application/jose' });
    expect(Buffer.from((got as { bytes: Uint8Array }).bytes).toString()).toBe(bytes.toString());
    expect(await d.client.fetchBundle(etag)).toEqual({ notModified: true });
    expect((await fetch(`${hub.url}/v1/bundle`)).status).toBe(401);
  });
});

describe('SIEM forwarding', () => {
  const fromDevice = (device: string) => otlp.logRecords().filter((r) => r.resource['gatehouse.device.id'] === device);
  const uid = (r: Record<string, unknown>) => attributesOf(r.attributes)['log.record.uid'];

  it('sends every event once as an OTLP log record carrying its own event id', async () => {
    const d = await device(25);
    await d.client.enrol(ENROL);
    await d.client.sendBatch(batch(d.store, 0, 25));
    await d.client.sendBatch(batch(d.store, 0, 25));
    await waitUntil(() => fromDevice(d.store.device).length >= 25);
    await new Promise((r) => setTimeout(r, 300));
    const records = fromDevice(d.store.device);
    expect(records).toHaveLength(25);
    const ids = new Set(records.map(uid));
    expect(ids.size).toBe(25);
    const local = d.store.readBatch(0, 25).events.map((e) => JSON.parse(e.body).id);
    expect([...ids].sort()).toEqual([...local].sort());
    expect(records[0]).toMatchObject({ eventName: 'gatehouse.call.outcome', severityText: expect.any(String), timeUnixNano: expect.anything() });
    expect(otlp.requests.every((r) => r.signal === 'logs' && r.encoding === 'json')).toBe(true);
    expect(records[0]!.scope).toMatchObject({ name: 'gatehouse.audit', version: '1' });
  });

  it('keeps events in the outbox while the SIEM refuses them, and re-sends them once it takes them', async () => {
    otlp.failNext(1_000_000, 500);
    try {
      const d = await device(5);
      await d.client.enrol(ENROL);
      await d.client.sendBatch(batch(d.store, 0, 5));
      const refusedBefore = otlp.refused;
      await waitUntil(() => otlp.refused >= refusedBefore + 2);
      const waiting = async () =>
        (await hub.store.pool.query('SELECT count(*)::int AS n FROM siem_outbox WHERE device = $1', [d.store.device])).rows[0].n as number;
      expect(await waiting()).toBe(5);
      expect(fromDevice(d.store.device)).toHaveLength(0);
      otlp.failNext(0);
      await waitUntil(() => fromDevice(d.store.device).length >= 5);
      const local = d.store.readBatch(0, 5).events.map((e) => JSON.parse(e.body).id);
      expect([...new Set(fromDevice(d.store.device).map(uid))].sort()).toEqual([...local].sort());
      const deadline = Date.now() + 10_000;
      while ((await waiting()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await waiting()).toBe(0);
    } finally {
      otlp.failNext(0);
    }
  });
});

describe('several hub instances over one database', () => {
  it("take the same device's batches concurrently without duplicating or losing any", async () => {
    const second = await hubOn(0, false);
    try {
      const d = await device(300);
      await d.client.enrol(ENROL);
      const viaSecond = new HubClient({ url: second.url, key: d.key });
      const sends = [];
      for (let after = 0; after < 300; after += 50) {
        sends.push(d.client.sendBatch(batch(d.store, after, 50)).catch(() => undefined));
        sends.push(viaSecond.sendBatch(batch(d.store, after, 50)).catch(() => undefined));
      }
      await Promise.all(sends);
      const { rows } = await hub.store.pool.query('SELECT count(*)::int AS n FROM chain WHERE device = $1', [d.store.device]);
      expect(rows[0].n).toBe(300);
      expect((await viaSecond.state())!.acked).toBe(300);
    } finally {
      await second.close();
    }
  });
});

describe('a read-only instance (for a read replica)', () => {
  it('answers admin queries and refuses device traffic, changing nothing', async () => {
    const reader = await startHub(
      { databaseUrl, host: '127.0.0.1', port: 0, adminTokenHashes: [tokenHash(ADMIN)], enrolmentSecretHashes: [tokenHash(ENROL)], readOnly: true },
      quiet,
    );
    try {
      const devices = await fetch(`${reader.url}/v1/admin/devices`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(((await devices.json()) as { devices: unknown[] }).devices.length).toBeGreaterThan(0);
      const d = await device(1);
      const refused = await new HubClient({ url: reader.url, key: d.key }).enrol(ENROL).catch((e: HubError) => e);
      expect(refused).toMatchObject({ status: 503, code: 'read_only' });
    } finally {
      await reader.close();
    }
  });
});

describe('the sync sender', () => {
  it('backs off while the hub is down, then catches up without loss or duplicates once it is back', async () => {
    const port = await freePort();
    const d = await device(120);
    await d.client.enrol(ENROL);
    const client = new HubClient({ url: `http://127.0.0.1:${port}`, key: d.key, timeoutMs: 2000 });
    const sender = new AuditSyncSender({ store: d.store, client, batchSize: 50, initialDelayMs: 50, maxDelayMs: 200, idleMs: 50 });
    sender.start();
    try {
      await waitUntil(() => sender.status().state === 'backing-off');
      expect(sender.status()).toMatchObject({ acked: 0, lagRecords: 121, lastError: expect.stringMatching(/cannot reach the hub/) });
      const revived = await hubOn(port, false);
      try {
        for (let i = 121; i <= 150; i++) d.store.append(record(i));
        // 120 calls, the device key event, 30 more calls.
        await waitUntil(() => sender.status().acked === 151, 15_000);
        expect(sender.status()).toMatchObject({ lagRecords: 0, lagSeconds: 0 });
        expect(d.store.hubAcked()).toBe(151);
        const { rows } = await hub.store.pool.query('SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM events WHERE device = $1', [
          d.store.device,
        ]);
        expect(rows[0]).toEqual({ n: 151, ids: 151 });
        // A checkpoint signed after its events were sent (on a timer, at shutdown) follows them.
        d.store.checkpointNow();
        const deadline = Date.now() + 10_000;
        for (;;) {
          const state = await d.client.state();
          if (state!.checkpoint === 151) break;
          if (Date.now() > deadline) throw new Error(`the hub holds checkpoint ${state!.checkpoint}, not 151`);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await sender.stop();
        await revived.close();
      }
    } finally {
      await sender.stop();
    }
  });

  it('gives up on a hub that accepts the connection but never answers, with a timeout error', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const d = await device(3);
    const client = new HubClient({ url: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, key: d.key, timeoutMs: 300 });
    await expect(client.state()).rejects.toMatchObject({ code: 'hub_timeout', message: expect.stringMatching(/did not answer within 300 ms/) });
    silent.closeAllConnections();
    silent.close();
  });
});

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

// Keep pg's types in use for readers of this file: the hub's own pool is what the assertions query.
void pg;
