/**
 * Writing large lists without serializing them again on every `tools/list`. The aggregate of 50
 * servers × 100 tools is a 1.1 MB answer, and `JSON.stringify` of it was most of what the daemon spent
 * on a `tools/list` (BENCHMARKS.md). The items of a catalog view are fixed objects until the view is
 * rebuilt, so each item's JSON is kept beside it (by object identity, in a WeakMap), and the answer is
 * the kept JSON of the items this principal may see, joined: the filter still runs on every list; only
 * the text of each item is reused.
 *
 * The list travels through the SDK as an ordinary array that carries the joined text under a symbol.
 * Where Gatehouse writes messages (the socket's line transport, 2025 HTTP sessions) `serializeMessage`
 * uses it; anywhere else the array is serialized as usual, with the same result.
 */
const RAW = Symbol('gatehouse.rawJson');
const itemJson = new WeakMap<object, string>();
/**
 * The last lists written (a few, least recently used first), by their first item: a principal
 * listing again with nothing changed gets the same items in the same order, and the list's text is
 * reused whole. A handful of principals and views list at once on a desktop; eight covers them.
 */
const lastLists = new Map<object, { items: readonly object[]; text: string }>();
const LAST_LISTS = 8;

type Marked = unknown[] & { [RAW]?: () => string };

function sameItems(a: readonly object[], b: readonly object[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function listText(items: readonly object[]): string {
  const first = items[0];
  const last = first === undefined ? undefined : lastLists.get(first);
  if (last && sameItems(last.items, items)) {
    lastLists.delete(first!);
    lastLists.set(first!, last);
    return last.text;
  }
  const parts = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    let json = itemJson.get(item);
    if (json === undefined) itemJson.set(item, (json = JSON.stringify(item)));
    parts[i] = json;
  }
  const text = `[${parts.join(',')}]`;
  if (first !== undefined) {
    lastLists.delete(first);
    if (lastLists.size >= LAST_LISTS) lastLists.delete(lastLists.keys().next().value!);
    lastLists.set(first, { items: [...items], text });
  }
  return text;
}

/** The same array, marked so that `serializeMessage` writes it from the items' kept JSON. */
export function withKeptJson<T extends object>(items: T[]): T[] {
  Object.defineProperty(items, RAW, { enumerable: false, value: () => listText(items) });
  return items;
}

/** A placeholder no serialized message contains (`\u0000` is always escaped by JSON.stringify). */
const SLOT = '\u0000gatehouse-kept-json\u0000';
const SLOT_JSON = JSON.stringify(SLOT);

/** `JSON.stringify(message)`, using the kept JSON of a marked `result.tools` list. */
export function serializeMessage(message: unknown): string {
  const result = (message as { result?: { tools?: Marked } } | null)?.result;
  const raw = result?.tools?.[RAW];
  if (!raw) return JSON.stringify(message);
  const line = JSON.stringify({ ...(message as object), result: { ...result, tools: SLOT } });
  const at = line.indexOf(SLOT_JSON);
  if (at < 0) return JSON.stringify(message);
  return line.slice(0, at) + raw() + line.slice(at + SLOT_JSON.length);
}
