/**
 * Lists written from each item's kept JSON (src/node/downstream/wire-json.ts): the bytes must be
 * exactly what `JSON.stringify` of the whole message writes, whatever the items hold.
 */
import { describe, expect, it } from 'vitest';
import { serializeMessage, withKeptJson } from '../../src/node/downstream/wire-json.js';

const awkward = [
  { name: 'plain', description: 'a tool', inputSchema: { type: 'object' } },
  { name: 'quotes "and" \\ slashes', description: 'line\nbreak\ttab', inputSchema: { type: 'object', properties: { a: { type: 'string' } } } },
  { name: 'unicode', description: 'naïve — 工具 🙂 \u2028 \u0000 \ud800', annotations: { readOnlyHint: true } },
  { name: 'numbers', x: -0, y: 1e21, z: 0.1 },
];

describe('writing a tools list from its kept JSON', () => {
  it('writes exactly what JSON.stringify writes, for either id type and with members after the list', () => {
    for (const message of [
      { result: { tools: withKeptJson([...awkward]) }, jsonrpc: '2.0', id: 7 },
      { jsonrpc: '2.0', id: 'a"b', result: { tools: withKeptJson([...awkward]), nextCursor: 'c', _meta: { note: '\u0000gatehouse-kept-json\u0000' } } },
      { result: { tools: withKeptJson([]) }, jsonrpc: '2.0', id: 0 },
    ]) {
      expect(serializeMessage(message)).toBe(JSON.stringify(message));
    }
  });

  it('reuses an item’s JSON across lists that contain the same item, and writes each list’s own members', () => {
    const items = awkward.map((item) => ({ ...item }));
    const first = { jsonrpc: '2.0', id: 1, result: { tools: withKeptJson([items[0]!, items[1]!]) } };
    const second = { jsonrpc: '2.0', id: 2, result: { tools: withKeptJson([items[1]!, items[2]!, items[3]!]) } };
    expect(serializeMessage(first)).toBe(JSON.stringify(first));
    expect(serializeMessage(second)).toBe(JSON.stringify(second));
    // The same first item with other members after it (another principal's view, a list that shrank): its own text.
    const narrower = { jsonrpc: '2.0', id: 3, result: { tools: withKeptJson([items[0]!, items[2]!]) } };
    const again = { jsonrpc: '2.0', id: 4, result: { tools: withKeptJson([items[0]!, items[1]!]) } };
    expect(serializeMessage(narrower)).toBe(JSON.stringify(narrower));
    expect(serializeMessage(again)).toBe(JSON.stringify(again));
  });

  it('writes any other message as JSON.stringify does, and a marked list hides nothing from JSON.stringify', () => {
    const marked = withKeptJson([...awkward]);
    expect(JSON.stringify(marked)).toBe(JSON.stringify(awkward));
    expect(Object.keys(marked)).toEqual(Object.keys(awkward));
    for (const message of [{ jsonrpc: '2.0', id: 3, result: { tools: [...awkward] } }, { jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, null]) {
      expect(serializeMessage(message)).toBe(JSON.stringify(message));
    }
  });
});
