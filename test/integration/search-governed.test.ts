/**
 * A call made through the search view's call_tool is the same governed call as a direct one (issue
 * 19): under the sample bundle (signed, managed mode) with a session quota of two refunds, a large
 * refund through call_tool waits for the person's approval, and quotas count calls through
 * call_tool and direct calls alike and refuse them with the same error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, sampleFiles, signFiles } from '../support/policy.js';
import { auditEvents, errorOf, executed, Person, startApprovalGatehouse, untilCrmReady, type ApprovalGatehouse } from './support/approvals.js';
import { closeAll, connectBridge, textOf, type Connected } from './support/clients.js';

let scratch: string;
let callLog: string;
let gh: ApprovalGatehouse;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gh-search-governed-'));
  callLog = join(scratch, 'calls.jsonl');
  const root = await makeKey();
  const quotas = {
    rateLimits: {},
    quotas: {
      'large-refunds-per-day': { window: 'day', tools: [], limit: 10 },
      'refunds-per-session': { window: 'session', tools: ['crm__refund'], limit: 2 },
    },
  };
  const bundle = await signFiles(sampleFiles({ crmArgs: ['--log', callLog], files: { 'quotas.json': JSON.stringify(quotas) } }), { version: 1, keys: [root] });
  gh = await startApprovalGatehouse({ roots: [root], bundle, identity: { user: 'sam@example.com', groups: ['crm-support'] }, timeoutMs: 30_000 });
  await untilCrmReady(gh);
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
  rmSync(scratch, { recursive: true, force: true });
});
afterEach(closeAll);

const searchView = () => connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide!, view: 'search' });
const viaCallTool = (c: Connected, amount: number) =>
  c.client.callTool({ name: 'call_tool', arguments: { name: 'crm__refund', arguments: { contact_id: 'c-1', amount, currency: 'EUR' } } }, { timeout: 60_000 });
const direct = (c: Connected, amount: number) => c.client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount, currency: 'EUR' } }, { timeout: 60_000 });
const refunds = () => executed(callLog).filter((c) => c.tool === 'refund').map((c) => c.args.amount);

describe('call_tool under a managed policy', () => {
  it('finds only what the bundle lets the user see', async () => {
    const c = await searchView();
    const found = (await c.client.callTool({ name: 'find_tools', arguments: { query: 'crm', limit: 50 } })).structuredContent as { tools: { name: string }[] };
    const listed = (await (await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! })).client.listTools()).tools.map((t) => t.name);
    expect(found.tools.map((t) => t.name).sort()).toEqual(listed.filter((n) => n.startsWith('crm__')).sort());
  });

  it('asks the person before a large refund through call_tool, naming the real tool, and runs it only once they approve', async () => {
    const c = await searchView();
    const waiting = viaCallTool(c, 500);
    const person = new Person(await gh.nextQuestion());
    await person.open();
    expect(Object.values(person.facts())).toContain('refund on server crm (writes)');
    expect(refunds()).toEqual([]);
    await person.approve('once');
    expect(textOf(await waiting)).toBe('refunded 500.00 EUR to Ada Lovelace');
    const decided = auditEvents(gh.paths, 'approval.decided');
    expect(decided.at(-1)).toMatchObject({ server: 'crm', name: 'refund' });
  });

  it('refuses a declined call through call_tool with the same error a direct call gets', async () => {
    const c = await searchView();
    const viaSearch = errorOf(viaCallTool(c, 700));
    await (async () => {
      const person = new Person(await gh.nextQuestion());
      await person.open();
      await person.decline();
    })();
    const d = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
    const viaDirect = errorOf(direct(d, 700));
    const person = new Person(await gh.nextQuestion());
    await person.open();
    await person.decline();
    const [a, b] = [await viaSearch, await viaDirect];
    expect(a.data).toMatchObject({ reason: 'approval_required', stage: 'approval', approval: 'declined' });
    // The same answer but for the id of the request the person declined.
    const same = (e: typeof a) => ({ code: e.code, message: e.message, data: { ...e.data, request: typeof e.data?.request } });
    expect(same(a)).toEqual(same(b));
  });

  it('counts calls through call_tool and direct calls against one quota, and refuses the third alike', async () => {
    const c = await searchView();
    const before = refunds().length;
    expect(textOf(await viaCallTool(c, 1))).toBe('refunded 1.00 EUR to Ada Lovelace');
    expect(textOf(await direct(c, 2))).toBe('refunded 2.00 EUR to Ada Lovelace');
    const viaSearch = await errorOf(viaCallTool(c, 3));
    const viaDirect = await errorOf(direct(c, 3));
    expect(viaSearch.data).toMatchObject({ reason: 'quota_exceeded', quota: 'refunds-per-session' });
    expect({ code: viaSearch.code, message: viaSearch.message }).toEqual({ code: viaDirect.code, message: viaDirect.message });
    expect(refunds().slice(before)).toEqual([1, 2]);
  });
});
