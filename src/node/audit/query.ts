/**
 * Filtered reads of the local audit database, for `gatehouse audit query|export` and the daemon.
 * Filters use the indexed columns; what is returned is always parsed from the hashed body.
 */
import type { AuditEvent } from '../../core/audit/event.js';
import type { AuditFilter } from '../../core/audit/filter.js';
import { ZONE_BITS, type Db } from './schema.js';

export interface QueriedEvent {
  event: AuditEvent;
  hash: string;
}

/** A filter with the names people see (`sam@example.test`, `crm__refund`) resolved to what the records hold. */
interface Resolved extends AuditFilter {
  users?: string[];
}

function where(filter: Resolved, table: string): { sql: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, ...values: unknown[]) => {
    conditions.push(sql.replaceAll('$.', `${table}.`));
    params.push(...values);
  };
  if (filter.from !== undefined) add('$.at >= ?', filter.from);
  if (filter.to !== undefined) add('$.at < ?', filter.to);
  if (filter.users !== undefined) add(`$.user IN (${filter.users.map(() => '?').join(', ')})`, ...filter.users);
  if (filter.client !== undefined) add('$.client = ?', filter.client);
  if (filter.server !== undefined) add('$.server = ?', filter.server);
  if (filter.tool !== undefined) {
    // The name as the server knows it, or as clients see it in the aggregate: `<server>__<name>` (server names hold no `_`).
    const split = /^([a-z0-9-]{1,32})__(.+)$/.exec(filter.tool);
    if (split) add('($.name = ? OR ($.server = ? AND $.name = ?))', filter.tool, split[1], split[2]);
    else add('$.name = ?', filter.tool);
  }
  if (filter.decision !== undefined) add('$.decision = ?', filter.decision);
  if (filter.type !== undefined) add('$.type = ?', filter.type);
  if (filter.afterSeq !== undefined) add('$.seq > ?', filter.afterSeq);
  return { sql: conditions.join(' AND '), params };
}

/**
 * The user ids a name stands for: the id as written; the OS account `os:<name>`; and every signed-in
 * identity whose sign-in (`identity.signed_in`) recorded that display name (the e-mail people see in
 * `whoami`), or whose subject it is (`oidc:<issuer>#<name>`). Sign-ins are few and indexed by type.
 */
function userIds(db: Db, name: string): string[] {
  const ids = new Set([name]);
  if (!name.includes(':')) ids.add(`os:${name}`);
  const cutoff = '(SELECT COALESCE(MAX(seq), 0) FROM events_index)';
  const rows = db
    .prepare(
      `SELECT e.user AS user, e.body AS body FROM events_index i CROSS JOIN events e ON e.seq = i.seq WHERE i.type = 'identity.signed_in'
       UNION ALL SELECT user, body FROM events WHERE seq > ${cutoff} AND type = 'identity.signed_in'`,
    )
    .all() as { user: string | null; body: string }[];
  for (const row of rows) {
    if (!row.user) continue;
    const detail = (JSON.parse(row.body) as { detail?: { displayName?: unknown } }).detail;
    if (detail?.displayName === name || row.user.endsWith(`#${name}`)) ids.add(row.user);
  }
  return [...ids];
}

function resolve(db: Db, filter: AuditFilter): Resolved {
  return filter.user === undefined ? filter : { ...filter, users: userIds(db, filter.user) };
}

/**
 * The filter as alternatives that each name one value per column: one per user id a name stands
 * for, and for a tool named as clients see it (`crm__refund`), the name as written or the server and
 * the server's own name. The alternatives are disjoint (a record has one user, one server and one
 * name), so their matches can be concatenated; each alone reads an index in sequence order, where a
 * single `IN`/`OR` condition made SQLite sort every match (7.6 s over 10,000,000 events).
 */
