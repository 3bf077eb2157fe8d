/**
 * The hub's Prometheus endpoint against a real PostgreSQL (started by this file), scraped as
 * Prometheus would and read with a strict reader of the text format: after real ingest from real
 * device stores it reports the events taken, the batch latency, each device's lag, gaps and forks,
 * the SIEM outbox and the database pool; and it answers only a metrics or admin token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/core/digest.js';
import { sha256Hex } from '../../src/core/audit/event.js';
import type { Logger } from '../../src/core/ports.js';
import { sha256Hex as tokenHash, startHub, type RunningHub } from '../../src/hub/server.js';
import { testDevice, type TestDevice } from '../support/hub-device.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { parsePrometheusText, sampleValue, type Family } from '../support/prometheus-text.js';

const ADMIN = 'admin-token-for-metrics-tests';
const ENROL = 'enrolment-secret-for-metrics-tests';
const SCRAPER = 'metrics-token-for-metrics-tests';
const quiet: Logger = { log: () => undefined };

let postgres: TestPostgres;
let hub: RunningHub;
let siem: OtlpReceiver;
const devices: TestDevice[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
  siem = await startOtlpReceiver();
  // The SIEM refuses everything here, so what the hub ingests stays in its outbox.
  siem.failNext(Number.MAX_SAFE_INTEGER, 500);
  hub = await startHub(
    {
      databaseUrl: await postgres.createDatabase('hub_metrics'),
      host: '127.0.0.1',
      port: 0,
      adminTokenHashes: [tokenHash(ADMIN)],
      enrolmentSecretHashes: [tokenHash(ENROL)],
      metricsTokenHashes: [tokenHash(SCRAPER)],
      siem: { endpoint: `${siem.url}/v1/logs` },
      forwardIntervalMs: 100,
    },
    quiet,
  );
});

afterAll(async () => {
  await hub?.close();
  await siem?.close();
  await postgres?.stop();
  for (const d of devices) d.close();
});

async function device(n: number): Promise<TestDevice> {
  const d = await testDevice(hub.url, n);
  devices.push(d);
  await d.client.enrol(ENROL);
  return d;
}

async function scrape(token = SCRAPER): Promise<Map<string, Family>> {
  const res = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

describe("the hub's /metrics", () => {
  it('counts the events a real ingest stored and the duplicates of a replay, and times each batch', async () => {
    const before = await scrape();
    const stored0 = sampleValue(before, 'gatehouse_hub_events_ingested_total', { result: 'stored' })!;
    const batches0 = sampleValue(before, 'gatehouse_hub_batch_duration_seconds_count', { outcome: 'stored' }) ?? 0;

    const d = await device(40);
    await d.client.sendBatch(d.batch(0, 20));
    await d.client.sendBatch(d.batch(20, 21));
    await d.client.sendBatch(d.batch(0, 10));

    const after = await scrape();
    expect(after.get('gatehouse_hub_events_ingested_total')!.type).toBe('counter');
    // 40 calls and the device key event.
    expect(sampleValue(after, 'gatehouse_hub_events_ingested_total', { result: 'stored' })! - stored0).toBe(41);
    expect(sampleValue(after, 'gatehouse_hub_events_ingested_total', { result: 'duplicate' })).toBeGreaterThanOrEqual(10);
    expect(after.get('gatehouse_hub_batch_duration_seconds')!.type).toBe('histogram');
    expect(sampleValue(after, 'gatehouse_hub_batch_duration_seconds_count', { outcome: 'stored' })! - batches0).toBe(3);
    expect(sampleValue(after, 'gatehouse_hub_batch_duration_seconds_sum', { outcome: 'stored' })).toBeGreaterThan(0);
    expect(sampleValue(after, 'gatehouse_hub_http_requests_total', { route: 'events', status: '200' })).toBeGreaterThanOrEqual(3);
  });

  it("reports each device's lag, and flags a gap and a fork per device and across the fleet", async () => {
    const steady = await device(10);
    await steady.client.sendBatch(steady.batch(0, 11));

    const gappy = await device(30);
    await gappy.client.sendBatch(gappy.batch(0, 10));
    await gappy.client.sendBatch(gappy.batch(20, 11));

    const forked = await device(5);
    await forked.client.sendBatch(forked.batch(0, 6));
    const b = forked.batch(2, 1);
    const rewritten = { ...JSON.parse(b.events[0]!.body), decision: 'failed' };
    const body = canonicalJson(rewritten);
    await expect(forked.client.sendBatch({ ...b, events: [{ seq: 3, body, hash: sha256Hex(body) }], checkpoints: [] })).rejects.toMatchObject({ status: 422 });

    const m = await scrape();
    for (const d of [steady, gappy, forked]) {
      const age = sampleValue(m, 'gatehouse_hub_device_sync_age_seconds', { device: d.store.device })!;
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThan(60);
    }
    expect(sampleValue(m, 'gatehouse_hub_device_unacked_events', { device: steady.store.device })).toBe(0);
    // Events 21–31 are held, 11–20 missing: the ack stops at 10.
    expect(sampleValue(m, 'gatehouse_hub_device_unacked_events', { device: gappy.store.device })).toBe(21);
    expect(sampleValue(m, 'gatehouse_hub_device_open_flags', { device: gappy.store.device, kind: 'gap' })).toBe(1);
    expect(sampleValue(m, 'gatehouse_hub_device_open_flags', { device: forked.store.device, kind: 'fork' })).toBe(1);
    expect(sampleValue(m, 'gatehouse_hub_device_open_flags', { device: steady.store.device, kind: 'gap' })).toBeUndefined();
    expect(sampleValue(m, 'gatehouse_hub_open_flags', { kind: 'gap' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(m, 'gatehouse_hub_open_flags', { kind: 'fork' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(m, 'gatehouse_hub_open_flags', { kind: 'checkpoint_mismatch' })).toBe(0);
    expect(sampleValue(m, 'gatehouse_hub_batch_duration_seconds_count', { outcome: 'refused' })).toBeGreaterThanOrEqual(1);

    // Filling the gap resolves its flag and clears the device's lag.
    await gappy.client.sendBatch(gappy.batch(10, 10));
    const filled = await scrape();
    expect(sampleValue(filled, 'gatehouse_hub_device_unacked_events', { device: gappy.store.device })).toBe(0);
    expect(sampleValue(filled, 'gatehouse_hub_device_open_flags', { device: gappy.store.device, kind: 'gap' })).toBeUndefined();
  });

  it('reports the SIEM outbox while the SIEM refuses, and the forwarding failures', async () => {
    const d = await device(7);
    await d.client.sendBatch(d.batch(0, 8));
    const refusedBefore = siem.refused;
    const deadline = Date.now() + 10_000;
    while (siem.refused < refusedBefore + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    const m = await scrape();
    const { rows } = await hub.store.pool.query('SELECT count(*)::int AS n FROM siem_outbox');
    expect(sampleValue(m, 'gatehouse_hub_siem_outbox_events')).toBe(rows[0].n);
    expect(rows[0].n).toBeGreaterThanOrEqual(8);
    expect(sampleValue(m, 'gatehouse_hub_siem_outbox_oldest_seconds')).toBeGreaterThanOrEqual(0);
    expect(sampleValue(m, 'gatehouse_hub_siem_failures_total')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(m, 'gatehouse_hub_siem_forwarded_total')).toBe(0);
  });

  it('reports the database pool: open, idle and waiting connections', async () => {
    const m = await scrape();
    const total = sampleValue(m, 'gatehouse_hub_db_pool_connections', { pool: 'primary', state: 'total' })!;
    expect(total).toBeGreaterThanOrEqual(1);
    expect(total).toBeLessThanOrEqual(10);
    expect(sampleValue(m, 'gatehouse_hub_db_pool_connections', { pool: 'primary', state: 'idle' })).toBeLessThanOrEqual(total);
    expect(sampleValue(m, 'gatehouse_hub_db_pool_connections', { pool: 'primary', state: 'waiting' })).toBe(0);
    expect(sampleValue(m, 'gatehouse_hub_devices', { status: 'active' })).toBeGreaterThanOrEqual(5);
    expect(m.get('process_cpu_user_seconds_total')?.type).toBe('counter');
  });

  it('answers a metrics token or an admin token, and refuses none, the enrolment secret, a device key and other methods', async () => {
    await scrape(ADMIN);
    expect((await fetch(`${hub.url}/metrics`)).status).toBe(401);
    for (const token of [ENROL, 'guess', `${SCRAPER}x`]) {
      const res = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    const post = await fetch(`${hub.url}/metrics`, { method: 'POST', headers: { authorization: `Bearer ${SCRAPER}` }, body: 'x'.repeat(1024) });
    expect(post.status).toBe(405);
    // The metrics token opens nothing else.
    expect((await fetch(`${hub.url}/v1/admin/devices`, { headers: { authorization: `Bearer ${SCRAPER}` } })).status).toBe(401);
    const m = await scrape();
    expect(sampleValue(m, 'gatehouse_hub_http_requests_total', { route: 'metrics', status: '401' })).toBeGreaterThanOrEqual(4);
  });

  it('is refused to everyone on a hub with no metrics or admin token configured', async () => {
    const closed = await startHub(
      { databaseUrl: await postgres.createDatabase('hub_metrics_closed'), host: '127.0.0.1', port: 0, adminTokenHashes: [], enrolmentSecretHashes: [] },
      quiet,
    );
    try {
      for (const headers of [{}, { authorization: 'Bearer ' }, { authorization: `Bearer ${SCRAPER}` }] as Record<string, string>[])
        expect((await fetch(`${closed.url}/metrics`, { headers })).status).toBe(401);
    } finally {
      await closed.close();
    }
  });
});
