/**
 * The tool-search test data: the real servers' tools (a snapshot, checked against the live servers by
 * test/integration/search-view.test.ts), the generated 50 × 100 catalogue, and the labelled queries.
 * Shared by the unit tests and `npm run bench`.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ToolItem, UpstreamLists } from '../../src/core/ports.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'search');

export interface LabelledQuery {
  query: string;
  /** The tool that should serve it, as the aggregate names it. */
  tool: string;
}

function read<T>(file: string): T {
  return JSON.parse(readFileSync(join(DIR, file), 'utf8')) as T;
}

/** server-everything, server-filesystem, server-memory and the CRM fixture, by the names the tests give them. */
export function realServerTools(): Record<string, ToolItem[]> {
  return read<Record<string, ToolItem[]>>('servers.json');
}

/** 50 servers × 100 tools (scripts/generate-search-catalogue.mjs). */
export function generatedCatalogue(): Record<string, ToolItem[]> {
  return read<Record<string, ToolItem[]>>('catalogue.json');
}

export function labelledQueries(): LabelledQuery[] {
  return read<{ queries: LabelledQuery[] }>('queries.json').queries;
}

/** Tools per server as a gateway's directory holds them. */
export function asLists(servers: Record<string, ToolItem[]>): Map<string, UpstreamLists> {
  return new Map(Object.entries(servers).map(([name, tools]) => [name, { tools, prompts: [], resources: [], resourceTemplates: [] }]));
}

/** Recall@k and the misses: the share of queries whose labelled tool is among the first k results. */
export function recallAt(
  k: number,
  queries: LabelledQuery[],
  find: (query: string, limit: number) => string[],
): { recall: number; misses: { query: string; tool: string; got: string[] }[] } {
  const misses: { query: string; tool: string; got: string[] }[] = [];
  for (const q of queries) {
    const got = find(q.query, k);
    if (!got.includes(q.tool)) misses.push({ ...q, got });
  }
  return { recall: (queries.length - misses.length) / queries.length, misses };
}
