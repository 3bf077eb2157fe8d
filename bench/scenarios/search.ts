/**
 * Tool search (issue 19): recall of the ranking on the labelled query set, what the tool list costs
 * a model in tokens in each view, and how long `find_tools` takes over 5,000 tools, all in process.
 *
 * - Recall: every query of test/fixtures/search/queries.json searched against the real servers'
 *   tools and the generated 50 × 100 catalogue at once (one big desktop), as the unit test does.
 * - Tokens: the `tools/list` result as JSON, counted with o200k_base (gpt-tokenizer), for the
 *   default configuration (memory and files) and for the 5,000-tool catalogue, in the aggregate and
 *   in the search view (find_tools and call_tool, nothing pinned).
 * - Latency: `ToolSearch.find` through a Gateway over the catalogue (unmanaged policy), with a warm
 *   index (built once per tool list change), each hit re-checked against the policy as in the daemon;
 *   and the cold build of an index over 5,000 tools, which the first query after a change pays.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildView } from '../../src/core/aggregate.js';
import type { ToolItem, UpstreamLists } from '../../src/core/ports.js';
import { saving, toolListCost, type ToolListCost } from '../../src/core/search/cost.js';
import { ToolIndex } from '../../src/core/search/tool-index.js';
import { ToolSearch } from '../../src/core/search/view.js';
import { O200kTokenCounter } from '../../src/node/search/tokens.js';
import { REPO } from '../lib/gatehouse.js';
import { benchGateway, benchPrincipal } from '../lib/gateway.js';
import { summarize, type Summary } from '../lib/stats.js';

interface LabelledQuery {
  query: string;
  tool: string;
}

export interface ViewCost {
  aggregate: ToolListCost;
  search: ToolListCost;
  /** 1 − search/aggregate tokens. */
  saving: number;
}

export interface SearchBenchResult {
  tools: number;
  queries: number;
  recallAt1: number;
  recallAt5: number;
  /** Recall@5 of the queries labelled with a real server's tool, and with a catalogue tool. */
  recallAt5RealServers: number;
  recallAt5Catalogue: number;
  misses: { query: string; tool: string; got: string[] }[];
  encoding: string;
  tokens: { defaultConfig: ViewCost; catalogue: ViewCost };
  /** find_tools over the catalogue's 5,000 tools, warm index (ms). */
  findTools: Summary;
  catalogueTools: number;
  /** Building one index over the catalogue (ms). */
  indexBuild: Summary;
}

const FIXTURES = join(REPO, 'test', 'fixtures', 'search');
const read = <T>(file: string): T => JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as T;
const asLists = (servers: Record<string, ToolItem[]>) =>
  new Map<string, UpstreamLists>(Object.entries(servers).map(([name, tools]) => [name, { tools, prompts: [], resources: [], resourceTemplates: [] }]));

