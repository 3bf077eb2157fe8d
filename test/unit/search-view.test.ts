/**
 * The search view's core (src/core/search): per-principal indexes built from exactly what the
 * principal's `tools/list` shows, shared between principals who see the same tools, dropped on every
 * tool list change, and every hit checked against the policy again; the text rules; the requests'
 * validation. Issue 19.
 */
import { describe, expect, it } from 'vitest';
import { Gateway } from '../../src/core/gateway.js';
import { ADMIT, NoApprovals, NoQuotas, type PolicyDecision, type PolicyPort } from '../../src/core/governance.js';
import type { ToolItem, UpstreamLists } from '../../src/core/ports.js';
import type { Principal } from '../../src/core/principal.js';
import { saving, toolListCost, toolListText, type TokenCounter } from '../../src/core/search/cost.js';
import { queryTerms, words } from '../../src/core/search/text.js';
import { ToolIndex } from '../../src/core/search/tool-index.js';
import { MAX_INDEXES, parseCallRequest, parseFindRequest, SEARCH_VIEW_TOOLS, ToolSearch } from '../../src/core/search/view.js';
import { parseHello } from '../../src/node/downstream/hello.js';
import { FakeClock } from './fakes/fake-clock.js';

const who = (user: string, client = 'ide'): Principal => ({
  user: { id: `os:${user}`, source: 'os', displayName: user, groups: [], roles: [] },
  client: { id: `client:${client}`, name: client, verified: true, transport: 'socket' },
});

/** A policy that hides the listed `<server>__<tool>` names from one user, and counts its questions. */
class HidingPolicy implements PolicyPort {
  readonly mode = 'managed' as const;
  readonly version = '1';
  hidden = new Map<string, Set<string>>();
  questions = 0;
  visible(principal: Principal, server: string, _kind: string, name: string): boolean {
    this.questions++;
    return !this.hidden.get(principal.user.id)?.has(`${server}__${name}`);
  }
  decide(): PolicyDecision {
    return { allow: true, reason: 'test', policyIds: [] };
  }
}

const tool = (name: string, description: string, properties: Record<string, unknown> = {}): ToolItem => ({
  name,
  description,
  inputSchema: { type: 'object', properties },
});

function setup() {
  const lists = new Map<string, UpstreamLists>([
    [
      'crm',
      {
        tools: [
          tool('search_contacts', 'Finds contacts whose name or email contains the query', { query: {} }),
          tool('delete_contact', 'Deletes a contact for good', { id: {} }),
          tool('refund', 'Refunds an amount to a contact', { contact_id: {}, amount: {} }),
        ],
        prompts: [],
        resources: [],
        resourceTemplates: [],
      },
    ],
    ['memory', { tools: [tool('read_graph', 'Read the entire knowledge graph')], prompts: [], resources: [], resourceTemplates: [] }],
  ]);
  const policy = new HidingPolicy();
  const gateway = new Gateway({
    directory: { readyLists: () => lists, connection: () => undefined },
    audit: { append: () => undefined },
    clock: new FakeClock(),
    logger: { log: () => undefined },
    identity: { verify: () => ADMIT },
    policy,
    quota: new NoQuotas(),
    approval: new NoApprovals(),
  });
  return { gateway, policy, lists, search: new ToolSearch(gateway) };
}

const find = (search: ToolSearch, principal: Principal, query: string, limit = 50, server?: string) =>
  search.find(principal, { query, limit, ...(server ? { server } : {}) }).map((t) => t.name);

