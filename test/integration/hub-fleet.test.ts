/**
 * The hub's fleet view in Chromium (Debian's, driven by playwright-core) against a real hub over a
 * real PostgreSQL, fed by three devices through the real sync code (their SQLite audit stores and
 * the AuditSyncSender): alice's device with refusals, approvals, a policy version, a shadow server
 * and tool definitions; bob's with a gap; carol's with a fork. The page must show each device's
 * user, sync, lag, policy and chain status, the refusals and approvals over time, an event search
 * with the admin API's filters, and the catalogue's shadow servers and disagreeing baselines; and
 * it must show nothing without an admin token.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/core/digest.js';
import { sha256Hex } from '../../src/core/audit/event.js';
import type { AuditRecord, Logger } from '../../src/core/ports.js';
import { sha256Hex as tokenHash, startHub, type RunningHub } from '../../src/hub/server.js';
import { AuditSyncSender } from '../../src/node/audit/sync.js';
import { launchChromium } from '../e2e/support.js';
import { callRecord, testDevice, type TestDevice } from '../support/hub-device.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { REPO } from './support/gatehouse.js';

const ADMIN = 'admin-token-for-fleet-tests';
const ENROL = 'enrolment-secret-for-fleet-tests';
const quiet: Logger = { log: () => undefined };

let postgres: TestPostgres;
let hub: RunningHub;
let browser: Browser;
const devices: TestDevice[] = [];
const senders: AuditSyncSender[] = [];
let alice: TestDevice;
let bob: TestDevice;
let carol: TestDevice;

const minutesAgo = (m: number, i = 0) => Date.now() - m * 60_000 + i;

/** Alice's day: calls under policy v7 (every fourth refused), two approvals (one approved, one declined), a shadow server, tool definitions. */
function aliceEvent(i: number): AuditRecord {
  const base = { user: 'os:alice', client: 'cursor', server: 'crm', kind: 'tool' as const, policyMode: 'managed' as const, policyVersion: 'v7' };
  if (i === 13)
    return { ...base, type: 'approval.requested', at: new Date(minutesAgo(30, i)).toISOString(), name: 'delete_account', approval: { required: true } };
  if (i === 14)
    return {
      ...base,
      type: 'approval.decided',
      at: new Date(minutesAgo(30, i)).toISOString(),
      name: 'delete_account',
      decision: 'allowed',
      approval: { required: true, decision: 'approved' },
    };
  if (i === 15) return { ...base, type: 'approval.requested', at: new Date(minutesAgo(20, i)).toISOString(), name: 'export_all', approval: { required: true } };
  if (i === 16)
    return {
      ...base,
      type: 'approval.decided',
      at: new Date(minutesAgo(20, i)).toISOString(),
      name: 'export_all',
      decision: 'denied',
      approval: { required: true, decision: 'denied' },
    };
  if (i === 17) {
    return {
      type: 'catalog.shadow_server',
      at: new Date().toISOString(),
      server: 'weather',
      client: 'cursor',
      detail: { type: 'stdio', target: 'npx -y @acme/weather-mcp', envKeys: ['WEATHER_API_KEY'] },
    };
  }
  if (i === 18)
    return {
      type: 'catalog.tools_seen',
      at: new Date().toISOString(),
      server: 'crm',
      detail: { version: '2.1.0', tools: { lookup: 'a'.repeat(64), delete_account: 'b'.repeat(64) } },
    };
  return { ...callRecord(i, minutesAgo(60 - i, i)), ...base, name: i % 4 ? 'lookup' : 'delete_account' };
}

function bobEvent(i: number): AuditRecord {
  if (i === 1)
    return {
      type: 'catalog.tools_seen',
      at: new Date().toISOString(),
      server: 'crm',
      detail: { version: '2.1.0', tools: { lookup: 'c'.repeat(64), delete_account: 'b'.repeat(64) } },
    };
  return { ...callRecord(i, minutesAgo(45, i)), user: 'os:bob', policyMode: 'managed', policyVersion: 'v6' };
}