function alternatives(filter: Resolved): AuditFilter[] {
  let out: AuditFilter[] = [{ ...filter, users: undefined } as AuditFilter];
  if (filter.users !== undefined) out = filter.users.flatMap((user) => out.map((f) => ({ ...f, user })));
  if (filter.tool !== undefined) {
    const split = /^([a-z0-9-]{1,32})__(.+)$/.exec(filter.tool);
    if (split) {
      out = out.flatMap((f) => {
        const asWritten = { ...f, tool: filter.tool };
        // The server part must agree with a server filter, if one is given.
        if (f.server !== undefined && f.server !== split[1]) return [asWritten];
        return [asWritten, { ...f, server: split[1], tool: split[2] }];
      });
    }
  }
  return out.map((f) => {
    const { users: _users, ...plain } = f as Resolved;
    return plain;
  });
}

/** Sequence numbers that may hold events of a time window: a superset, each row's time is still checked. */
export interface SeqRange {
  lo: number;
  hi: number;
}

const ZONE_SIZE = 2 ** ZONE_BITS;

/**
 * The indexed events a time window can match, as one range of sequence numbers read from the zones
 * (schema.ts): from the first zone whose latest time so far reaches `from`, to the first zone whose
 * latest time so far reaches `to`, or a later zone holding a time set back before `to`. Two index
 * seeks, where a time bound alone made SQLite either walk the log from its newest event until the
 * times matched or sort every match (381 ms over 10,000,000 events for `--to` alone). Undefined when
 * there is no time bound, or the log has no zones (one written by an older Gatehouse, read by the CLI).
 */
export function seqRange(db: Db, filter: AuditFilter): SeqRange | undefined {
  if (filter.from === undefined && filter.to === undefined) return undefined;
  if ((db.pragma('user_version', { simple: true }) as number) < 3) return undefined;
  const reaching = db.prepare('SELECT zone FROM events_zones WHERE max_at >= ? ORDER BY max_at, zone LIMIT 1');
  const range: SeqRange = { lo: 0, hi: Number.MAX_SAFE_INTEGER };
  if (filter.from !== undefined) {
    const first = reaching.get(filter.from) as { zone: number } | undefined;
    // No indexed event is that recent: an empty range.
    if (!first) return { lo: 1, hi: 0 };
    range.lo = first.zone * ZONE_SIZE;
  }
  if (filter.to !== undefined) {
    const reach = reaching.get(filter.to) as { zone: number } | undefined;
    if (reach) {
      const late = db.prepare('SELECT max(zone) AS zone FROM events_zones WHERE late = 1 AND zone > ? AND min_at < ?').get(reach.zone, filter.to) as {
        zone: number | null;
      };
      range.hi = (Math.max(reach.zone, late.zone ?? 0) + 1) * ZONE_SIZE - 1;
    }
  }
  return range;
}

/**
 * Conditions of a filter whose every column is one value (see `alternatives`). With a range from
 * the zones, the time conditions only check each row (`+at`: not an index to walk), and the range
 * bounds the walk of whichever index the other filters choose, or of the log itself.
 */
function exactWhere(filter: AuditFilter, table: string, range?: SeqRange): { sql: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    conditions.push(`${table}.${sql}`);
    params.push(value);
  };
  const at = range ? '+' + table + '.at' : `${table}.at`;
  if (range) {
    add('seq >= ?', range.lo);
    add('seq <= ?', range.hi);
  }
  if (filter.from !== undefined) {
    conditions.push(`${at} >= ?`);
    params.push(filter.from);
  }
  if (filter.to !== undefined) {
    conditions.push(`${at} < ?`);
    params.push(filter.to);
  }
  if (filter.user !== undefined) add('user = ?', filter.user);
  if (filter.client !== undefined) add('client = ?', filter.client);
  if (filter.server !== undefined) add('server = ?', filter.server);
  if (filter.tool !== undefined) add('name = ?', filter.tool);
  if (filter.decision !== undefined) add('decision = ?', filter.decision);
  // Implied by the line above; written out so that the planner may read `events_index_user_decision` (schema.ts).
  if (filter.decision !== undefined && filter.decision !== 'ok') conditions.push(`${table}.decision <> 'ok'`);
  if (filter.type !== undefined) add('type = ?', filter.type);
  if (filter.afterSeq !== undefined) add('seq > ?', filter.afterSeq);
  return { sql: conditions.join(' AND '), params };
}

