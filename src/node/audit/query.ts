/**
 * Filtered reads of the local audit database, for `gatehouse audit query|export` and the daemon.
 * Filters use the indexed columns; what is returned is always parsed from the hashed body.
 */
import type { AuditEvent } from '../../core/audit/event.js';
import type { AuditFilter } from '../../core/audit/filter.js';
import type { Db } from './schema.js';

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
      `SELECT e.user AS user, e.body AS body FROM events_index i JOIN events e ON e.seq = i.seq WHERE i.type = 'identity.signed_in'
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
 * Matching events come from the indexed copy (`events_index`, filled in the background) and from
 * the tail the indexer has not reached yet, scanned directly: a query always sees every event.
 * Each part is ordered and limited on its own before the two are merged, so that a page reads about
 * `limit` rows of each through its index instead of sorting every match (507 ms over 1,000,000 events
 * before, for a user's newest 100).
 */
function matching(filter: Resolved, order: 'ASC' | 'DESC', limit: number | undefined): { sql: string; params: unknown[] } {
  const indexed = where(filter, 'i');
  const tail = where(filter, 'e');
  const cutoff = '(SELECT COALESCE(MAX(seq), 0) FROM events_index)';
  const cap = limit === undefined ? '' : ' LIMIT ?';
  const capParams = limit === undefined ? [] : [limit];
  const sql = `SELECT seq, hash, body FROM (SELECT e.seq AS seq, e.hash AS hash, e.body AS body FROM events_index i JOIN events e ON e.seq = i.seq${indexed.sql ? ` WHERE ${indexed.sql}` : ''} ORDER BY i.seq ${order}${cap})
    UNION ALL
    SELECT seq, hash, body FROM (SELECT e.seq AS seq, e.hash AS hash, e.body AS body FROM events e WHERE e.seq > ${cutoff}${tail.sql ? ` AND ${tail.sql}` : ''} ORDER BY e.seq ${order}${cap})`;
  return { sql, params: [...indexed.params, ...capParams, ...tail.params, ...capParams] };
}

/**
 * With `afterSeq`, the first `limit` matching events after it, oldest first (paging forward);
 * without, the newest `limit` matching events, still listed oldest first.
 */
export function queryEvents(db: Db, filter: AuditFilter): QueriedEvent[] {
  const limit = filter.limit ?? 100;
  const forward = filter.afterSeq !== undefined;
  const order = forward ? 'ASC' : 'DESC';
  const { sql, params } = matching(resolve(db, filter), order, limit);
  const rows = db.prepare(`SELECT hash, body FROM (${sql}) ORDER BY seq ${order} LIMIT ?`).all(...params, limit) as { hash: string; body: string }[];
  if (!forward) rows.reverse();
  return rows.map((r) => ({ event: JSON.parse(r.body) as AuditEvent, hash: r.hash }));
}

/** Every matching event, oldest first, without holding them all in memory. */
export function* iterateEvents(db: Db, filter: AuditFilter): Generator<QueriedEvent> {
  const { sql, params } = matching(resolve(db, filter), 'ASC', filter.limit);
  const statement = db.prepare(`SELECT hash, body FROM (${sql}) ORDER BY seq ASC${filter.limit ? ' LIMIT ?' : ''}`);
  const args = filter.limit ? [...params, filter.limit] : params;
  for (const row of statement.iterate(...args) as Iterable<{ hash: string; body: string }>) {
    yield { event: JSON.parse(row.body) as AuditEvent, hash: row.hash };
  }
}