async function syncedDevice(n: number, events: (i: number) => AuditRecord): Promise<TestDevice> {
  const d = await testDevice(hub.url, n, events);
  devices.push(d);
  await d.client.enrol(ENROL);
  const sender = new AuditSyncSender({ store: d.store, client: d.client, batchSize: 50, initialDelayMs: 20, maxDelayMs: 200, idleMs: 50 });
  senders.push(sender);
  sender.start();
  const deadline = Date.now() + 15_000;
  while (sender.status().acked < n + 1) {
    if (Date.now() > deadline) throw new Error(`the sender stopped at ${sender.status().acked}: ${sender.status().lastError}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return d;
}

beforeAll(async () => {
  if (!existsSync(join(REPO, 'dist', 'fleet', 'index.html'))) throw new Error('the fleet view is not built: npm run build');
  postgres = await startPostgres();
  hub = await startHub(
    {
      databaseUrl: await postgres.createDatabase('hub_fleet'),
      host: '127.0.0.1',
      port: 0,
      adminTokenHashes: [tokenHash(ADMIN)],
      enrolmentSecretHashes: [tokenHash(ENROL)],
      fleetDir: join(REPO, 'dist', 'fleet'),
    },
    quiet,
  );
  alice = await syncedDevice(20, aliceEvent);
  bob = await syncedDevice(10, bobEvent);
  carol = await syncedDevice(6, (i) => ({ ...callRecord(i, minutesAgo(10, i)), user: 'os:carol' }));

  // Bob's sender stops; later events arrive without the ones before them: a gap the hub holds open.
  await senders[1]!.stop();
  for (let i = 11; i <= 30; i++) bob.store.append(bobEvent(i));
  await bob.store.durable();
  await bob.client.sendBatch(bob.batch(21, 10));
  // Carol's third event arrives again, rewritten: a fork.
  const b = carol.batch(2, 1);
  const body = canonicalJson({ ...JSON.parse(b.events[0]!.body), decision: 'failed' });
  await expect(carol.client.sendBatch({ ...b, events: [{ seq: 3, body, hash: sha256Hex(body) }], checkpoints: [] })).rejects.toMatchObject({ status: 422 });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const s of senders) await s.stop();
  await hub?.close();
  await postgres?.stop();
  for (const d of devices) d.close();
});

async function openFleet(token = ADMIN): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(`${hub.url}/fleet/`);
  await page.getByRole('textbox', { name: 'Admin token' }).fill(token);
  await page.getByRole('button', { name: 'Open the fleet view' }).click();
  return { page, problems };
}

const row = (page: Page, text: string) => page.getByRole('row').filter({ hasText: text });

describe('the fleet view', () => {
  it('is served with a strict CSP and shows nothing but a sign-in form without a token', async () => {
    const response = await fetch(`${hub.url}/fleet/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await response.text();
    for (const d of devices) expect(html).not.toContain(d.store.device);
    expect((await fetch(`${hub.url}/v1/admin/fleet`)).status).toBe(401);
    expect((await fetch(`${hub.url}/fleet/assets/..%2F..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${hub.url}/fleet/index.html`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses a wrong admin token and asks again', async () => {
    const { page } = await openFleet('not-the-admin-token');
    await expect.poll(() => page.getByText('The hub did not accept this admin token.').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.getByRole('textbox', { name: 'Admin token' }).isVisible()).toBe(true);
    await page.close();
  });

  it('lists the three devices with user, last sync, lag, policy version and chain status, the gap and the fork flagged', async () => {
    const { page, problems } = await openFleet();
    await page.getByRole('row').filter({ hasText: alice.store.device }).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.getByRole('status').first().textContent()).toBe('2 devices with a gap, a fork or another flag.');
    const a = (await row(page, alice.store.device).textContent())!;
    expect(a).toContain('os:alice');
    expect(a).toContain('v7');
    expect(a).toContain('intact');
    expect(a).toMatch(/just now|\d+ s ago/);
    const b = (await row(page, bob.store.device).textContent())!;
    expect(b).toContain('os:bob');
    expect(b).toContain('v6');
    expect(b).toContain('gap');
    // 11 (ten calls and the key event) acknowledged; 22–31 held; 12–21 missing.
    expect(b).toContain('acknowledged to 11 of 31');
    const c = (await row(page, carol.store.device).textContent())!;
    expect(c).toContain('os:carol');
    expect(c).toContain('fork');
    // The badges say it in words and in tone.
    expect(await row(page, carol.store.device).locator('.badge-bad').textContent()).toBe('fork');
    expect(await row(page, bob.store.device).locator('.badge-warn').textContent()).toBe('gap');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('charts the refusals and approvals over time, with the numbers in words', async () => {
    const { page, problems } = await openFleet();
    await page.getByRole('tab', { name: 'Refusals and approvals' }).click();
    const summary = page.getByTestId('timeline-summary');
    await summary.waitFor({ timeout: 15_000 });
    // Alice: calls 4, 8, 12 and 20 refused (16 is her declined approval); bob: 4 and 8 (later ones are held, not lost); carol: 4.
    const refused = (await hub.store.pool.query(`SELECT count(*)::int AS n FROM events WHERE decision = 'denied' AND type NOT LIKE 'approval.%'`)).rows[0]
      .n as number;
    expect(await summary.textContent()).toMatch(new RegExp(`^${refused} refused, 2 approvals asked, 1 approved, 1 declined or expired from `));
    expect(await page.locator('canvas').count()).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Show the numbers as a table' }).click();
    expect(await page.getByRole('table').count()).toBeGreaterThan(0);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("searches events with the admin API's filters, and says what is wrong with a bad one", async () => {
    const { page, problems } = await openFleet();
    await page.getByRole('tab', { name: 'Event search' }).click();
    await page.getByLabel('user', { exact: true }).fill('os:alice');
    await page.getByLabel('decision', { exact: true }).fill('denied');
    await page.getByRole('button', { name: 'Search' }).click();
    const api = (await (
      await fetch(`${hub.url}/v1/admin/events?from=24h&user=os:alice&decision=denied`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as { events: unknown[] };
    expect(api.events.length).toBeGreaterThan(0);
    await expect.poll(() => page.getByText(/events? found\./).textContent(), { timeout: 10_000 }).toBe(`${api.events.length} events found.`);
    expect(await page.getByRole('row').filter({ hasText: 'os:bob' }).count()).toBe(0);
    expect(await page.getByRole('row').filter({ hasText: 'delete_account' }).count()).toBeGreaterThan(0);
    await page.getByLabel('decision', { exact: true }).fill('maybe');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 }).toMatch(/decision must be one of/);
    expect(problems.filter((p) => !/status of 400/.test(p))).toEqual([]);
    await page.close();
  });

  it('shows the shadow servers and the tool baselines, where devices disagree first', async () => {
    const { page, problems } = await openFleet();
    await page.getByRole('tab', { name: 'Shadow servers and baselines' }).click();
    await row(page, 'weather').waitFor({ timeout: 15_000 });
    const shadow = (await row(page, 'weather').textContent())!;
    expect(shadow).toContain('npx -y @acme/weather-mcp');
    expect(shadow).toContain('WEATHER_API_KEY');
    const lookup = (await row(page, 'lookup').textContent())!;
    expect(lookup).toContain('2 different');
    expect((await row(page, 'delete_account').textContent())!).toContain('2 devices');
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe('the fleet API', () => {
  const get = (path: string) => fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });

  it('refuses unknown parameters, bad ranges and too many buckets with a clear error', async () => {
    for (const [path, message] of [
      ['/v1/admin/fleet?colour=red', /unknown parameter "colour"/],
      ['/v1/admin/timeline?buckets=100000', /buckets takes a whole number from 1 to 500/],
      ['/v1/admin/timeline?buckets=1.5', /buckets takes a whole number/],
      ['/v1/admin/timeline?from=yesterday', /from/],
      ['/v1/admin/timeline?from=1h&to=2h', /must be before/],
      ['/v1/admin/timeline?limit=3', /unknown parameter "limit"/],
    ] as const) {
      const res = await get(path);
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message, path).toMatch(message);
    }
  });

  it('counts a timeline into the buckets asked for', async () => {
    const res = await get('/v1/admin/timeline?from=2h&buckets=4');
    const t = (await res.json()) as { bucketMs: number; refused: number[]; approved: number[] };
    expect(t.bucketMs).toBe(30 * 60_000);
    expect(t.refused).toHaveLength(4);
    expect(t.approved.reduce((a, b) => a + b, 0)).toBe(1);
  });
});