describe('finding tools', () => {
  it('finds a tool by a request in plain words, and by its exact name first', () => {
    const { search } = setup();
    expect(find(search, who('alice'), 'give a customer their money back: refund', 1)).toEqual(['crm__refund']);
    expect(find(search, who('alice'), 'crm__delete_contact', 1)).toEqual(['crm__delete_contact']);
  });

  it('returns the definition the aggregate lists, named as the aggregate names it', () => {
    const { search, gateway } = setup();
    const [found] = search.find(who('alice'), { query: 'knowledge graph', limit: 1 });
    expect(found).toEqual(gateway.listTools(who('alice'), {}).find((t) => t.name === 'memory__read_graph'));
  });

  it('never returns a hidden tool, not even for its exact name', () => {
    const { search, policy } = setup();
    policy.hidden.set('os:bob', new Set(['crm__delete_contact']));
    for (const query of ['crm__delete_contact', 'delete_contact', 'delete a contact for good', 'contact']) {
      expect(find(search, who('bob'), query)).not.toContain('crm__delete_contact');
    }
    expect(find(search, who('alice'), 'crm__delete_contact')).toContain('crm__delete_contact');
  });

  it('keeps to one server when asked', () => {
    const { search } = setup();
    expect(find(search, who('alice'), 'contact graph', 50, 'memory')).toEqual(['memory__read_graph']);
  });

  it('ranks with the words of names, descriptions and parameters, and folds what people say onto what tools are called', () => {
    const index = new ToolIndex([
      tool('files__move_file', 'Move or rename files'),
      tool('jira__create_issue', 'Creates an issue', { project_id: {} }),
      tool('jira__delete_issue', 'Deletes an issue'),
    ]);
    expect(index.find('file a ticket in jira', { limit: 1 })[0]!.tool.name).toBe('jira__create_issue');
    expect(index.find('rename report.txt', { limit: 1 })[0]!.tool.name).toBe('files__move_file');
    expect(index.find('which project does it go in', { limit: 1 })[0]!.tool.name).toBe('jira__create_issue');
    expect(words('list_directory_with_sizes getTinyImage Pub/Sub')).toEqual(['list', 'directory', 'with', 'sizes', 'get', 'tiny', 'image', 'pub', 'sub']);
    expect(queryTerms('post')).toEqual(['post', 'creat']);
    expect(queryTerms('the')).toEqual([]);
  });
});

describe('hostile queries', () => {
  it('looks up each distinct word of a query once, and at most 24 of them', () => {
    const index = new ToolIndex([tool('jira__create_issue', 'Creates an issue'), tool('jira__delete_issue', 'Deletes an issue'), tool('zoom__zebra', 'Zebra')]);
    const names = (query: string) => index.find(query, { limit: 3 }).map((h) => h.tool.name);
    expect(names('create '.repeat(140) + 'issue')).toEqual(names('create issue'));
    // The 25th distinct word is not looked up.
    const filler = Array.from({ length: 24 }, (_, i) => `filler${i}`).join(' ');
    expect(names(`${filler} zebra`)).toEqual([]);
    expect(names(`zebra ${filler}`)).toEqual(['zoom__zebra']);
  });
});

describe('keeping indexes current', () => {
  it('shares one index between principals who see the same tools, and builds another for one who sees less', () => {
    const { search, policy } = setup();
    policy.hidden.set('os:bob', new Set(['crm__refund']));
    find(search, who('alice', 'ide'), 'refund');
    find(search, who('alice', 'agent'), 'refund');
    expect(search.indexBuilds).toBe(1);
    find(search, who('bob'), 'refund');
    expect(search.indexBuilds).toBe(2);
  });

  it("rebuilds after a server's tool list changes, so a new tool is found and a removed one is not", () => {
    const { search, gateway, lists } = setup();
    const alice = who('alice');
    expect(find(search, alice, 'zebra counter')).toEqual([]);
    lists.set('lab', { tools: [tool('zebra_counter', 'Counts zebras')], prompts: [], resources: [], resourceTemplates: [] });
    gateway.refresh();
    expect(find(search, alice, 'zebra counter')).toEqual(['lab__zebra_counter']);
    lists.delete('lab');
    gateway.refresh();
    expect(find(search, alice, 'zebra counter')).toEqual([]);
  });

  it('rebuilds after a policy change is announced, and checks every hit against the policy in force even before', () => {
    const { search, gateway, policy } = setup();
    const alice = who('alice');
    expect(find(search, alice, 'refund')).toContain('crm__refund');
    // Hidden without an announcement yet: the stale index still has it, the check removes it.
    policy.hidden.set('os:alice', new Set(['crm__refund']));
    expect(find(search, alice, 'refund')).not.toContain('crm__refund');
    const builds = search.indexBuilds;
    gateway.refresh({ policyChanged: true });
    expect(find(search, alice, 'refund')).not.toContain('crm__refund');
    expect(search.indexBuilds).toBe(builds + 1);
  });

  it('keeps at most a few indexes, dropping the least recently used', () => {
    const { search, policy } = setup();
    const names = ['crm__search_contacts', 'crm__delete_contact', 'crm__refund', 'memory__read_graph'];
    // MAX_INDEXES + 1 users, each seeing a different set of tools.
    for (let i = 0; i <= MAX_INDEXES; i++) {
      policy.hidden.set(`os:u${i}`, new Set(names.filter((_, bit) => (i >> bit) & 1)));
      find(search, who(`u${i}`), 'contact');
    }
    expect(search.indexBuilds).toBe(MAX_INDEXES + 1);
    // u0's index was the least recently used, so it went; u8's is still there.
    find(search, who(`u${MAX_INDEXES}`, 'other'), 'contact');
    expect(search.indexBuilds).toBe(MAX_INDEXES + 1);
    find(search, who('u0', 'other'), 'contact');
    expect(search.indexBuilds).toBe(MAX_INDEXES + 2);
  });
});

