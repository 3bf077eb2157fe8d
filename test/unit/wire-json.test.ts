/**
 * Lists written from each item's kept JSON (src/node/downstream/wire-json.ts): the bytes must be
 * exactly what `JSON.stringify` of the whole message writes, whatever the items hold.
 */
import { describe, expect, it } from 'vitest';
import { ListTexts, serializeLine } from '../../src/node/downstream/wire-json.js';

const lists = new ListTexts();
const withKeptJson = <T extends object>(items: T[]): T[] => lists.mark(items);

/** The line as one string, newline dropped: what `JSON.stringify` must have written. */
function serializeMessage(message: unknown): string {
  const line = serializeLine(message);
  const text = typeof line === 'string' ? line : Buffer.concat(line).toString('utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1);
}

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

  it('writes a line as JSON.stringify plus a newline, a marked list as buffers around the list’s bytes', () => {
    const joined = (line: string | Buffer[]): string => (typeof line === 'string' ? line : Buffer.concat(line).toString('utf8'));
    const items = awkward.map((item) => ({ ...item }));
    for (const message of [
      { jsonrpc: '2.0', id: 9, result: { tools: withKeptJson([...items]), nextCursor: 'n' } },
      { jsonrpc: '2.0', id: 'x', result: { tools: withKeptJson([]) } },
      { jsonrpc: '2.0', method: 'notifications/tools/list_changed' },
    ]) {
      expect(joined(serializeLine(message))).toBe(JSON.stringify(message) + '\n');
    }
  });

  it('keeps a repeated list’s bytes: the same list listed again is not encoded again', () => {
    const items = awkward.map((item) => ({ ...item }));
    const first = serializeLine({ jsonrpc: '2.0', id: 1, result: { tools: withKeptJson([...items]) } });
    const second = serializeLine({ jsonrpc: '2.0', id: 2, result: { tools: withKeptJson([...items]) } });
    expect(Array.isArray(first) && Array.isArray(second)).toBe(true);
    expect((second as Buffer[])[1]).toBe((first as Buffer[])[1]);
    expect(Buffer.concat(second as Buffer[]).toString('utf8')).toBe(JSON.stringify({ jsonrpc: '2.0', id: 2, result: { tools: items } }) + '\n');
  });

  it('keeps each daemon’s list text apart: another ListTexts neither reads nor fills this one', () => {
    const items = awkward.map((item) => ({ ...item }));
    const mine = serializeLine({ jsonrpc: '2.0', id: 1, result: { tools: withKeptJson([...items]) } }) as Buffer[];
    const theirs = serializeLine({ jsonrpc: '2.0', id: 1, result: { tools: new ListTexts().mark([...items]) } }) as Buffer[];
    expect(theirs[1]).not.toBe(mine[1]);
    expect(Buffer.concat(theirs).equals(Buffer.concat(mine))).toBe(true);
  });
});
