/**
 * Writing large lists without serializing them again on every `tools/list`. The aggregate of 50
 * servers × 100 tools is a 1.1 MB answer, and `JSON.stringify` of it was most of what the daemon spent
 * on a `tools/list` (BENCHMARKS.md). The items of a catalog view are fixed objects until the view is
 * rebuilt, so each item's JSON is kept beside it (by object identity, in a WeakMap of `ListTexts`), and the answer is
 * the kept JSON of the items this principal may see, joined: the filter still runs on every list; only
 * the text of each item is reused.
 *
 * The list travels through the SDK as an ordinary array that carries the joined text under a symbol.
 * Where Gatehouse writes messages (the socket's line transport, 2025 HTTP sessions) `serializeLine`
 * uses it; anywhere else the array is serialized as usual, with the same result. A repeated list's
 * UTF-8 bytes are kept too, and the line is written as three buffers (the message around the list,
 * the list's kept bytes), so that a 1.1 MB list is neither joined into a new string nor encoded
 * again on every `tools/list`.
 */
const RAW = Symbol('gatehouse.rawJson');
/** A handful of principals and views list at once on a desktop; eight covers them. */
const LAST_LISTS = 8;

/** A list's text, and its UTF-8 bytes once the line transport has asked for them. */
interface KeptList {
  items: readonly object[];
  text: string;
  bytes?: Buffer;
}

type Marked = unknown[] & { [RAW]?: () => KeptList };

function sameItems(a: readonly object[], b: readonly object[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * One daemon's kept list text (the session host makes one): each item's JSON by object identity, and
 * the last lists written, a few, least recently used first, by their first item. A principal listing
 * again with nothing changed gets the same items in the same order, and the list's text is reused whole.
 */
export class ListTexts {
  private readonly itemJson = new WeakMap<object, string>();
  private readonly last = new Map<object, KeptList>();

  /** The same array, marked so that `serializeLine` writes it from the items' kept JSON. */
  mark<T extends object>(items: T[]): T[] {
    Object.defineProperty(items, RAW, { enumerable: false, value: () => this.text(items) });
    return items;
  }

  private text(items: readonly object[]): KeptList {
    const first = items[0];
    const last = first === undefined ? undefined : this.last.get(first);
    if (last && sameItems(last.items, items)) {
      this.last.delete(first!);
      this.last.set(first!, last);
      return last;
    }
    const parts = new Array<string>(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      let json = this.itemJson.get(item);
      if (json === undefined) this.itemJson.set(item, (json = JSON.stringify(item)));
      parts[i] = json;
    }
    const kept: KeptList = { items: [...items], text: `[${parts.join(',')}]` };
    if (first !== undefined) {
      this.last.delete(first);
      if (this.last.size >= LAST_LISTS) this.last.delete(this.last.keys().next().value!);
      this.last.set(first, kept);
    }
    return kept;
  }
}

/** A placeholder no serialized message contains (`\u0000` is always escaped by JSON.stringify). */
const SLOT = '\u0000gatehouse-kept-json\u0000';
const SLOT_JSON = JSON.stringify(SLOT);

/** The message around a marked list, with the list's place in it, or undefined when the message carries none. */
function split(message: unknown): { line: string; at: number; list: KeptList } | undefined {
  const result = (message as { result?: { tools?: Marked } } | null)?.result;
  const raw = result?.tools?.[RAW];
  if (!raw) return undefined;
  const line = JSON.stringify({ ...(message as object), result: { ...result, tools: SLOT } });
  const at = line.indexOf(SLOT_JSON);
  return at < 0 ? undefined : { line, at, list: raw() };
}

/**
 * The message as one newline-terminated line: a string, or, for a marked list, the buffers to write
 * one after the other (the list's kept bytes in the middle). Byte for byte `JSON.stringify(message)` plus `\n`.
 */
export function serializeLine(message: unknown): string | Buffer[] {
  const parts = split(message);
  if (!parts) return JSON.stringify(message) + '\n';
  const { line, at, list } = parts;
  list.bytes ??= Buffer.from(list.text, 'utf8');
  return [Buffer.from(line.slice(0, at), 'utf8'), list.bytes, Buffer.from(line.slice(at + SLOT_JSON.length) + '\n', 'utf8')];
}
