/**
 * How tool text and queries become search terms. Both sides go through the same steps, so that a
 * plain-language request ("remove the old tickets") meets a tool's own words (`delete_issue`,
 * "Permanently deletes an issue"):
 *
 * 1. identifiers are split (`list_directory_with_sizes`, `getTinyImage`, `pub/sub`);
 * 2. words are lower-cased, and words that say nothing about a tool are dropped;
 * 3. a short list of nouns people use interchangeably is folded onto one word (`ticket` → `issue`,
 *    `folder` → `directory`); the list is deliberately small, since a wrong fold joins tools that differ;
 * 4. the Porter stemmer folds inflections (`deletes`, `deleted`, `deleting` → `delet`);
 * 5. in a query only, a verb also asks for the operation words tools are named with ("post a
 *    message" also looks for `create`, "terminate" for `delete`).
 */
import { stemmer } from 'stemmer';

/** Words that occur in nearly every tool or request and say nothing about which tool is meant. */
const STOP_WORDS = new Set(
  (
    'a an and are as at be by can could do does for from has have how i if in into is it its me my of on or our please ' +
    'should so that the their them then there these this to tool tools us use using via want was we what when where which ' +
    'who will with would you your all any some one each new'
  ).split(' '),
);

/**
 * Nouns and abbreviations people use for the same thing, folded onto one word on both sides (the
 * index and the query). Keys are words as typed (lower case).
 */
const FOLDS: Readonly<Record<string, string>> = {
  ticket: 'issue',
  tickets: 'issue',
  bug: 'issue',
  bugs: 'issue',
  mail: 'email',
  emails: 'email',
  mr: 'merge',
  pr: 'pull',
  repo: 'repository',
  repos: 'repository',
  dir: 'directory',
  folder: 'directory',
  folders: 'directory',
  k8s: 'kubernetes',
  postgresql: 'postgres',
  db: 'database',
  doc: 'document',
  docs: 'document',
  txt: 'text',
  pic: 'image',
  picture: 'image',
  photo: 'image',
  fact: 'observation',
  facts: 'observation',
  relationship: 'relation',
  relationships: 'relation',
  several: 'multiple',
  many: 'multiple',
};

/**
 * What a request's verb asks for, in the words tools are usually named with (`create_…`, `get_…`,
 * `list_…`, `update_…`, `delete_…`, `search_…`). Applied to the query only, and added to the word
 * as typed rather than replacing it, so that a tool named with the verb itself (`move_file` for
 * "rename", `refund`) still matches best.
 */
const ACTIONS: Readonly<Record<string, readonly string[]>> = {
  add: ['create', 'sum'],
  run: ['create'],
  refund: ['create'],
  post: ['create'],
  send: ['create'],
  schedule: ['create'],
  book: ['create'],
  publish: ['create'],
  file: ['create'],
  open: ['create', 'get', 'read'],
  draft: ['create'],
  record: ['create'],
  submit: ['create'],
  request: ['create'],
  take: ['create'],
  build: ['create'],
  leave: ['create'],
  put: ['create'],
  write: ['create'],
  upload: ['create'],
  make: ['create'],
  start: ['create'],
  raise: ['create'],
  log: ['create'],
  invite: ['create'],
  generate: ['create'],
  compose: ['create'],
  register: ['create'],
  silence: ['create'],
  mute: ['create'],
  remove: ['delete'],
  erase: ['delete'],
  destroy: ['delete'],
  drop: ['delete'],
  terminate: ['delete'],
  cancel: ['delete'],
  revoke: ['delete'],
  kill: ['delete'],
  purge: ['delete'],
  empty: ['delete'],
  discard: ['delete'],
  forget: ['delete'],
  show: ['list', 'get'],
  which: ['list'],
  recent: ['list'],
  browse: ['list'],
  enumerate: ['list'],
  fetch: ['get'],
  retrieve: ['get'],
  look: ['get'],
  lookup: ['get'],
  view: ['get'],
  read: ['get'],
  see: ['get', 'list'],
  check: ['get'],
  inspect: ['get'],
  who: ['get', 'list'],
  edit: ['update'],
  modify: ['update'],
  change: ['update'],
  rename: ['update'],
  amend: ['update'],
  set: ['update', 'create'],
  resize: ['update'],
  answer: ['update'],
  reply: ['update'],
  assign: ['update'],
  deactivate: ['archive'],
  disable: ['archive'],
  suspend: ['archive'],
  hide: ['archive'],
  undelete: ['restore'],
  recover: ['restore'],
  revert: ['restore'],
  reactivate: ['restore'],
  undo: ['restore'],
  download: ['export'],
  csv: ['export'],
  find: ['search'],
  changed: ['history'],
  changes: ['history'],
  timeline: ['history'],
  repeat: ['echo'],
  access: ['permission'],
};

/** Splits identifiers and prose into words: `list_directory_with_sizes`, `getTinyImage`, `Pub/Sub`, `k8s`. */
export function words(text: string): string[] {
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

/** One word → its search term, or undefined when it says nothing about a tool. */
export function term(word: string): string | undefined {
  return termOf(word);
}

function termOf(word: string): string | undefined {
  const lower = word.toLowerCase();
  if (STOP_WORDS.has(lower)) return undefined;
  const folded = FOLDS[lower] ?? lower;
  // Numbers and very short words are kept as written (ids, `s3`, `ec2`); the stemmer would mangle them.
  if (folded.length <= 3 || /\d/.test(folded)) return folded;
  return stemmer(folded);
}

/**
 * A tool's word → the terms it is indexed under: its stem, and the word as written when that
 * differs ("runs" is indexed as `run` and `runs`), so that the exact form counts a little more.
 */
export function indexTerms(word: string): string[] {
  const stem = term(word);
  if (stem === undefined) return [];
  const lower = FOLDS[word.toLowerCase()] ?? word.toLowerCase();
  return lower === stem ? [stem] : [stem, lower];
}

/** A query's word → the terms it is looked up under: as a tool's word, plus the operations its verb asks for. */
export function queryTerms(word: string): string[] {
  // A stop word may still say what to do ("who is on call" asks to get or list).
  const own = indexTerms(word);
  const actions = (ACTIONS[word.toLowerCase()] ?? []).map((a) => term(a)!);
  return [...new Set([...own, ...actions])];
}

/**
 * `indexTerms` and `queryTerms` with the answers kept: tool text repeats a small vocabulary, and
 * stemming is most of the cost of building an index. One per index; bounded, since queries bring
 * words of their own.
 */
export class TermCache {
  private readonly indexed = new Map<string, string[]>();
  private readonly queried = new Map<string, string[]>();

  constructor(private readonly max = 50_000) {}

  index(word: string): string[] {
    return this.remember(this.indexed, word, indexTerms);
  }

  query(word: string): string[] {
    return this.remember(this.queried, word, queryTerms);
  }

  private remember(map: Map<string, string[]>, word: string, work: (word: string) => string[]): string[] {
    let found = map.get(word);
    if (found === undefined) {
      found = work(word);
      if (map.size >= this.max) map.clear();
      map.set(word, found);
    }
    return found;
  }
}

/** Text → search terms, in order (duplicates kept: the ranking counts them). */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const w of words(text)) {
    const t = term(w);
    if (t !== undefined) out.push(t);
  }
  return out;
}
