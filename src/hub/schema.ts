/**
 * The hub's PostgreSQL schema. Applied at every start under an advisory lock, so several hub
 * instances can start at once against one database.
 *
 * - `devices`: enrolled device keys and each device's ack (highest contiguous, linked sequence).
 * - `chain`: one narrow row per (device, seq): the idempotency key, the hash and the link, used
 *   for duplicates, forks and the ack walk. Not partitioned: uniqueness on (device, seq) must hold
 *   across every month.
 * - `events`: the full records, range-partitioned by month on the event's time (`events_YYYY_MM`,
 *   created on demand), indexed for the admin filters. Old months can be detached or dropped whole.
 * - `checkpoints`, `flags` (gaps, forks, forged records), `siem_outbox` (events waiting for the
 *   SIEM), `bundles` (signed policy bundles, newest first).
 */
export const HUB_SCHEMA_VERSION = 1;

export const HUB_SCHEMA = `
CREATE TABLE IF NOT EXISTS hub_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
  id text PRIMARY KEY,
  public_key text NOT NULL,
  key_id text NOT NULL,
  host text NOT NULL DEFAULT '',
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  enrolled_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz,
  acked_seq bigint NOT NULL DEFAULT 0,
  acked_hash text NOT NULL DEFAULT '${'0'.repeat(64)}',
  highest_seq bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS chain (
  device text NOT NULL REFERENCES devices(id),
  seq bigint NOT NULL,
  hash text NOT NULL,
  prev text NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (device, seq)
);
CREATE TABLE IF NOT EXISTS events (
  device text NOT NULL,
  seq bigint NOT NULL,
  id text NOT NULL,
  at timestamptz NOT NULL,
  type text NOT NULL,
  user_id text,
  client text,
  server text,
  name text,
  decision text,
  hash text NOT NULL,
  body text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device, seq, at)
) PARTITION BY RANGE (at);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id, at);
CREATE INDEX IF NOT EXISTS events_client ON events (client, at);
CREATE INDEX IF NOT EXISTS events_server ON events (server, name, at);
CREATE INDEX IF NOT EXISTS events_decision ON events (decision, at);
CREATE TABLE IF NOT EXISTS checkpoints (
  device text NOT NULL REFERENCES devices(id),
  seq bigint NOT NULL,
  hash text NOT NULL,
  at text NOT NULL,
  key_id text NOT NULL,
  signature text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device, seq)
);
CREATE TABLE IF NOT EXISTS flags (
  id bigserial PRIMARY KEY,
  device text NOT NULL,
  kind text NOT NULL,
  seq bigint NOT NULL,
  message text NOT NULL,
  evidence text,
  first_seen timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now(),
  count integer NOT NULL DEFAULT 1,
  resolved_at timestamptz,
  UNIQUE (device, kind, seq)
);
CREATE TABLE IF NOT EXISTS siem_outbox (
  id bigserial PRIMARY KEY,
  device text NOT NULL,
  seq bigint NOT NULL,
  hash text NOT NULL,
  body text NOT NULL,
  enqueued_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bundles (
  id bigserial PRIMARY KEY,
  etag text NOT NULL,
  content_type text NOT NULL,
  bytes bytea NOT NULL,
  published_at timestamptz NOT NULL DEFAULT now()
);
`;

/** `events_2026_11` covers [2026-11-01, 2026-12-01) UTC. */
export function partitionFor(at: Date): { name: string; from: string; to: string } {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  const from = new Date(Date.UTC(y, m, 1));
  const to = new Date(Date.UTC(y, m + 1, 1));
  return { name: `events_${y}_${String(m + 1).padStart(2, '0')}`, from: from.toISOString(), to: to.toISOString() };
}
