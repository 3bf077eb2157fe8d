/**
 * A hidden server or item cannot be told from an unknown one, and its refusal is on record as what
 * it is (issue 12, finding 4). Under the sample bundle, a support user (sam) sees the CRM's read
 * tools and refund but not delete_contact (forbid only-admins-delete); the client "briefing" has the
 * whole CRM switched off in the user's own config. The answers are compared with those for names
 * that do not exist; the audit records are read from the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, sampleFiles, signFiles } from '../support/policy.js';
import { auditEvents, errorOf } from './support/approvals.js';
import { bridgeEnv, closeAll, connectBridge, runGatehouse } from './support/clients.js';
import { startManaged, type ManagedGatehouse } from './support/policy.js';
import { rawRequest, mcpHeaders, openingRequest } from './support/raw-http.js';

let gh: ManagedGatehouse;
beforeAll(async () => {
  const root = await makeKey();
  gh = await startManaged({
    roots: [root],
    settings: { required: true },
    bundle: await signFiles(sampleFiles(), { version: 4, keys: [root] }),
    identity: { user: 'sam@example.com', groups: ['crm-support'] },
    config: { restrict: { disable: [], clients: { briefing: { disable: ['crm'] } } } },
    clients: ['ide', 'briefing'],
  });
  await gh.until((s) => s.servers.some((v) => v.name === 'crm' && v.state === 'ready'), 'the CRM server', 20_000);
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
});

const outcomes = () => auditEvents(gh.paths, 'call.outcome');

describe('a hidden item', () => {
  it('is answered exactly as an unknown one, and audited with the server, the policy version and the policy that hid it', async () => {
    const { client } = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
    const hidden = await errorOf(client.callTool({ name: 'crm__delete_contact', arguments: { id: 'c-1' } }));
    const unknown = await errorOf(client.callTool({ name: 'crm__delete_everything', arguments: { id: 'c-1' } }));
    expect({ code: hidden.code, message: hidden.message.replace('delete_contact', 'X'), data: hidden.data }).toEqual({
      code: unknown.code,
      message: unknown.message.replace('delete_everything', 'X'),
      data: unknown.data,
    });
    const [forHidden, forUnknown] = outcomes().slice(-2);
    expect(forHidden).toMatchObject({
      server: 'crm',
      name: 'delete_contact',
      decision: 'denied',
      code: 'unknown_tool',
      policyMode: 'managed',
      policyVersion: '4',
      policyIds: ['only-admins-delete'],
      reason: expect.stringContaining('forbidden by only-admins-delete'),
    });
    expect(forUnknown).toMatchObject({ server: '', name: 'crm__delete_everything', code: 'unknown_tool' });
  });
});

describe('a server the caller may not see', () => {
  it('refuses `connect --server` with the words it uses for a server that does not exist', async () => {
    const env = bridgeEnv(gh.env, { GATEHOUSE_CLIENT_TOKEN: gh.tokens.briefing! });
    const hidden = await runGatehouse(['connect', '--client', 'briefing', '--server', 'crm'], env);
    const unknown = await runGatehouse(['connect', '--client', 'briefing', '--server', 'crn'], env);
    expect(unknown).toMatchObject({ code: 1, stderr: 'gatehouse connect: Gatehouse refused the connection: no server named "crn" is configured\n' });
    expect(hidden).toMatchObject({ code: unknown.code, stdout: unknown.stdout, stderr: unknown.stderr.replace('crn', 'crm') });
    // The same client reaches the aggregate (which shows it nothing of the CRM), and another client the CRM alone.
    const ide = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide!, server: 'crm' });
    expect((await ide.client.listTools()).tools.map((t) => t.name).sort()).toEqual(['get_contact', 'refund', 'search_contacts']);
  });

  it('answers /mcp/<server> with the 404 an unknown server gets', async () => {
    const post = (server: string) =>
      rawRequest(`${gh.daemon.httpUrl!}/mcp/${server}`, {
        headers: { ...mcpHeaders('legacy'), authorization: `Bearer ${gh.tokens.briefing!}` },
        body: openingRequest('legacy'),
      });
    const unknown = await post('crn');
    expect(unknown.status).toBe(404);
    const hidden = await post('crm');
    expect({ status: hidden.status, body: hidden.body.replace('crm', 'crn') }).toEqual({ status: unknown.status, body: unknown.body });
  });
});
