/**
 * The search view: another view of the same gateway, for clients that should not load every tool
 * definition up front. It lists two tools, `find_tools` and `call_tool` (plus the client's pinned
 * favourites), and answers `find_tools` from a keyword index of exactly the tools the caller's
 * `tools/list` in the aggregate would show; `call_tool` is an ordinary governed call of the tool it
 * names (the downstream server hands it to `Gateway.callTool`, so it passes the same chain, is
 * audited under the real tool name, and an unknown or hidden name gets the same error).
 *
 * Indexes are built lazily per distinct set of visible tools (clients with the same rights share
 * one), dropped whenever the gateway announces a tool list change (a server's `list_changed`, a
 * server coming or going, a new policy, restriction or sign-in), and every hit is checked again
 * against the policy before it is returned, so a stale index can never show a hidden tool.
 */
import { createHash } from 'node:crypto';
import { SERVER_NAME_PATTERN } from '../../common/names.js';
import type { ToolItem } from '../ports.js';
import type { Principal } from '../principal.js';
import { ToolIndex } from './tool-index.js';

export const FIND_TOOLS = 'find_tools';
export const CALL_TOOL = 'call_tool';

/** The most results one `find_tools` may ask for, and how many it gets when it does not say. */
export const MAX_RESULTS = 50;
export const DEFAULT_RESULTS = 5;
/** The longest query `find_tools` accepts, in characters. */
export const MAX_QUERY_CHARS = 1000;
/** Distinct indexes kept at once (each is one set of visible tools); the least recently used goes first. */
export const MAX_INDEXES = 8;

/** What the search view needs of the gateway: the aggregate as a principal sees it, and its change announcements. */
export interface SearchSource {
  /** The aggregate's tools this principal may see, as `tools/list` would list them. */
  listTools(principal: Principal, scope: { server?: string }): ToolItem[];
  /** The tool of this aggregate name, if this principal may see it now. */
  visibleTool(principal: Principal, name: string): ToolItem | undefined;
  onChange(listener: (kind: 'tools' | 'prompts' | 'resources', scope: { server?: string }) => void): () => void;
}

/**
 * The two tools of the view, as `tools/list` shows them. Kept short on purpose: every word here is
 * paid in every conversation (under 200 tokens for both; `npm run bench` counts them). The limits
 * the schemas leave out (query length, the server pattern) are checked by `parseFindRequest`, which
 * tells the model what to fix.
 */
export const SEARCH_VIEW_TOOLS: readonly ToolItem[] = Object.freeze([
  {
    name: FIND_TOOLS,
    description: 'Find the tools for a task, described in plain words. Returns their full definitions; run one with call_tool.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'The task, e.g. "open a pull request on GitHub"' },
        server: { type: 'string', description: "Only this server's tools" },
        limit: { type: 'integer', minimum: 1, maximum: MAX_RESULTS, description: `Default ${DEFAULT_RESULTS}` },
      },
      required: ['query'],
    },
    annotations: { readOnlyHint: true },
  },
  {
    name: CALL_TOOL,
    description: 'Run a tool found with find_tools: its exact name, and arguments matching its input schema.',
    inputSchema: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        arguments: { type: 'object' },
      },
      required: ['name'],
    },
  },
]);

export interface FindRequest {
  query: string;
  server?: string;
  limit: number;
}

/** A `find_tools` request checked, or why it cannot be run (said to the model, which can correct it). */
export function parseFindRequest(args: Record<string, unknown> | undefined): { ok: true; request: FindRequest } | { ok: false; problem: string } {
  const a = args ?? {};
  for (const key of Object.keys(a)) {
    if (key !== 'query' && key !== 'server' && key !== 'limit')
      return { ok: false, problem: `find_tools takes query, server and limit; "${key.slice(0, 64)}" is not one of them` };
  }
  const { query, server, limit } = a;
  if (typeof query !== 'string' || query.trim() === '') return { ok: false, problem: 'find_tools needs a query: what you want to do, in plain words' };
  if (query.length > MAX_QUERY_CHARS) return { ok: false, problem: `the query is over ${MAX_QUERY_CHARS} characters; describe the task in fewer words` };
  if (server !== undefined && (typeof server !== 'string' || !SERVER_NAME_PATTERN.test(server))) {
    return { ok: false, problem: 'server must be a server name (the part before "__" in a tool name)' };
  }
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_RESULTS)) {
    return { ok: false, problem: `limit must be a whole number from 1 to ${MAX_RESULTS}` };
  }
  const request: FindRequest = { query, limit: limit ?? DEFAULT_RESULTS };
  if (server !== undefined) request.server = server;
  return { ok: true, request };
}

