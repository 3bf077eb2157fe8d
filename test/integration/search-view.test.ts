/**
 * The search view end to end (issue 19): a real daemon with server-everything, server-filesystem,
 * server-memory, the CRM fixture and the lab fixture (which changes its own tool list), clients over
 * `gatehouse connect --view search` and over `/mcp?view=search`. The client "ide" has
 * `crm__delete_contact` switched off in the config, so it must never find it; the client "agent" has
 * the search view as its setting, with a pinned tool.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/common/config.js';
import type { ToolCostReport } from '../../src/common/console-api.js';
import { callControl } from '../../src/node/control/control-client.js';
import { EVERYTHING, FILESYSTEM, MEMORY } from '../support/servers.js';
import { realServerTools } from '../support/search-data.js';
import { auditEvents, errorOf } from './support/approvals.js';
import { bridgeEnv, closeAll, connectBridge, connectHttp, ERAS, runGatehouse, textOf, type Connected } from './support/clients.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const CRM = fileURLToPath(new URL('../fixtures/crm-server.mjs', import.meta.url));
const LAB = fileURLToPath(new URL('../fixtures/lab-server.mjs', import.meta.url));

let scratch: string;
let gh: RunningGatehouse;
let servers: NonNullable<ConfigInput['servers']>;
const config = (restrictAll: string[] = []): Omit<ConfigInput, 'servers'> => ({
  restrict: { disable: restrictAll, clients: { ide: { disable: ['crm__delete_contact'] } } },
  clients: { agent: { view: 'search', pinned: ['memory__read_graph', 'crm__nothing_here'] } },
});

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gh-search-'));
  servers = {
    everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] },
    files: { type: 'stdio', command: process.execPath, args: [FILESYSTEM(), scratch], sandbox: { write: [scratch] } },
    memory: {
      type: 'stdio',
      command: process.execPath,
      args: [MEMORY()],
      env: { MEMORY_FILE_PATH: join(scratch, 'memory.jsonl') },
      sandbox: { write: [scratch] },
    },
    crm: { type: 'stdio', command: process.execPath, args: [CRM] },
    lab: { type: 'stdio', command: process.execPath, args: [LAB] },
  };
  gh = await startGatehouse({ servers, config: config(), clients: ['ide', 'agent'] });
  const states = (await gh.status()).servers.map((s) => s.state);
  expect(states).toEqual(['ready', 'ready', 'ready', 'ready', 'ready']);
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
  rmSync(scratch, { recursive: true, force: true });
});
afterEach(closeAll);

const bridge = (client: 'ide' | 'agent', view?: string) =>
  connectBridge(gh.env, { era: 'legacy', client, token: gh.tokens[client]!, ...(view ? { view } : {}) });
const names = async (c: Connected) => (await c.client.listTools()).tools.map((t) => t.name);

interface Found {
  name: string;
  description?: string;
  inputSchema: unknown;
}
async function find(c: Connected, args: Record<string, unknown>): Promise<Found[]> {
  const result = await c.client.callTool({ name: 'find_tools', arguments: args });
  expect(result.isError ?? false).toBe(false);
  const tools = (result.structuredContent as { tools: Found[] }).tools;
  // The text block carries the same definitions, for clients that read only text.
  expect(JSON.parse(textOf(result))).toEqual({ tools });
  return tools;
}

describe('the search view over the bridge', () => {
  it('lists only find_tools and call_tool with `gatehouse connect --view search`', async () => {
    const c = await bridge('ide', 'search');
    expect(await names(c)).toEqual(['find_tools', 'call_tool']);
    const aggregate = await bridge('ide');
    expect((await names(aggregate)).length).toBeGreaterThan(40);
  });

  it('finds tools for a plain-language request and returns their full definitions as the aggregate lists them', async () => {
    const c = await bridge('ide', 'search');
    const found = await find(c, { query: 'dump the whole knowledge graph' });
    expect(found[0]!.name).toBe('memory__read_graph');
    const direct = (await (await bridge('ide')).client.listTools()).tools.find((t) => t.name === 'memory__read_graph');
    expect(found[0]).toEqual(JSON.parse(JSON.stringify(direct)));
    expect(found.length).toBeLessThanOrEqual(5);
    expect((await find(c, { query: 'read a file', server: 'files', limit: 3 })).map((t) => t.name.split('__')[0])).toEqual(['files', 'files', 'files']);
  });

  it('never returns a hidden tool, not even for its exact name', async () => {
    const ide = await bridge('ide', 'search');
    for (const query of ['crm__delete_contact', 'delete a contact from the CRM for good', 'delete_contact']) {
      expect((await find(ide, { query, limit: 50 })).map((t) => t.name)).not.toContain('crm__delete_contact');
    }
    // The same request from a client that may see it finds it first.
    const agent = await bridge('agent');
    expect((await find(agent, { query: 'crm__delete_contact' }))[0]!.name).toBe('crm__delete_contact');
  });

  it('gives call_tool of a hidden or unknown tool the same error as a direct call', async () => {
    const search = await bridge('ide', 'search');
    const direct = await bridge('ide');
    for (const name of ['crm__delete_contact', 'crm__no_such_tool', 'nothing']) {
      const viaSearch = await errorOf(search.client.callTool({ name: 'call_tool', arguments: { name, arguments: { id: 'c-1' } } }));
      const viaDirect = await errorOf(direct.client.callTool({ name, arguments: { id: 'c-1' } }));
      expect(viaSearch.message).toBe(`Unknown tool: ${name}`);
      expect({ code: viaSearch.code, message: viaSearch.message, data: viaSearch.data }).toEqual({
        code: viaDirect.code,
        message: viaDirect.message,
        data: viaDirect.data,
      });
    }
  });

  it('runs a tool through call_tool and audits it under the real tool name, as a direct call is', async () => {
    const search = await bridge('ide', 'search');
    const result = await search.client.callTool({ name: 'call_tool', arguments: { name: 'everything__echo', arguments: { message: 'via search' } } });
    expect(textOf(result)).toBe('Echo: via search');
    await (await bridge('ide')).client.callTool({ name: 'everything__echo', arguments: { message: 'direct' } });
    for (const type of ['call.attempt', 'call.outcome']) {
      const records = auditEvents(gh.paths, type).filter((e) => e.server === 'everything' && e.name === 'echo');
      expect(records).toHaveLength(2);
      const shape = (e: (typeof records)[number]) => ({
        server: e.server,
        kind: e.kind,
        name: e.name,
        client: e.client,
        decision: e.decision,
        argsShape: e.argsShape,
      });
      expect(shape(records[0]!)).toEqual(shape(records[1]!));
      expect(shape(records[0]!)).toMatchObject({ server: 'everything', kind: 'tool', name: 'echo', client: 'ide' });
    }
    expect(auditEvents(gh.paths, 'call.outcome').filter((e) => e.name === 'call_tool' || e.name === 'find_tools')).toEqual([]);
  });

  it('answers malformed find_tools and call_tool arguments with a tool error the model can read', async () => {
    const c = await bridge('ide', 'search');
    const bad = [
      ['find_tools', {}, 'find_tools needs a query'],
      ['find_tools', { query: 'x'.repeat(1001) }, 'over 1000 characters'],
      ['find_tools', { query: 'files', limit: 500 }, 'limit must be a whole number from 1 to 50'],
      ['find_tools', { query: 'files', server: '../etc' }, 'server must be a server name'],
      ['find_tools', { query: 'files', extra: 1 }, '"extra" is not one of them'],
      ['call_tool', { arguments: {} }, 'call_tool needs the name'],
      ['call_tool', { name: 'everything__echo', arguments: [1] }, 'arguments must be an object'],
    ] as const;
    for (const [name, args, problem] of bad) {
      const result = await c.client.callTool({ name, arguments: args as Record<string, unknown> });
      expect(result.isError, `${name} ${JSON.stringify(args).slice(0, 60)}`).toBe(true);
      expect(textOf(result)).toContain(problem);
    }
    // The session goes on.
    expect((await find(c, { query: 'echo' }))[0]!.name).toBe('everything__echo');
  });

  it("takes the view from the client's setting, lists its pinned tools that exist, and lets --view aggregate override it", async () => {
    expect(await names(await bridge('agent'))).toEqual(['find_tools', 'call_tool', 'memory__read_graph']);
    const pinned = await bridge('agent');
    expect(JSON.parse(textOf(await pinned.client.callTool({ name: 'memory__read_graph', arguments: {} })))).toEqual({ entities: [], relations: [] });
    expect((await names(await bridge('agent', 'aggregate'))).length).toBeGreaterThan(40);
    const status = await gh.status();
    expect(
      status.clients
        .filter((s) => s.name === 'agent')
        .map((s) => s.view ?? 'aggregate')
        .sort(),
    ).toEqual(['aggregate', 'search', 'search']);
  });

  it('refuses --view search together with --server, and a view it does not know', async () => {
    const both = await runGatehouse(
      ['connect', '--client', 'ide', '--server', 'memory', '--view', 'search'],
      bridgeEnv(gh.env, { GATEHOUSE_CLIENT_TOKEN: gh.tokens.ide! }),
    );
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('--server and --view search are two different views; choose one');
    const unknown = await runGatehouse(['connect', '--client', 'ide', '--view', 'everything'], bridgeEnv(gh.env, { GATEHOUSE_CLIENT_TOKEN: gh.tokens.ide! }));
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('--view: "search" or "aggregate"');
  });
});

describe.each(ERAS)('the search view over HTTP, %s era', (era) => {
  it('serves find_tools and call_tool at /mcp?view=search', async () => {
    const c = await connectHttp(gh.httpUrl, { era, token: gh.tokens.ide!, path: '/mcp?view=search' });
    expect(await names(c)).toEqual(['find_tools', 'call_tool']);
    expect((await find(c, { query: 'add two numbers' }))[0]!.name).toBe('everything__get-sum');
    expect(textOf(await c.client.callTool({ name: 'call_tool', arguments: { name: 'everything__get-sum', arguments: { a: 2, b: 3 } } }))).toContain('5');
  });

  it('refuses a search view of one server and a view it does not know', async () => {
    for (const path of ['/mcp/memory?view=search', '/mcp?view=bogus']) {
      const response = await fetch(`${gh.httpUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gh.tokens.ide}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(response.status, path).toBe(400);
    }
  });
});

describe('keeping the index current', () => {
  it('finds a tool a server adds at run time, and stops finding it once the server removes it', async () => {
    const c = await bridge('agent');
    expect((await find(c, { query: 'lab__zebra_counter' })).map((t) => t.name)).not.toContain('lab__zebra_counter');
    await c.client.callTool({ name: 'call_tool', arguments: { name: 'lab__add_tool', arguments: { name: 'zebra_counter' } } });
    await eventually(async () => (await find(c, { query: 'zebra counter' }))[0]?.name === 'lab__zebra_counter', 10_000, 'the added tool to be found');
    await c.client.callTool({ name: 'call_tool', arguments: { name: 'lab__remove_tool', arguments: { name: 'zebra_counter' } } });
    await eventually(
      async () => !(await find(c, { query: 'zebra counter', limit: 50 })).some((t) => t.name === 'lab__zebra_counter'),
      10_000,
      'the removed tool to be gone',
    );
  });

  it('stops finding a tool once the user switches it off, in sessions already open', async () => {
    const c = await bridge('agent');
    expect((await find(c, { query: 'refund a customer' }))[0]!.name).toBe('crm__refund');
    gh.writeConfig(servers, config(['crm__refund']));
    expect((await callControl(gh.paths.controlSocketPath, 'config.reload', {})) as { ok: boolean }).toMatchObject({ ok: true });
    await eventually(
      async () => !(await find(c, { query: 'refund a customer', limit: 50 })).some((t) => t.name === 'crm__refund'),
      10_000,
      'crm__refund to be hidden',
    );
    gh.writeConfig(servers, config());
    await callControl(gh.paths.controlSocketPath, 'config.reload', {});
  });
});

describe('numbers people can see', () => {
  it("prints what each client's tool list costs in tokens in each view", async () => {
    const run = await runGatehouse(['tools', 'cost'], bridgeEnv(gh.env));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^CLIENT\s+VIEW\s+AGGREGATE\s+SEARCH VIEW\s+SAVED/);
    expect(run.stdout).toMatch(/\nagent\s+search\s+\d+ tools, [\d,]+ tokens\s+3 tools, [\d,]+ tokens\s+9\d(\.\d)? %/);
    expect(run.stdout).toContain('counted with o200k_base');
    const json = JSON.parse((await runGatehouse(['tools', 'cost', '--json'], bridgeEnv(gh.env))).stdout) as ToolCostReport;
    const ide = json.clients.find((c) => c.name === 'ide')!;
    const everyone = json.clients.find((c) => c.name === undefined)!;
    // The ide cannot see crm__delete_contact, so its aggregate list is one tool shorter.
    expect(ide.aggregate.tools).toBe(everyone.aggregate.tools - 1);
    expect(ide.search).toMatchObject({ tools: 2 });
    expect(ide.search.tokens).toBeLessThan(ide.aggregate.tokens / 10);
  });
});

describe('the labelled query set', () => {
  it('is labelled against the tools the real servers list today (run scripts/snapshot-search-tools.mjs after upgrading them)', async () => {
    const snapshot = realServerTools();
    const live = (await (await bridge('agent', 'aggregate')).client.listTools()).tools;
    for (const [server, tools] of Object.entries(snapshot)) {
      const listed = live.filter((t) => t.name.startsWith(`${server}__`)).map((t) => ({ name: t.name.slice(server.length + 2), description: t.description }));
      expect(listed, server).toEqual(tools.map((t) => ({ name: t.name, description: t.description })));
    }
  });
});
