/**
 * The filters `gatehouse audit query|export` and the hub's admin query share: the same names on
 * the command line (`--user alice`) and in the hub's query string (`?user=alice`).
 */
import { GatehouseError } from '../../common/errors.js';

export const DECISIONS = ['allowed', 'denied', 'failed', 'ok', 'error', 'interrupted'] as const;

export interface AuditFilter {
  /** ISO times; `from` inclusive, `to` exclusive. */
  from?: string;
  to?: string;
  user?: string;
  client?: string;
  server?: string;
  /** Tool, prompt or resource name as the server knows it. */
  tool?: string;
  decision?: (typeof DECISIONS)[number];
  /** Event type (`call.outcome`, `server.state`, …). */
  type?: string;
  /** Hub only: one device. */
  device?: string;
  /** Events after this sequence number (paging; per device on the hub). */
  afterSeq?: number;
  /** Most events to return (default 100, at most 10,000 per page). */
  limit?: number;
}

export const FILTER_KEYS = ['from', 'to', 'user', 'client', 'server', 'tool', 'decision', 'type', 'device', 'after', 'limit'] as const;

/**
 * Reads filters from strings (CLI options or a query string), with an error that names the filter.
 * Times accept ISO 8601 or a relative `15m`, `2h`, `7d` (that long before `now`).
 */
export function parseAuditFilter(input: Partial<Record<(typeof FILTER_KEYS)[number], string | undefined>>, now: number, maxLimit = 10_000): AuditFilter {
  const filter: AuditFilter = {};
  for (const key of ['user', 'client', 'server', 'tool', 'type', 'device'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    if (value.length === 0 || value.length > 512) throw new GatehouseError('usage', `--${key} takes a value of 1 to 512 characters`);
    filter[key] = value;
  }
  for (const key of ['from', 'to'] as const) {
    const value = input[key];
    if (value !== undefined) filter[key] = parseTime(key, value, now);
  }
  if (filter.from && filter.to && filter.from >= filter.to) throw new GatehouseError('usage', `--from (${filter.from}) must be before --to (${filter.to})`);
  if (input.decision !== undefined) {
    if (!(DECISIONS as readonly string[]).includes(input.decision)) throw new GatehouseError('usage', `--decision must be one of ${DECISIONS.join(', ')}`);
    filter.decision = input.decision as AuditFilter['decision'];
  }
  if (input.after !== undefined) {
    const after = Number(input.after);
    if (!Number.isSafeInteger(after) || after < 0) throw new GatehouseError('usage', '--after takes a sequence number (0 or more)');
    filter.afterSeq = after;
  }
  if (input.limit !== undefined) {
    const limit = Number(input.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) throw new GatehouseError('usage', `--limit takes a whole number from 1 to ${maxLimit}`);
    filter.limit = limit;
  }
  return filter;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function parseTime(key: string, value: string, now: number): string {
  const relative = /^(\d{1,6})([smhd])$/.exec(value);
  if (relative) return new Date(now - Number(relative[1]) * UNIT_MS[relative[2]!]!).toISOString();
  if (!/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new GatehouseError('usage', `--${key} takes an ISO time (2026-11-26T09:00:00Z) or a duration before now (15m, 2h, 7d), got "${value}"`);
  }
  return new Date(Date.parse(value)).toISOString();
}