describe("the view's list", () => {
  it('lists find_tools and call_tool, then the pinned tools the principal may see, once each', () => {
    const { search, policy } = setup();
    policy.hidden.set('os:bob', new Set(['crm__refund']));
    const pinned = ['memory__read_graph', 'crm__refund', 'memory__read_graph', 'nowhere__nothing'];
    expect(search.listTools(who('alice'), pinned).map((t) => t.name)).toEqual(['find_tools', 'call_tool', 'memory__read_graph', 'crm__refund']);
    expect(search.listTools(who('bob'), pinned).map((t) => t.name)).toEqual(['find_tools', 'call_tool', 'memory__read_graph']);
  });
});

describe('requests', () => {
  it('checks find_tools arguments and says what is wrong', () => {
    expect(parseFindRequest({ query: 'open a PR' })).toEqual({ ok: true, request: { query: 'open a PR', limit: 5 } });
    expect(parseFindRequest({ query: 'x', server: 'crm', limit: 50 })).toEqual({ ok: true, request: { query: 'x', server: 'crm', limit: 50 } });
    for (const bad of [
      undefined,
      {},
      { query: '  ' },
      { query: 1 },
      { query: 'x'.repeat(1001) },
      { query: 'x', limit: 0 },
      { query: 'x', limit: 1.5 },
      { query: 'x', server: 'Not A Server' },
      { query: 'x', other: true },
    ]) {
      expect(parseFindRequest(bad as Record<string, unknown> | undefined).ok, JSON.stringify(bad)?.slice(0, 40)).toBe(false);
    }
  });

  it('checks call_tool arguments and passes the rest on untouched', () => {
    expect(parseCallRequest({ name: 'crm__refund', arguments: { amount: 1 } })).toEqual({ ok: true, name: 'crm__refund', arguments: { amount: 1 } });
    expect(parseCallRequest({ name: 'crm__refund' })).toEqual({ ok: true, name: 'crm__refund' });
    for (const bad of [undefined, { name: '' }, { name: 3 }, { name: 'x', arguments: 'y' }, { name: 'x', arguments: null }, { name: 'x', extra: 1 }]) {
      expect(parseCallRequest(bad as Record<string, unknown> | undefined).ok, JSON.stringify(bad)).toBe(false);
    }
  });

  it('refuses a bridge hello that asks for a single server and the search view at once', () => {
    const hello = (extra: Record<string, unknown>) => parseHello(JSON.stringify({ gatehouse: 'hello', version: 1, client: 'ide', ...extra }));
    expect(hello({ view: 'search' })).toMatchObject({ ok: true, hello: { view: 'search' } });
    expect(hello({ server: 'memory', view: 'aggregate' }).ok).toBe(true);
    expect(hello({ server: 'memory', view: 'search' })).toEqual({
      ok: false,
      reason: 'bad hello: view: a single-server view cannot also be the search view; choose one',
    });
    expect(hello({ view: 'everything' })).toMatchObject({ ok: false });
  });

  it('describes find_tools and call_tool with input schemas a client can validate against', () => {
    expect(SEARCH_VIEW_TOOLS.map((t) => [t.name, (t.inputSchema as { required: string[] }).required])).toEqual([
      ['find_tools', ['query']],
      ['call_tool', ['name']],
    ]);
  });
});

describe('tool list costs', () => {
  it('counts the tokens of the tools/list result as a client receives it', async () => {
    const seen: string[] = [];
    const counter: TokenCounter = { encoding: 'test', count: async (text) => (seen.push(text), text.length) };
    const tools = [tool('a', 'b')];
    const cost = await toolListCost(tools, counter);
    expect(seen).toEqual([toolListText(tools)]);
    expect(JSON.parse(seen[0]!)).toEqual({ tools });
    expect(cost).toEqual({ tools: 1, bytes: seen[0]!.length, tokens: seen[0]!.length });
    expect(saving({ tools: 10, bytes: 0, tokens: 1000 }, { tools: 2, bytes: 0, tokens: 30 })).toBeCloseTo(0.97);
  });
});
