/**
 * The labelled query set (test/fixtures/search/queries.json): plain-language requests, each with the
 * tool that should serve it, searched against the real servers' tools and the generated 50 × 100
 * catalogue at once, as one desktop's aggregate. Recall@5 is a behaviour of the ranking, not a
 * timing, so it is asserted here; `npm run bench` reports it with recall@1 and the misses.
 */
import { describe, expect, it } from 'vitest';
import { buildView } from '../../src/core/aggregate.js';
import { ToolIndex } from '../../src/core/search/tool-index.js';
import { asLists, generatedCatalogue, labelledQueries, realServerTools, recallAt } from '../support/search-data.js';

describe('the labelled query set', () => {
  const view = buildView(asLists({ ...realServerTools(), ...generatedCatalogue() }));
  const index = new ToolIndex(view.tools);
  const queries = labelledQueries();

  it('has at least 100 requests, each labelled with a tool that exists', () => {
    expect(queries.length).toBeGreaterThanOrEqual(100);
    const names = new Set(view.tools.map((t) => t.name));
    expect(queries.filter((q) => !names.has(q.tool))).toEqual([]);
    expect(view.tools.length).toBeGreaterThan(5000);
  });

  it('finds the labelled tool among the first five results for at least 90 % of the requests', () => {
    const { recall, misses } = recallAt(5, queries, (query, limit) => index.find(query, { limit }).map((hit) => hit.tool.name));
    expect(recall, misses.map((m) => `${m.query} → ${m.tool}; got ${m.got.join(', ')}`).join('\n')).toBeGreaterThanOrEqual(0.9);
  });
});