/** A `call_tool` request checked: the tool's name and its arguments. */
export function parseCallRequest(
  args: Record<string, unknown> | undefined,
): { ok: true; name: string; arguments?: Record<string, unknown> } | { ok: false; problem: string } {
  const a = args ?? {};
  for (const key of Object.keys(a)) {
    if (key !== 'name' && key !== 'arguments') return { ok: false, problem: `call_tool takes name and arguments; "${key.slice(0, 64)}" is not one of them` };
  }
  if (typeof a.name !== 'string' || a.name === '') return { ok: false, problem: 'call_tool needs the name of a tool that find_tools returned' };
  const inner = a.arguments;
  if (inner !== undefined && (typeof inner !== 'object' || inner === null || Array.isArray(inner)))
    return { ok: false, problem: 'arguments must be an object' };
  return { ok: true, name: a.name, ...(inner !== undefined ? { arguments: inner as Record<string, unknown> } : {}) };
}

export class ToolSearch {
  /** Visible-set key → its index, least recently used first. */
  private indexes = new Map<string, ToolIndex>();
  /** Which index each principal (one per session) uses, until the next change: spares a `tools/list` per query. */
  private byPrincipal = new WeakMap<Principal, string>();
  private readonly unsubscribe: () => void;
  private builds = 0;

  constructor(private readonly source: SearchSource) {
    this.unsubscribe = source.onChange((kind, scope) => {
      // Only the aggregate's tool lists feed the index; a single-server view's change is also one of the aggregate's.
      if (kind === 'tools' && scope.server === undefined) this.forget();
    });
  }

  /** How many indexes were built since the start (for tests and the benchmark). */
  get indexBuilds(): number {
    return this.builds;
  }

  /** What the search view lists: its two tools, then the pinned tools this principal may see, in the order given. */
  listTools(principal: Principal, pinned: readonly string[]): ToolItem[] {
    const tools = [...SEARCH_VIEW_TOOLS];
    const seen = new Set<string>();
    for (const name of pinned) {
      if (seen.has(name)) continue;
      seen.add(name);
      const tool = this.source.visibleTool(principal, name);
      if (tool) tools.push(tool);
    }
    return tools;
  }

  /** The best-matching tools this principal may see, with their full definitions, best first. */
  find(principal: Principal, request: FindRequest): ToolItem[] {
    const index = this.indexFor(principal);
    const found: ToolItem[] = [];
    // Ask for a few more than wanted, in case the policy changed since the index was built and a hit is now hidden.
    for (const hit of index.find(request.query, { limit: request.limit + 5, ...(request.server !== undefined ? { server: request.server } : {}) })) {
      if (found.length >= request.limit) break;
      const now = this.source.visibleTool(principal, hit.tool.name);
      if (now) found.push(now);
    }
    return found;
  }

  private indexFor(principal: Principal): ToolIndex {
    const known = this.byPrincipal.get(principal);
    let index = known !== undefined ? this.indexes.get(known) : undefined;
    let key = known;
    if (!index) {
      const tools = this.source.listTools(principal, {});
      key = visibleSetKey(tools);
      index = this.indexes.get(key);
      if (!index) {
        index = new ToolIndex(tools);
        this.builds++;
        while (this.indexes.size >= MAX_INDEXES) this.indexes.delete(this.indexes.keys().next().value!);
      }
      this.byPrincipal.set(principal, key);
    }
    // Most recently used goes last.
    this.indexes.delete(key!);
    this.indexes.set(key!, index);
    return index;
  }

  /** Drops every index: what principals see may have changed. */
  private forget(): void {
    this.indexes.clear();
    this.byPrincipal = new WeakMap();
  }

  dispose(): void {
    this.unsubscribe();
    this.forget();
  }
}

/**
 * A digest of the visible tools' names: principals who see the same tools share an index. (A changed
 * definition under the same name is announced by the gateway, which drops every index.)
 */
function visibleSetKey(tools: readonly ToolItem[]): string {
  const hash = createHash('sha256');
  for (const tool of tools) {
    hash.update(tool.name);
    hash.update('\u0000');
  }
  return hash.digest('base64url');
}