/**
 * Matching events come from the indexed copy (`events_index`, filled in the background) and from
 * the tail the indexer has not reached yet, scanned directly: a query always sees every event.
 * Each part, and each alternative of the indexed part, is ordered and limited on its own before they
 * are merged, so that a page reads about `limit` rows of each through its index instead of sorting
 * every match (507 ms over 1,000,000 events before, for a user's newest 100). The index is always the
 * outer loop (`CROSS JOIN` fixes SQLite's join order): the statistics describe `events_index` only,
 * and over 10,000,000 events SQLite took the unanalysed `events` for the smaller table, scanned all
 * of it and sorted it for a page of the newest 100 events with no filter.
 */
function matching(db: Db, filter: Resolved, order: 'ASC' | 'DESC', limit: number | undefined): { sql: string; params: unknown[] } {
  const cap = limit === undefined ? '' : ' LIMIT ?';
  const capParams = limit === undefined ? [] : [limit];
  const parts: string[] = [];
  const params: unknown[] = [];
  const range = seqRange(db, filter);
  for (const alternative of alternatives(filter)) {
    const indexed = exactWhere(alternative, 'i', range);
    parts.push(
      `SELECT seq, hash, body FROM (SELECT e.seq AS seq, e.hash AS hash, e.body AS body FROM events_index i CROSS JOIN events e ON e.seq = i.seq${indexed.sql ? ` WHERE ${indexed.sql}` : ''} ORDER BY i.seq ${order}${cap})`,
    );
    params.push(...indexed.params, ...capParams);
  }
  const tail = where(filter, 'e');
  const cutoff = '(SELECT COALESCE(MAX(seq), 0) FROM events_index)';
  parts.push(
    `SELECT seq, hash, body FROM (SELECT e.seq AS seq, e.hash AS hash, e.body AS body FROM events e WHERE e.seq > ${cutoff}${tail.sql ? ` AND ${tail.sql}` : ''} ORDER BY e.seq ${order}${cap})`,
  );
  params.push(...tail.params, ...capParams);
  return { sql: parts.join('\n    UNION ALL\n    '), params };
}

/**
 * With `afterSeq`, the first `limit` matching events after it, oldest first (paging forward);
 * without, the newest `limit` matching events, still listed oldest first.
 */
export function queryEvents(db: Db, filter: AuditFilter): QueriedEvent[] {
  const { sql, params, forward } = page(db, filter);
  const rows = db.prepare(sql).all(...params) as { hash: string; body: string }[];
  if (!forward) rows.reverse();
  return rows.map((r) => ({ event: JSON.parse(r.body) as AuditEvent, hash: r.hash }));
}

function page(db: Db, filter: AuditFilter): { sql: string; params: unknown[]; forward: boolean } {
  const limit = filter.limit ?? 100;
  const forward = filter.afterSeq !== undefined;
  const order = forward ? 'ASC' : 'DESC';
  const { sql, params } = matching(db, resolve(db, filter), order, limit);
  return { sql: `SELECT hash, body FROM (${sql}) ORDER BY seq ${order} LIMIT ?`, params: [...params, limit], forward };
}

/** How SQLite reads a filter's page (`EXPLAIN QUERY PLAN`, one line per step): for tests, and to see why a query is slow. */
export function queryPlan(db: Db, filter: AuditFilter): string[] {
  const { sql, params } = page(db, filter);
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
}

/** Every matching event, oldest first, without holding them all in memory. */
export function* iterateEvents(db: Db, filter: AuditFilter): Generator<QueriedEvent> {
  const { sql, params } = matching(db, resolve(db, filter), 'ASC', filter.limit);
  const statement = db.prepare(`SELECT hash, body FROM (${sql}) ORDER BY seq ASC${filter.limit ? ' LIMIT ?' : ''}`);
  const args = filter.limit ? [...params, filter.limit] : params;
  for (const row of statement.iterate(...args) as Iterable<{ hash: string; body: string }>) {
    yield { event: JSON.parse(row.body) as AuditEvent, hash: row.hash };
  }
}
