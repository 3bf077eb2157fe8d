/**
 * Rate limits and write quotas end to end: the sample bundle with quotas.json set for the test, a
 * real daemon, the CRM fixture (which logs every call it executes) and an IDE over the real socket.
 * 100 concurrent calls against a cap of 10 let exactly 10 through; counters and rate limits survive
 * a restart; past a threshold each call waits for the person; `gatehouse status` shows what is left.
 * Issue 6.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';
import { bridgeEnv, closeAll, connectBridge, runGatehouse, textOf, type Connected } from './support/clients.js';
import { auditEvents, errorOf, executed, Person, startApprovalGatehouse, untilCrmReady, type ApprovalGatehouse } from './support/approvals.js';

let scratch: string;
let root: TestKey;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gh-quota-'));
  root = await makeKey();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
afterEach(closeAll);

/** The sample bundle with these quotas (the sample's @quota on large refunds still needs its quota). */
async function bundleWith(callLog: string, quotas: Record<string, unknown>): Promise<Buffer> {
  const large = { 'large-refunds-per-day': { window: 'day', tools: [], limit: 10 } };
  const text = JSON.stringify({ rateLimits: quotas.rateLimits ?? {}, quotas: { ...large, ...(quotas.quotas as object) } });
  return signFiles(sampleFiles({ crmArgs: ['--log', callLog], files: { 'quotas.json': text } }), { version: 1, keys: [root] });
}

function refund(client: Connected['client'], contact: string, amount: number) {
  return client.callTool({ name: 'crm__refund', arguments: { contact_id: contact, amount, currency: 'EUR' } }, { timeout: 30_000 });
}

describe('a cap of 10 refunds a day and 2 searches an hour', () => {
  let gh: ApprovalGatehouse;
  let callLog: string;
  const connect = () => connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });

  beforeAll(async () => {
    callLog = join(scratch, 'cap.jsonl');
    const bundle = await bundleWith(callLog, {
      rateLimits: { searches: { per: ['user', 'tool'], rate: '2/h', burst: 2, tools: ['crm__search_contacts'] } },
      quotas: { 'refunds-per-day': { window: 'day', per: 'user', tools: 'writes', limit: 10 } },
    });
    gh = await startApprovalGatehouse({ roots: [root], bundle, identity: { user: 'sam@example.com', groups: ['crm-support'] } });
    await untilCrmReady(gh);
  });
  afterAll(async () => gh?.stop());

  it('lets exactly 10 of 100 concurrent refunds through, and the CRM runs exactly 10', async () => {
    const { client } = await connect();
    const outcomes = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => refund(client, 'c-1', 1 + (i % 50))));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(10);
    const refused = outcomes
      .filter((o): o is PromiseRejectedResult => o.status === 'rejected')
      .map((o) => (o.reason as { data?: { reason?: string; quota?: string } }).data);
    expect(refused).toHaveLength(90);
    expect(refused.filter((d) => d?.reason !== 'quota_exceeded' || d.quota !== 'refunds-per-day')).toEqual([]);
    expect(executed(callLog).filter((c) => c.tool === 'refund')).toHaveLength(10);
  });

  it('says how much is left in gatehouse status', async () => {
    const status = await runGatehouse(['status'], bridgeEnv(gh.env));
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/QUOTAS AND RATE LIMITS \(policy v1\)/);
    expect(status.stdout).toMatch(/refunds-per-day\s+10 per day \(write tools\)\s+10 used, 0 left \(user sam@example\.com, resets /);
    expect(status.stdout).toMatch(/searches\s+2 calls per hour, bursts of 2, per user and tool \(crm__search_contacts\)\s+not limiting/);
  });

  it('limits searches to 2 an hour, saying when to retry', async () => {
    const { client } = await connect();
    const search = () => client.callTool({ name: 'crm__search_contacts', arguments: { query: 'a' } });
    await search();
    await search();
    const error = await errorOf(search());
    expect(error.data).toMatchObject({ reason: 'rate_limited', limit: 'searches' });
    expect(error.data!.retryAfterMs).toBeGreaterThan(29 * 60_000);
    expect(auditEvents(gh.paths, 'quota.crossed').map((e) => (e.detail as { kind: string }).kind)).toEqual(['cap', 'rate-limit']);
  });

  it('keeps the counts and the rate limits across a restart', async () => {
    await gh.restart();
    await untilCrmReady(gh);
    expect(gh.status().quotas!.quotas.find((q) => q.id === 'refunds-per-day')!.usage).toEqual([expect.objectContaining({ used: 10, remaining: 0 })]);
    const { client } = await connect();
    expect((await errorOf(refund(client, 'c-2', 1))).data).toMatchObject({ reason: 'quota_exceeded' });
    expect((await errorOf(client.callTool({ name: 'crm__search_contacts', arguments: { query: 'a' } }))).data).toMatchObject({ reason: 'rate_limited' });
    expect(executed(callLog).filter((c) => c.tool === 'refund')).toHaveLength(10);
  });
});

