/**
 * The sample policy (resources/policy/) enforced end to end: a real daemon under a signed bundle,
 * the CRM fixture started from the bundle's catalog, and an SDK client over the real socket (the
 * `gatehouse connect` bridge) for an analyst, a support agent and an admin. The fixture writes
 * every call it executes to a log, so a refused call is shown never to have reached it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';
import { closeAll, connectBridge, connectHttp, textOf, type Connected } from './support/clients.js';
import { startManaged, type ManagedGatehouse } from './support/policy.js';

let root: TestKey;
let bundle: Buffer;
let scratch: string;
let callLog: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gh-crm-'));
  callLog = join(scratch, 'calls.jsonl');
  root = await makeKey();
  bundle = await signFiles(sampleFiles({ crmArgs: ['--log', callLog] }), { version: 1, keys: [root] });
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
afterEach(closeAll);

function executed(): { tool: string; args: Record<string, unknown> }[] {
  try {
    return readFileSync(callLog, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as never);
  } catch {
    return [];
  }
}

async function errorOf(promise: Promise<unknown>): Promise<{ message: string; data?: { reason?: string } }> {
  try {
    const result = await promise;
    return { message: `no error: ${textOf(result)}` };
  } catch (error) {
    return error as never;
  }
}

function asRole(user: string, groups: string[]) {
  let gh: ManagedGatehouse;
  const connect = (server?: string): Promise<Connected> =>
    connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide!, ...(server ? { server } : {}) });
  beforeAll(async () => {
    gh = await startManaged({ roots: [root], bundle, identity: { user, groups }, settings: { required: true } });
    await gh.until((s) => s.servers.some((v) => v.name === 'crm' && v.state === 'ready'), 'the CRM server from the catalog to be ready', 20_000);
  });
  afterAll(async () => gh?.stop());
  return { connect, gh: () => gh };
}

const CRM_TOOLS = ['crm__delete_contact', 'crm__get_contact', 'crm__refund', 'crm__search_contacts'];

describe('an analyst', () => {
  const { connect, gh } = asRole('ann@example.com', ['crm-analysts']);

  it('sees only the read-only CRM tools, and the CRM server runs from the signed catalog', async () => {
    const { client } = await connect();
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['crm__get_contact', 'crm__search_contacts']);
    expect(gh().status().policy).toMatchObject({ mode: 'managed', version: '1', state: 'enforcing', required: true });
    expect(
      gh()
        .status()
        .servers.map((s) => s.name),
    ).toEqual(['crm']);
  });

  it('calls a read-only tool', async () => {
    const { client } = await connect();
    expect(textOf(await client.callTool({ name: 'crm__search_contacts', arguments: { query: 'ada' } }))).toContain('Ada Lovelace');
  });

  it('gets "unknown tool" for a hidden tool, exactly as for a tool that does not exist, and the server never sees the call', async () => {
    const { client } = await connect();
    const hidden = await errorOf(client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 5, currency: 'EUR' } }));
    const missing = await errorOf(client.callTool({ name: 'crm__no_such_tool', arguments: {} }));
    expect(hidden.message).toMatch(/Unknown tool: crm__refund/);
    expect(missing.message).toMatch(/Unknown tool: crm__no_such_tool/);
    expect(hidden.message.replace('crm__refund', 'X')).toBe(missing.message.replace('crm__no_such_tool', 'X'));
    expect(executed().filter((c) => c.tool === 'refund')).toEqual([]);
  });

  it('sees the resources and prompts the policy permits', async () => {
    const { client } = await connect();
    expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['crm://pipeline']);
    expect((await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)).toEqual(['crm://contacts/{id}']);
    expect((await client.listPrompts()).prompts.map((p) => p.name)).toEqual(['crm__follow_up']);
    expect(JSON.stringify(await client.readResource({ uri: 'crm://contacts/c-2' }))).toContain('Grace Hopper');
  });

  it('gets the same filtering in the single-server view', async () => {
    const { client } = await connect('crm');
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['get_contact', 'search_contacts']);
  });
});

describe('a support agent', () => {
  const { connect, gh } = asRole('sam@example.com', ['crm-support']);

  it('sees refund but not delete_contact, and no CRM resources', async () => {
    const { client } = await connect();
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['crm__get_contact', 'crm__refund', 'crm__search_contacts']);
    expect((await client.listResources()).resources).toEqual([]);
  });

  it('refunds up to 100 EUR (amount in cents for the policy)', async () => {
    const { client } = await connect();
    expect(textOf(await client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 99.5, currency: 'EUR' } }))).toBe(
      'refunded 99.50 EUR to Ada Lovelace',
    );
    expect(textOf(await client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-2', amount: 100, currency: 'EUR' } }))).toBe(
      'refunded 100.00 EUR to Grace Hopper',
    );
  });

  it('is refused with approval_required above 100 EUR when no person can be asked, and the refund never runs (approvals: approval-refund.test.ts)', async () => {
    const { client } = await connect();
    const error = await errorOf(client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-3', amount: 100.01, currency: 'EUR' } }));
    expect(error.message).toMatch(/needs approval \(user\) under policy support-refund-large/);
    expect(error.data).toMatchObject({ reason: 'approval_required', stage: 'approval', approval: 'unavailable' });
    expect(executed().filter((c) => c.tool === 'refund' && c.args.contact_id === 'c-3')).toEqual([]);
  });

  it('is refused with policy_denied for a refund in another currency', async () => {
    const { client } = await connect();
    const error = await errorOf(client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 1, currency: 'USD' } }));
    expect(error.data).toMatchObject({ reason: 'policy_denied' });
  });

  it('cannot delete a contact: the forbid hides the tool', async () => {
    const { client } = await connect();
    expect((await errorOf(client.callTool({ name: 'crm__delete_contact', arguments: { id: 'c-1' } }))).message).toMatch(/Unknown tool: crm__delete_contact/);
    expect(executed().filter((c) => c.tool === 'delete_contact')).toEqual([]);
  });

  it('gets the same answers over HTTP', async () => {
    const { client } = await connectHttp(gh().daemon.httpUrl!, { era: 'legacy', token: gh().tokens.ide! });
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['crm__get_contact', 'crm__refund', 'crm__search_contacts']);
  });
});

describe('an admin', () => {
  const { connect } = asRole('ada@example.com', ['it-admins']);

  it('sees and calls every CRM tool, delete_contact included', async () => {
    const { client } = await connect();
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(CRM_TOOLS);
    expect(textOf(await client.callTool({ name: 'crm__delete_contact', arguments: { id: 'c-3' } }))).toBe('deleted c-3');
    expect(textOf(await client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 500, currency: 'EUR' } }))).toBe(
      'refunded 500.00 EUR to Ada Lovelace',
    );
  });
});
