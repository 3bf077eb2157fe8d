/**
 * Keyword ranking over one principal's tools: BM25+ (MiniSearch) over the tool's name, title,
 * description and parameter names, with the server's name and the tool's annotations as fields of
 * their own. An index holds exactly the tools it was built from; the search view builds one from
 * what a principal's `tools/list` would show, so a tool the principal may not see is not in it.
 */
import MiniSearch from 'minisearch';
import type { ToolItem } from '../ports.js';
import { splitName } from '../../common/names.js';
import { TermCache, words } from './text.js';

/** One document per tool: its text, split into the fields the ranking weighs differently. */
interface ToolDocument {
  id: number;
  name: string;
  title: string;
  description: string;
  params: string;
  server: string;
  annotations: string;
}

/**
 * Field weights, chosen on the labelled query set (test/fixtures/search/queries.json): a word of
 * the name or the server counts most, since people name the thing and the product ("a Jira issue"),
 * then the title, the parameters and the description.
 */
const BOOST = { name: 3, server: 4, title: 2, params: 1, description: 1, annotations: 0.5 } as const;

export interface SearchOptions {
  /** Only tools of this server. */
  server?: string;
  /** At most this many results. */
  limit: number;
}

export interface SearchHit {
  tool: ToolItem;
  score: number;
}

/** The most tools an index is built over; beyond that the rest are left out. */
export const MAX_INDEXED_TOOLS = 100_000;
/**
 * The most distinct words of a query that are looked up. Each word costs a pass over the index, so a
 * long or repetitive query ("create create create …") could otherwise hold the daemon for a while.
 */
export const MAX_QUERY_WORDS = 24;

export class ToolIndex {
  private readonly search: MiniSearch<ToolDocument>;
  private readonly tools: readonly ToolItem[];
  private readonly servers: readonly string[];
  private readonly byName = new Map<string, number>();

  /** `tools` are as the aggregate lists them, named `<server>__<tool>`. */
  constructor(tools: readonly ToolItem[]) {
    this.tools = tools.slice(0, MAX_INDEXED_TOOLS);
    this.servers = this.tools.map((t) => splitName(t.name)?.server ?? '');
    const terms = new TermCache();
    this.search = new MiniSearch<ToolDocument>({
      fields: ['name', 'title', 'description', 'params', 'server', 'annotations'],
      storeFields: [],
      tokenize: (text) => words(text),
      processTerm: (word) => terms.index(word),
      searchOptions: {
        processTerm: (word) => terms.query(word),
        boost: { ...BOOST },
        // Partial words ("kube" for "kubernetes") count, less than whole ones. Typo tolerance (fuzzy) added no recall on the query set and cost time.
        prefix: (t) => t.length >= 4,
        fuzzy: false,
        weights: { prefix: 0.4, fuzzy: 0.3 },
        // People name what they want first ("add a record to the table"): earlier words weigh a little more.
        boostTerm: (_t, i, all) => (all.length > 1 ? 1.5 - (0.5 * i) / (all.length - 1) : 1),
      },
    });
    this.search.addAll(this.tools.map((tool, id) => this.document(tool, id)));
    this.tools.forEach((tool, id) => this.byName.set(tool.name, id));
  }

  get size(): number {
    return this.tools.length;
  }

  /**
   * The best-matching tools for a request in plain words, best first. A query that is exactly a
   * tool's name (as listed, `<server>__<tool>`) puts that tool first.
   */
  find(query: string, options: SearchOptions): SearchHit[] {
    const wanted = options.server;
    const inServer = (id: number): boolean => wanted === undefined || this.servers[id] === wanted;
    const hits: SearchHit[] = [];
    const exact = this.byName.get(query.trim());
    if (exact !== undefined && inServer(exact)) hits.push({ tool: this.tools[exact]!, score: Number.POSITIVE_INFINITY });
    const text = [...new Set(words(query))].slice(0, MAX_QUERY_WORDS).join(' ');
    const ranked = this.search.search(text, wanted === undefined ? {} : { filter: (r) => inServer(r.id as number) });
    for (const r of ranked) {
      if (hits.length >= options.limit) break;
      if (r.id === exact) continue;
      hits.push({ tool: this.tools[r.id as number]!, score: r.score });
    }
    return hits.slice(0, options.limit);
  }

  private document(tool: ToolItem, id: number): ToolDocument {
    const split = splitName(tool.name);
    const annotations = (typeof tool.annotations === 'object' && tool.annotations !== null ? tool.annotations : {}) as Record<string, unknown>;
    const title = typeof tool.title === 'string' ? tool.title : typeof annotations.title === 'string' ? annotations.title : '';
    return {
      id,
      name: split?.item ?? tool.name,
      title,
      description: typeof tool.description === 'string' ? tool.description.slice(0, 4000) : '',
      params: parameterNames(tool.inputSchema).join(' '),
      server: split?.server ?? '',
      annotations: annotationWords(annotations),
    };
  }
}

/** The names of a tool's top-level parameters (`owner`, `repo`, `pull_number`). */
function parameterNames(schema: unknown): string[] {
  const properties = (schema as { properties?: unknown } | undefined)?.properties;
  if (typeof properties !== 'object' || properties === null) return [];
  return Object.keys(properties).slice(0, 200);
}

/** Annotations as words a request might use: "read only", "destructive", "idempotent", "open world". */
function annotationWords(annotations: Record<string, unknown>): string {
  const out: string[] = [];
  if (annotations.readOnlyHint === true) out.push('read only');
  if (annotations.destructiveHint === true) out.push('destructive');
  if (annotations.idempotentHint === true) out.push('idempotent');
  if (annotations.openWorldHint === true) out.push('open world');
  return out.join(' ');
}