describe('a session quota that needs approval after 2 refunds and stops at 3', () => {
  let gh: ApprovalGatehouse;
  let callLog: string;
  const connect = () => connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });

  beforeAll(async () => {
    callLog = join(scratch, 'threshold.jsonl');
    const bundle = await bundleWith(callLog, { quotas: { 'session-writes': { window: 'session', tools: 'writes', approvalAfter: 2, limit: 3 } } });
    gh = await startApprovalGatehouse({ roots: [root], bundle, identity: { user: 'sam@example.com', groups: ['crm-support'] }, timeoutMs: 20_000 });
    await untilCrmReady(gh);
  });
  afterAll(async () => gh?.stop());

  it('asks the person for the third refund, gives its unit back when they decline, and runs it when they allow it; the fourth is refused', async () => {
    const { client } = await connect();
    expect(textOf(await refund(client, 'c-1', 1))).toBe('refunded 1.00 EUR to Ada Lovelace');
    expect(textOf(await refund(client, 'c-1', 2))).toBe('refunded 2.00 EUR to Ada Lovelace');

    const declined = errorOf(refund(client, 'c-1', 3));
    const first = new Person(await gh.nextQuestion());
    await first.open();
    expect(first.facts()['Why you are asked']).toBe(
      'This call needs approval under quota session-writes: call 3 of 3 in this session, and each call after 2 needs approval',
    );
    await first.decline();
    expect((await declined).data).toMatchObject({ reason: 'approval_required', approval: 'declined' });

    // The declined call spent nothing: the next one is the third again, and asks again.
    const allowed = refund(client, 'c-1', 3);
    const second = new Person(await gh.nextQuestion());
    await second.open();
    expect(second.facts()['Why you are asked']).toContain('call 3 of 3');
    await second.approve('once');
    expect(textOf(await allowed)).toBe('refunded 3.00 EUR to Ada Lovelace');

    expect((await errorOf(refund(client, 'c-1', 4))).data).toMatchObject({ reason: 'quota_exceeded', quota: 'session-writes', window: 'session' });
    expect(executed(callLog).map((c) => c.args.amount)).toEqual([1, 2, 3]);
    // Each reservation that reaches the threshold or the cap is recorded as it happens, the declined one too.
    const crossings = auditEvents(gh.paths, 'quota.crossed').map((e) => (e.detail as { kind: string }).kind);
    expect(crossings).toEqual(['approval-threshold', 'cap', 'approval-threshold', 'cap']);
  });

  it('starts a new session with a new count', async () => {
    const { client } = await connect();
    expect(textOf(await refund(client, 'c-2', 5))).toBe('refunded 5.00 EUR to Grace Hopper');
    expect(gh.status().quotas!.quotas.find((q) => q.id === 'session-writes')!.usage).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ used: 1, remaining: 2, beforeApproval: 1, scope: expect.stringMatching(/^session of client ide since /) }),
      ]),
    );
  });
});