export async function searchScenario(options: { reps: number; log: (line: string) => void }): Promise<SearchBenchResult> {
  const real = read<Record<string, ToolItem[]>>('servers.json');
  const catalogue = read<Record<string, ToolItem[]>>('catalogue.json');
  const queries = read<{ queries: LabelledQuery[] }>('queries.json').queries;

  // Recall over the union.
  const union = buildView(asLists({ ...real, ...catalogue })).tools;
  const index = new ToolIndex(union);
  const misses: SearchBenchResult['misses'] = [];
  let at1 = 0;
  const hitsBySource = { real: [0, 0], catalogue: [0, 0] };
  for (const q of queries) {
    const got = index.find(q.query, { limit: 5 }).map((h) => h.tool.name);
    const source = Object.hasOwn(real, q.tool.split('__')[0]!) ? hitsBySource.real : hitsBySource.catalogue;
    source[1]!++;
    if (got[0] === q.tool) at1++;
    if (got.includes(q.tool)) source[0]!++;
    else misses.push({ ...q, got });
  }
  const recallAt5 = (queries.length - misses.length) / queries.length;
  options.log(`  recall@5 ${recallAt5.toFixed(3)}, recall@1 ${(at1 / queries.length).toFixed(3)} over ${queries.length} queries and ${union.length} tools`);

  // Tokens.
  const counter = new O200kTokenCounter();
  const principal = benchPrincipal('in-process');
  const costOf = async (servers: Record<string, ToolItem[]>): Promise<ViewCost> => {
    const gateway = benchGateway(asLists(servers), undefined, { append: () => undefined });
    const search = new ToolSearch(gateway);
    const aggregate = await toolListCost(gateway.listTools(principal, {}), counter);
    const view = await toolListCost(search.listTools(principal, []), counter);
    search.dispose();
    return { aggregate, search: view, saving: saving(aggregate, view) };
  };
  const defaultConfig = await costOf({ memory: real.memory!, files: real.files! });
  const catalogueCost = await costOf(catalogue);
  for (const [name, c] of [
    ['default configuration', defaultConfig],
    ['5,000-tool catalogue', catalogueCost],
  ] as const) {
    options.log(`  ${name}: ${c.aggregate.tokens} tokens aggregate, ${c.search.tokens} search view (${(c.saving * 100).toFixed(2)} % fewer)`);
  }

  // find_tools latency over the catalogue.
  const gateway = benchGateway(asLists(catalogue), undefined, { append: () => undefined });
  const search = new ToolSearch(gateway);
  const catalogueQueries = queries.filter((q) => Object.hasOwn(catalogue, q.tool.split('__')[0]!));
  search.find(principal, { query: 'warm up', limit: 5 });
  const findSamples: number[] = [];
  for (let rep = 0; rep < options.reps; rep++) {
    for (const q of catalogueQueries) {
      const t0 = performance.now();
      search.find(principal, { query: q.query, limit: 5 });
      findSamples.push(performance.now() - t0);
    }
  }
  search.dispose();
  const tools = gateway.listTools(principal, {});
  const buildSamples: number[] = [];
  for (let i = 0; i < Math.max(3, Math.floor(options.reps / 2)); i++) {
    const t0 = performance.now();
    new ToolIndex(tools);
    buildSamples.push(performance.now() - t0);
  }
  const findTools = summarize(findSamples);
  options.log(`  find_tools over ${tools.length} tools: p50 ${findTools.p50.toFixed(2)} ms, p99 ${findTools.p99.toFixed(2)} ms`);
  return {
    tools: union.length,
    queries: queries.length,
    recallAt1: at1 / queries.length,
    recallAt5,
    recallAt5RealServers: hitsBySource.real[0]! / hitsBySource.real[1]!,
    recallAt5Catalogue: hitsBySource.catalogue[0]! / hitsBySource.catalogue[1]!,
    misses,
    encoding: counter.encoding,
    tokens: { defaultConfig, catalogue: catalogueCost },
    findTools,
    catalogueTools: tools.length,
    indexBuild: summarize(buildSamples),
  };
}

/** The report's section. */
export function renderSearch(s: SearchBenchResult, table: (header: string[], rows: string[][]) => string): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(x > 0.999 ? 2 : 1)} %`;
  const int = (x: number) => Math.round(x).toLocaleString('en-US');
  return [
    '',
    `### Tool search (bench/scenarios/search.ts), in process`,
    '',
    `Recall over ${s.queries} labelled queries, each searched against all ${int(s.tools)} tools: recall@5 ${s.recallAt5.toFixed(3)} (real servers ${s.recallAt5RealServers.toFixed(3)}, catalogue ${s.recallAt5Catalogue.toFixed(3)}), recall@1 ${s.recallAt1.toFixed(3)}.`,
    '',
    table(
      ['tool list', 'aggregate: tools / tokens', 'search view: tools / tokens', 'fewer tokens'],
      [
        [
          'default configuration (memory, files)',
          `${s.tokens.defaultConfig.aggregate.tools} / ${int(s.tokens.defaultConfig.aggregate.tokens)}`,
          `${s.tokens.defaultConfig.search.tools} / ${int(s.tokens.defaultConfig.search.tokens)}`,
          pct(s.tokens.defaultConfig.saving),
        ],
        [
          '50 × 100 catalogue',
          `${s.tokens.catalogue.aggregate.tools} / ${int(s.tokens.catalogue.aggregate.tokens)}`,
          `${s.tokens.catalogue.search.tools} / ${int(s.tokens.catalogue.search.tokens)}`,
          pct(s.tokens.catalogue.saving),
        ],
      ],
    ),
    '',
    `Tokens of the \`tools/list\` result as JSON, ${s.encoding}. find_tools over ${int(s.catalogueTools)} tools (warm index): p50 ${s.findTools.p50.toFixed(2)} ms, p99 ${s.findTools.p99.toFixed(2)} ms (${s.findTools.n} queries); building the index (the first query after a tool list change): p50 ${s.indexBuild.p50.toFixed(0)} ms.`,
    ...(s.misses.length ? ['', `Misses at 5: ${s.misses.map((m) => `"${m.query}" → ${m.tool}`).join('; ')}.`] : []),
  ];
}
