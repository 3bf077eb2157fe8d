/**
 * The sample bundle's support refund, end to end: a real daemon under the signed sample bundle, the
 * CRM fixture started from its catalog, an IDE over the real socket (`gatehouse connect`), and the
 * person answering on the real question page over HTTP with the address and code the terminal shows, as
 * their browser would. The fixture logs every call it executes, so a refused refund is shown never
 * to have reached it. Issue 6.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, sampleFiles, signFiles } from '../support/policy.js';
import { closeAll, connectBridge, textOf, type Connected } from './support/clients.js';
import { auditEvents, errorOf, executed, Person, startApprovalGatehouse, untilCrmReady, type ApprovalGatehouse } from './support/approvals.js';
import { mcpHeaders, openingRequest, rawRequest, rpcRequest } from './support/raw-http.js';

const TIMEOUT_MS = 5000;
let scratch: string;
let callLog: string;
let gh: ApprovalGatehouse;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gh-refund-'));
  callLog = join(scratch, 'calls.jsonl');
  const root = await makeKey();
  const bundle = await signFiles(sampleFiles({ crmArgs: ['--log', callLog] }), { version: 1, keys: [root] });
  gh = await startApprovalGatehouse({ roots: [root], bundle, identity: { user: 'sam@example.com', groups: ['crm-support'] }, timeoutMs: TIMEOUT_MS });
  await untilCrmReady(gh);
});
afterAll(async () => {
  await gh?.stop();
  rmSync(scratch, { recursive: true, force: true });
});
afterEach(closeAll);

const connect = (): Promise<Connected> => connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });

function refund(client: Connected['client'], contact: string, amount: number, options: { signal?: AbortSignal } = {}) {
  return client.callTool({ name: 'crm__refund', arguments: { contact_id: contact, amount, currency: 'EUR' } }, { timeout: 30_000, ...options });
}

const refundsOf = (contact: string) => executed(callLog).filter((c) => c.tool === 'refund' && c.args.contact_id === contact);

describe('the support refund', () => {
  it('passes 50 EUR without asking anyone', async () => {
    const { client } = await connect();
    const before = gh.announcements.length;
    expect(textOf(await refund(client, 'c-1', 50))).toBe('refunded 50.00 EUR to Ada Lovelace');
    expect(gh.announcements.length).toBe(before);
  });

  it('holds 250 EUR until the person allows it once on the page, then runs it', async () => {
    const { client } = await connect();
    const call = refund(client, 'c-2', 250);
    const person = new Person(await gh.nextQuestion());
    expect(person.shown.title).toBe('Allow ide to call crm__refund?');
    expect(gh.status().approvals!.pending).toEqual([
      expect.objectContaining({ client: 'ide', server: 'crm', name: 'refund', reasons: ['policy support-refund-large'] }),
    ]);
    expect(await person.open()).toBe(200);
    const facts = person.facts();
    expect(facts['Client']).toBe('ide (paired, over socket)');
    expect(facts['Acting for']).toBe('sam@example.com (test identity) (sam@example.com)');
    expect(facts['Tool']).toBe('refund on server crm (writes)');
    expect(facts['Why you are asked']).toBe('This call needs approval (user) under policy support-refund-large');
    expect(facts['What the policy looked at']).toBe('amount = 250, currency = "EUR"');
    expect(facts['Arguments']).toContain('"amount": 250,   ◀ the policy reads this');
    expect(person.choices().map((c) => c.split(':')[0])).toEqual(['once', 'session']);
    expect(refundsOf('c-2')).toEqual([]);
    expect((await person.approve('once')).status).toBe(200);
    expect(textOf(await call)).toBe('refunded 250.00 EUR to Grace Hopper');
    expect(refundsOf('c-2')).toHaveLength(1);
    expect(gh.status().approvals!.pending).toEqual([]);
  });

  it('refuses 250 EUR when the person declines, and the refund never runs', async () => {
    const { client } = await connect();
    const call = errorOf(refund(client, 'c-3', 250));
    const person = new Person(await gh.nextQuestion());
    await person.open();
    expect((await person.decline()).status).toBe(200);
    const error = await call;
    expect(error.message).toContain('crm__refund needs approval (user) under policy support-refund-large; the person at this computer declined');
    expect(error.data).toMatchObject({ reason: 'approval_required', stage: 'approval', approval: 'declined' });
    expect(refundsOf('c-3')).toEqual([]);
  });

  it('"for this session" lets the same refund pattern pass without asking again in that session; another amount or another session asks', async () => {
    const ide = await connect();
    const first = refund(ide.client, 'c-1', 300);
    const person = new Person(await gh.nextQuestion());
    await person.open();
    await person.approve('session');
    await first;
    const asked = gh.announcements.length;
    // Same amount and currency, another contact: the same pattern.
    expect(textOf(await refund(ide.client, 'c-2', 300))).toBe('refunded 300.00 EUR to Grace Hopper');
    expect(gh.announcements.length).toBe(asked);
    expect(gh.status().approvals!.sessionGrants).toBe(1);

    const otherAmount = errorOf(refund(ide.client, 'c-2', 301));
    const askedAgain = new Person(await gh.nextQuestion());
    await askedAgain.open();
    expect(askedAgain.facts()['What the policy looked at']).toBe('amount = 301, currency = "EUR"');
    await askedAgain.decline();
    expect((await otherAmount).data).toMatchObject({ approval: 'declined' });

    const other = await connect();
    const otherSession = errorOf(refund(other.client, 'c-2', 300));
    const askedForOtherSession = new Person(await gh.nextQuestion());
    await askedForOtherSession.open();
    await askedForOtherSession.decline();
    expect((await otherSession).data).toMatchObject({ approval: 'declined' });
    expect(refundsOf('c-2').filter((c) => c.args.amount === 301)).toEqual([]);
  });

  it('refuses a call nobody answers by the deadline, and the page then says nothing waits', async () => {
    const { client } = await connect();
    const started = Date.now();
    const call = errorOf(refund(client, 'c-1', 400));
    const person = new Person(await gh.nextQuestion());
    const error = await call;
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
    expect(error.data).toMatchObject({ reason: 'approval_required', approval: 'timeout' });
    expect(error.message).toContain(`nobody answered within ${TIMEOUT_MS / 1000} s`);
    // Approving an expired request.
    expect(await person.open()).toBe(404);
    expect(refundsOf('c-1').filter((c) => c.args.amount === 400)).toEqual([]);
  });

  it('withdraws the request when the client cancels the call; the page then has nothing to answer', async () => {
    const { client } = await connect();
    const cancel = new AbortController();
    const call = errorOf(refund(client, 'c-1', 500, { signal: cancel.signal }));
    const person = new Person(await gh.nextQuestion());
    cancel.abort();
    await call;
    await gh.until((s) => s.approvals!.pending.length === 0, 'the request to be withdrawn');
    expect(await person.open()).toBe(404);
    const decided = auditEvents(gh.paths, 'approval.decided').filter((e) => (e.detail as { refusal?: string }).refusal === 'withdrawn');
    expect(decided).toHaveLength(1);
    expect(decided[0]).toMatchObject({ approval: { decision: 'withdrawn' }, client: 'ide', name: 'refund' });
    expect(refundsOf('c-1').filter((c) => c.args.amount === 500)).toEqual([]);
  });

  it.each(['legacy', 'modern'] as const)(
    'withdraws the request when its HTTP client (%s era) disconnects while it waits; the page then has nothing to answer',
    async (era) => {
      const endpoint = `${gh.daemon.httpUrl!}/mcp`;
      const auth = { authorization: `Bearer ${gh.tokens.ide!}` };
      const session: Record<string, string> = {};
      if (era === 'legacy') {
        const opened = await rawRequest(endpoint, { headers: { ...mcpHeaders(era), ...auth }, body: openingRequest(era) });
        session['mcp-session-id'] = String(opened.headers['mcp-session-id']);
        const initialized = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });
        await rawRequest(endpoint, { headers: { ...mcpHeaders(era), ...auth, ...session, 'mcp-protocol-version': '2025-11-25' }, body: initialized });
        session['mcp-protocol-version'] = '2025-11-25';
      }
      const url = new URL(endpoint);
      const headers = { ...mcpHeaders(era, 'tools/call'), 'mcp-name': 'crm__refund', ...auth, ...session };
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent: false });
      let answered = '';
      req.on('response', (res) => res.on('data', (chunk: Buffer) => (answered += chunk.toString())));
      req.on('error', () => undefined);
      req.end(rpcRequest(era, 'tools/call', { name: 'crm__refund', arguments: { contact_id: 'c-2', amount: 550, currency: 'EUR' } }));
      const withdrawn = () => auditEvents(gh.paths, 'approval.decided').filter((e) => (e.detail as { refusal?: string }).refusal === 'withdrawn').length;
      const before = withdrawn();
      const person = new Person(await gh.nextQuestion(10_000).catch((error: Error) => Promise.reject(new Error(`${error.message}\nHTTP: ${answered}`))));
      // The client goes away (its process died, its laptop lid closed) without cancelling.
      req.destroy();
      await gh.until((s) => s.approvals!.pending.length === 0, 'the request to be withdrawn', 5_000);
      expect(await person.open()).toBe(404);
      expect(withdrawn()).toBe(before + 1);
      expect(refundsOf('c-2').filter((c) => c.args.amount === 550)).toEqual([]);
    },
  );

  it('loses nothing when the tab closes: the code opens the question again, and only the newest form counts', async () => {
    const { client } = await connect();
    const call = refund(client, 'c-1', 600);
    const shown = await gh.nextQuestion();
    const person = new Person(shown);
    expect(await person.open()).toBe(200);
    // The tab is closed; the person opens the address again and types the code again.
    const reopened = new Person(shown);
    expect(await reopened.open()).toBe(200);
    expect((await person.approve('once')).status).toBe(403);
    expect(gh.status().approvals!.pending).toHaveLength(1);
    expect((await reopened.approve('once')).status).toBe(200);
    expect(textOf(await call)).toBe('refunded 600.00 EUR to Ada Lovelace');
  });

  it('refuses approving twice and approving another request: each request runs at most once, and only the one approved', async () => {
    const { client } = await connect();
    const call = refund(client, 'c-3', 700);
    const person = new Person(await gh.nextQuestion());
    await person.open();
    const [once] = person.choices();
    // A choice naming another request's digest is not one the page offered.
    const forged = await person.post({ decision: 'approve', choice: once!.replace(/[0-9a-f]{8}$/, '00000000') });
    expect(forged.status).toBe(400);
    expect(gh.status().approvals!.pending).toHaveLength(1);
    expect((await person.approve('once')).status).toBe(200);
    // The same answer again: nothing waits for it any more.
    expect((await person.post({ decision: 'approve', choice: once! })).status).toBe(404);
    expect(textOf(await call)).toBe('refunded 700.00 EUR to Alan Turing');
    expect(refundsOf('c-3').filter((c) => c.args.amount === 700)).toHaveLength(1);
  });

  it('keeps several waiting requests apart, oldest first, and answers each on its own page', async () => {
    const { client } = await connect();
    const a = errorOf(refund(client, 'c-1', 801));
    const first = await gh.nextQuestion();
    const b = refund(client, 'c-2', 802);
    const second = await gh.nextQuestion();
    expect(gh.status().approvals!.pending.map((p) => p.client)).toEqual(['ide', 'ide']);
    const personB = new Person(second);
    await personB.open();
    expect(personB.facts()['Arguments']).toContain('"amount": 802');
    await personB.approve('once');
    expect(textOf(await b)).toBe('refunded 802.00 EUR to Grace Hopper');
    const personA = new Person(first);
    await personA.open();
    await personA.decline();
    expect((await a).data).toMatchObject({ approval: 'declined' });
  });

  it('audits every request and every answer, and each call outcome says how it was approved', () => {
    const requested = auditEvents(gh.paths, 'approval.requested');
    const decided = auditEvents(gh.paths, 'approval.decided');
    expect(requested.length).toBeGreaterThanOrEqual(9);
    expect(decided).toHaveLength(requested.length);
    expect(requested[0]).toMatchObject({
      user: 'sam@example.com',
      client: 'ide',
      server: 'crm',
      name: 'refund',
      argsValues: { amount: 250, currency: 'EUR' },
      approval: { required: true },
    });
    expect(requested[0]!.argsDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const kinds = decided.map((e) => `${e.decision}/${e.approval?.decision}/${e.approval?.scope ?? '-'}`);
    expect(kinds).toEqual(
      expect.arrayContaining(['allowed/approved/once', 'allowed/approved/session', 'denied/denied/-', 'denied/timeout/-', 'denied/withdrawn/-']),
    );
    const outcomes = auditEvents(gh.paths, 'call.outcome').filter((e) => e.approval);
    expect(outcomes.some((e) => e.decision === 'ok' && e.approval?.scope === 'session')).toBe(true);
  });

  it('limits the rate of calls to one tool, telling the client when to retry in the error data', async () => {
    const { client } = await connect();
    const search = () => client.callTool({ name: 'crm__search_contacts', arguments: { query: 'a' } });
    // The sample allows bursts of 20 per user, client and tool.
    for (let i = 0; i < 20; i++) await search();
    const error = await errorOf(search());
    expect(error.data).toMatchObject({ reason: 'rate_limited', stage: 'quota', limit: 'calls-per-tool' });
    expect(error.data!.retryAfterMs).toBeGreaterThan(0);
    expect(error.data!.retryAfterMs).toBeLessThanOrEqual(1000);
    expect(Date.parse(error.data!.retryAt as string)).toBeGreaterThan(Date.now() - 1000);
    expect(error.message).toMatch(
      /^.*rate limit "calls-per-tool" reached: 60 calls per minute \(bursts of 20\) per user, client and tool; retry after 0\.\d s$/,
    );
    expect(gh.status().quotas!.rateLimits[0]!.limited).toEqual([
      expect.objectContaining({ scope: 'user sam@example.com, client ide, tool crm__search_contacts' }),
    ]);
  });

  it('shows what is left of each quota in status', () => {
    const quotas = gh.status().quotas!;
    expect(quotas.version).toBe('1');
    const day = quotas.quotas.find((q) => q.id === 'writes-per-day')!;
    const refunds = executed(callLog).filter((c) => c.tool === 'refund').length;
    expect(day.usage).toEqual([
      expect.objectContaining({ scope: 'user sam@example.com', used: refunds, remaining: 50 - refunds, beforeApproval: 40 - refunds }),
    ]);
    expect(quotas.quotas.find((q) => q.id === 'large-refunds-per-day')!.usage[0]!.used).toBe(refunds - 1);
  });
});
