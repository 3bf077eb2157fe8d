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

/** Conditions of a filter whose every column is one value (see `alternatives`). */
function exactWhere(filter: AuditFilter, table: string): { sql: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    conditions.push(`${table}.${sql}`);
    params.push(value);
  };
  if (filter.from !== undefined) add('at >= ?', filter.from);
  if (filter.to !== undefined) add('at < ?', filter.to);
  if (filter.user !== undefined) add('user = ?', filter.user);
  if (filter.client !== undefined) add('client = ?', filter.client);
  if (filter.server !== undefined) add('server = ?', filter.server);
  if (filter.tool !== undefined) add('name = ?', filter.tool);
  if (filter.decision !== undefined) add('decision = ?', filter.decision);
  if (filter.type !== undefined) add('type = ?', filter.type);
  if (filter.afterSeq !== undefined) add('seq > ?', filter.afterSeq);
  return { sql: conditions.join(' AND '), params };
}

/**
 * Matching events come from the indexed copy (`events_index`, filled in the background) and from
 * the tail the indexer has not reached yet, scanned directly: a query always sees every event.
 * Each part, and each alternative of the indexed part, is ordered and limited on its own before they
 * are merged, so that a page reads about `limit` rows of each through its index instead of sorting
 * every match (507 ms over 1,000,000 events before, for a user's newest 100).
 */
function matching(filter: Resolved, order: 'ASC' | 'DESC', limit: number | undefined): { sql: string; params: unknown[] } {
  const cap = limit === undefined ? '' : ' LIMIT ?';
  const capParams = limit === undefined ? [] : [limit];
  const parts: string[] = [];
  const params: unknown[] = [];
  for (const alternative of alternatives(filter)) {
    const indexed = exactWhere(alternative, 'i');
    parts.push(
      `SELECT seq, hash, body FROM (SELECT e.seq AS seq, e.hash AS hash, e.body AS body FROM events_index i JOIN events e ON e.seq = i.seq${indexed.sql ? ` WHERE ${indexed.sql}` : ''} ORDER BY i.seq ${order}${cap})`,
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
