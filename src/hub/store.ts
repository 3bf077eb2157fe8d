/**
 * The hub's PostgreSQL store: enrolment, idempotent batch ingest with chain checks per device,
 * admin queries, the SIEM outbox and the published policy bundle. Every instance is stateless:
 * per-device ingest is serialized by a row lock on the device, so any number of hub instances
 * may serve the same devices over one database.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { GatehouseError, errorMessage } from '../common/errors.js';
import { GENESIS_HASH, keyIdOf, openSealedEvent, publicKeyFromRaw, short, verifyCheckpoint, type AuditEvent, type SealedEvent } from '../core/audit/event.js';
import type { AuditFilter } from '../core/audit/filter.js';
import { ProtocolError, type BatchRequest, type BatchResponse, type DeviceState, type FlagKind, type IntegrityFlag } from '../core/audit/protocol.js';
import { HUB_SCHEMA, HUB_SCHEMA_VERSION, partitionFor } from './schema.js';
import type { BaselineRow } from '../core/catalog/baselines.js';
import type { FleetDevice, FleetTimeline } from '../common/fleet.js';

const MIN_EVENT_TIME = Date.UTC(2000, 0, 1);
const FUTURE_SLACK_MS = 31 * 86_400_000;

export interface DeviceRow {
  id: string;
  publicKey: string;
  keyId: string;
  host: string;
  status: 'active' | 'revoked';
  enrolledAt: string;
  lastSeenAt: string | null;
  acked: number;
  ackedHash: string;
  highest: number;
  checkpoint: number;
}

export interface StoredFlag {
  device: string;
  kind: FlagKind;
  seq: number;
  message: string;
  firstSeen: string;
  lastSeen: string;
  count: number;
  resolvedAt: string | null;
}

export interface MetricsSnapshot {
  devices: { id: string; status: DeviceRow['status']; unacked: number; syncAgeSeconds: number | null }[];
  openFlags: { device: string; kind: FlagKind; count: number }[];
  outbox: { events: number; oldestSeconds: number | null };
}

export interface IngestResult extends BatchResponse {
  /** The first forged or malformed record, which stopped the batch there. */
  refused?: { code: string; seq: number; message: string };
}

export class HubStore {
  readonly pool: pg.Pool;
  /** The pool admin queries read from: a replica's when one is configured, else the primary's. */
  readonly readPool: pg.Pool;
  private readonly partitions = new Set<string>();
  private readonly siemEnabled: boolean;

  constructor(options: { connectionString: string; readConnectionString?: string | undefined; siem: boolean; max?: number }) {
    this.pool = new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 10 });
    // An idle client that loses its server must not crash the hub; the next query reconnects.
    this.pool.on('error', () => undefined);
    this.readPool = options.readConnectionString ? new pg.Pool({ connectionString: options.readConnectionString, max: options.max ?? 10 }) : this.pool;
    this.readPool.on('error', () => undefined);
    this.siemEnabled = options.siem;
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock(727274001)');
      try {
        await client.query(HUB_SCHEMA);
        await client.query(`INSERT INTO hub_meta(key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO NOTHING`, [String(HUB_SCHEMA_VERSION)]);
        const now = new Date();
        for (const offset of [-1, 0, 1]) await this.ensurePartition(client, new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 15)));
      } finally {
        await client.query('SELECT pg_advisory_unlock(727274001)');
      }
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
    if (this.readPool !== this.pool) await this.readPool.end();
  }

  private async ensurePartition(client: pg.PoolClient, at: Date): Promise<void> {
    const p = partitionFor(at);
    if (this.partitions.has(p.name)) return;
    // Another instance may create it at the same moment: the advisory lock makes that a wait, not an error.
    await client.query('SELECT pg_advisory_xact_lock(727274002)').catch(() => undefined);
    await client.query(`CREATE TABLE IF NOT EXISTS ${p.name} PARTITION OF events FOR VALUES FROM ('${p.from}') TO ('${p.to}')`);
    this.partitions.add(p.name);
  }

  // --- Devices -------------------------------------------------------------------------------

  async enrol(device: string, publicKey: string, host: string): Promise<{ created: boolean; row: DeviceRow }> {
    const keyId = keyIdOf(publicKey);
    const inserted = await this.pool.query(
      `INSERT INTO devices (id, public_key, key_id, host) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [device, publicKey, keyId, host.slice(0, 255)],
    );
    const row = (await this.device(device))!;
    if (inserted.rowCount === 0 && row.publicKey !== publicKey) {
      throw new ProtocolError(
        409,
        'device_key_conflict',
        `device ${device} is already enrolled with another key (${row.keyId}); an admin must revoke it before it can enrol again`,
      );
    }
    if (row.status === 'revoked') throw new ProtocolError(403, 'device_revoked', `device ${device} was revoked`);
    return { created: (inserted.rowCount ?? 0) > 0, row };
  }

  async device(id: string): Promise<DeviceRow | undefined> {
    const { rows } = await this.pool.query(
      'SELECT d.*, (SELECT coalesce(max(seq), 0) FROM checkpoints c WHERE c.device = d.id) AS checkpoint_seq FROM devices d WHERE id = $1',
      [id],
    );
    return rows[0] ? toDevice(rows[0]) : undefined;
  }

  async devices(): Promise<DeviceRow[]> {
    const { rows } = await this.readPool.query('SELECT * FROM devices ORDER BY id');
    return rows.map(toDevice);
  }

  async revoke(id: string): Promise<boolean> {
    const result = await this.pool.query(`UPDATE devices SET status = 'revoked' WHERE id = $1`, [id]);
    return (result.rowCount ?? 0) > 0;
  }

  async flags(device?: string, openOnly = false): Promise<StoredFlag[]> {
    const { rows } = await this.readPool.query(
      `SELECT device, kind, seq, message, first_seen, last_seen, count, resolved_at FROM flags
       WHERE ($1::text IS NULL OR device = $1) AND (NOT $2 OR resolved_at IS NULL) ORDER BY device, seq, kind`,
      [device ?? null, openOnly],
    );
    return rows.map((r) => ({
      device: r.device,
      kind: r.kind,
      seq: Number(r.seq),
      message: r.message,
      firstSeen: iso(r.first_seen)!,
      lastSeen: iso(r.last_seen)!,
      count: r.count,
      resolvedAt: iso(r.resolved_at),
    }));
  }

  static deviceState(row: DeviceRow): DeviceState {
    return { device: row.id, acked: row.acked, ackedHash: row.ackedHash, checkpoint: row.checkpoint, status: row.status };
  }

  // --- Ingest --------------------------------------------------------------------------------

  /**
   * Stores what is new in a batch and moves the device's ack. Events are taken in order; the first
   * one that is forged or malformed stops the batch there (what came before it is kept), and is
   * flagged with its evidence. Duplicates are counted, never stored twice; a different event at a
   * sequence number the hub already holds is a fork.
   */
  async ingest(batch: BatchRequest, publicKey: string): Promise<IngestResult> {
    const key = publicKeyFromRaw(publicKey);
    const flags: (IntegrityFlag & { evidence?: string })[] = [];
    let refused: IngestResult['refused'];
    const refuse = (kind: FlagKind, seq: number, message: string, evidence?: string) => {
      flags.push({ kind, seq, message, ...(evidence !== undefined ? { evidence } : {}) });
      refused ??= { code: 'forged_record', seq, message };
    };

    // 1. Each event on its own: hash, canonical form, device, time.
    const opened: { sealed: SealedEvent; event: AuditEvent }[] = [];
    const now = Date.now();
    for (const sealed of batch.events) {
      const result = openSealedEvent(sealed, { device: batch.device });
      if (!result.ok) {
        refuse(
          result.problem.code === 'hash_mismatch' ? 'bad_hash' : 'malformed',
          sealed.seq,
          `event ${sealed.seq}: ${result.problem.message}`,
          sealed.body.slice(0, 4096),
        );
        break;
      }
      const t = Date.parse(result.event.at);
      if (t < MIN_EVENT_TIME || t > now + FUTURE_SLACK_MS) {
        refuse(
          'malformed',
          sealed.seq,
          `event ${sealed.seq} is dated ${result.event.at}, outside what the hub accepts (2000 to a month ahead of its clock): check the device's clock`,
        );
        break;
      }
      opened.push({ sealed, event: result.event });
    }

    // 2. Checkpoints: each signature, before anything is stored.
    const checkpoints = [];
    for (const c of batch.checkpoints) {
      if (!verifyCheckpoint(key, c)) {
        refuse(
          'bad_signature',
          c.seq,
          `checkpoint at event ${c.seq}: the signature does not verify with device ${batch.device}'s enrolled key (forged)`,
          JSON.stringify(c),
        );
        continue;
      }
      checkpoints.push(c);
    }

    const client = await this.pool.connect();
    let result: IngestResult;
    try {
      for (const month of new Set(opened.map((o) => partitionFor(new Date(o.event.at)).name))) {
        const sample = opened.find((o) => partitionFor(new Date(o.event.at)).name === month)!;
        if (!this.partitions.has(month)) {
          await client.query('BEGIN');
          await this.ensurePartition(client, new Date(sample.event.at));
          await client.query('COMMIT');
        }
      }
      await client.query('BEGIN');
      const locked = await client.query('SELECT * FROM devices WHERE id = $1 FOR UPDATE', [batch.device]);
      if (!locked.rows[0]) throw new ProtocolError(403, 'unknown_device', `device ${batch.device} is not enrolled`);
      const device = toDevice(locked.rows[0]);

      // 3. What the hub already holds at these sequence numbers and just before them.
      const seqs = opened.map((o) => o.sealed.seq);
      const wanted = [...new Set([...seqs, ...seqs.map((s) => s - 1).filter((s) => s > 0)])];
      const held = new Map<number, { hash: string; prev: string }>();
      if (wanted.length > 0) {
        const { rows } = await client.query('SELECT seq, hash, prev FROM chain WHERE device = $1 AND seq = ANY($2::bigint[])', [batch.device, wanted]);
        for (const r of rows) held.set(Number(r.seq), { hash: r.hash, prev: r.prev });
      }
      const hashBefore = (seq: number): string | undefined => (seq === 0 ? GENESIS_HASH : held.get(seq)?.hash);

      // 4. Duplicates, forks, links.
      const fresh: { sealed: SealedEvent; event: AuditEvent }[] = [];
      let duplicates = 0;
      for (const o of opened) {
        const seq = o.sealed.seq;
        const existing = held.get(seq);
        if (existing) {
          if (existing.hash === o.sealed.hash) {
            duplicates++;
            continue;
          }
          refuse(
            'fork',
            seq,
            `event ${seq} differs from the one the hub already holds (${short(existing.hash)} there, ${short(o.sealed.hash)} now): the device's log was rewritten or truncated`,
            o.sealed.body.slice(0, 4096),
          );
          break;
        }
        const before = hashBefore(seq - 1);
        if (before !== undefined && before !== o.event.prev) {
          refuse(
            'broken_link',
            seq,
            `event ${seq} names predecessor ${short(o.event.prev)} but event ${seq - 1} hashes to ${short(before)}: an event was replaced, removed or reordered`,
            o.sealed.body.slice(0, 4096),
          );
          break;
        }
        held.set(seq, { hash: o.sealed.hash, prev: o.event.prev });
        fresh.push(o);
      }
      // A held event that the new one now precedes must link to it too.
      for (const o of fresh) {
        const next = held.get(o.sealed.seq + 1);
        if (next && !fresh.some((f) => f.sealed.seq === o.sealed.seq + 1) && next.prev !== o.sealed.hash) {
          flags.push({
            kind: 'broken_link',
            seq: o.sealed.seq + 1,
            message: `event ${o.sealed.seq + 1}, held earlier, does not link to event ${o.sealed.seq} that arrived now`,
          });
        }
      }

      if (fresh.length > 0) {
        const cols = {
          seq: fresh.map((f) => f.sealed.seq),
          id: fresh.map((f) => f.event.id),
          at: fresh.map((f) => f.event.at),
          type: fresh.map((f) => f.event.type),
          user: fresh.map((f) => f.event.user ?? null),
          client: fresh.map((f) => f.event.client ?? null),
          server: fresh.map((f) => f.event.server ?? null),
          name: fresh.map((f) => f.event.name ?? null),
          decision: fresh.map((f) => f.event.decision ?? null),
          hash: fresh.map((f) => f.sealed.hash),
          prev: fresh.map((f) => f.event.prev),
          body: fresh.map((f) => f.sealed.body),
        };
        await client.query(
          `INSERT INTO chain (device, seq, hash, prev, at) SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[])`,
          [batch.device, cols.seq, cols.hash, cols.prev, cols.at],
        );
        await client.query(
          `INSERT INTO events (device, seq, id, at, type, user_id, client, server, name, decision, hash, body)
           SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])`,
          [batch.device, cols.seq, cols.id, cols.at, cols.type, cols.user, cols.client, cols.server, cols.name, cols.decision, cols.hash, cols.body],
        );
        if (this.siemEnabled) {
          await client.query(`INSERT INTO siem_outbox (device, seq, hash, body) SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[])`, [
            batch.device,
            cols.seq,
            cols.hash,
            cols.body,
          ]);
        }
      }

      // 5. Checkpoints against the chain.
      if (checkpoints.length > 0) {
        const { rows } = await client.query('SELECT seq, hash FROM chain WHERE device = $1 AND seq = ANY($2::bigint[])', [
          batch.device,
          checkpoints.map((c) => c.seq),
        ]);
        const at = new Map(rows.map((r) => [Number(r.seq), r.hash as string]));
        const good = checkpoints.filter((c) => {
          const h = at.get(c.seq);
          if (h !== undefined && h !== c.hash) {
            refuse(
              'checkpoint_mismatch',
              c.seq,
              `the device signed ${short(c.hash)} for event ${c.seq} but the hub holds ${short(h)}: the log was rewritten`,
              JSON.stringify(c),
            );
            return false;
          }
          return true;
        });
        if (good.length > 0) {
          await client.query(
            `INSERT INTO checkpoints (device, seq, hash, at, key_id, signature) SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING`,
            [batch.device, good.map((c) => c.seq), good.map((c) => c.hash), good.map((c) => c.at), good.map((c) => c.keyId), good.map((c) => c.signature)],
          );
        }
      }

      // 6. The ack: as far as events are held, each linked to the one before.
      let acked = device.acked;
      let ackedHash = device.ackedHash;
      const highest = Math.max(device.highest, ...fresh.map((f) => f.sealed.seq));
      if (highest > acked) {
        const inBatch = fresh.length > 0 && fresh[0]!.sealed.seq === acked + 1;
        const rows = inBatch
          ? fresh.map((f) => ({ seq: f.sealed.seq, hash: f.sealed.hash, prev: f.event.prev }))
          : (await client.query('SELECT seq, hash, prev FROM chain WHERE device = $1 AND seq > $2 ORDER BY seq LIMIT 100000', [batch.device, acked])).rows.map(
              (r) => ({
                seq: Number(r.seq),
                hash: r.hash as string,
                prev: r.prev as string,
              }),
            );
        for (const r of rows) {
          if (r.seq !== acked + 1) break;
          if (r.prev !== ackedHash) {
            flags.push({ kind: 'broken_link', seq: r.seq, message: `event ${r.seq} does not link to event ${acked}` });
            break;
          }
          acked = r.seq;
          ackedHash = r.hash;
        }
        if (inBatch && acked === fresh[fresh.length - 1]!.sealed.seq && highest > acked) {
          // Later events were held already (they arrived before a gap was filled): keep walking.
          const more = await client.query('SELECT seq, hash, prev FROM chain WHERE device = $1 AND seq > $2 ORDER BY seq LIMIT 100000', [batch.device, acked]);
          for (const r of more.rows) {
            if (Number(r.seq) !== acked + 1 || r.prev !== ackedHash) break;
            acked = Number(r.seq);
            ackedHash = r.hash;
          }
        }
        if (highest > acked && !flags.some((f) => f.kind === 'broken_link')) {
          const nextHeld = (await client.query('SELECT min(seq) AS s FROM chain WHERE device = $1 AND seq > $2', [batch.device, acked])).rows[0]?.s;
          if (nextHeld !== null && nextHeld !== undefined && Number(nextHeld) > acked + 1) {
            flags.push({ kind: 'gap', seq: acked + 1, message: `events ${acked + 1}–${Number(nextHeld) - 1} have not arrived; later events have` });
          }
        }
      }
      await client.query('UPDATE devices SET acked_seq = $2, acked_hash = $3, highest_seq = $4, last_seen_at = now() WHERE id = $1', [
        batch.device,
        acked,
        ackedHash,
        highest,
      ]);
      await client.query(`UPDATE flags SET resolved_at = now() WHERE device = $1 AND kind = 'gap' AND resolved_at IS NULL AND seq <= $2`, [
        batch.device,
        acked,
      ]);
      for (const f of flags) {
        await client.query(
          `INSERT INTO flags (device, kind, seq, message, evidence) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (device, kind, seq) DO UPDATE SET last_seen = now(), count = flags.count + 1, message = excluded.message`,
          [batch.device, f.kind, f.seq, f.message, f.evidence ?? null],
        );
      }
      await client.query('COMMIT');
      result = {
        device: batch.device,
        acked,
        accepted: fresh.length,
        duplicates,
        flags: flags.map(({ kind, seq, message }) => ({ kind, seq, message })),
        ...(refused ? { refused } : {}),
      };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (error instanceof ProtocolError) throw error;
      throw new GatehouseError('hub_store', `the hub could not store the batch: ${errorMessage(error)}`, { cause: error });
    } finally {
      client.release();
    }
    return result;
  }

  // --- Admin queries -------------------------------------------------------------------------

  async query(filter: AuditFilter): Promise<{ device: string; seq: number; hash: string; event: AuditEvent }[]> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      conditions.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.from) add('at >= ?', filter.from);
    if (filter.to) add('at < ?', filter.to);
    if (filter.user) add('user_id = ?', filter.user);
    if (filter.client) add('client = ?', filter.client);
    if (filter.server) add('server = ?', filter.server);
    if (filter.tool) add('name = ?', filter.tool);
    if (filter.decision) add('decision = ?', filter.decision);
    if (filter.type) add('type = ?', filter.type);
    if (filter.device) add('device = ?', filter.device);
    const forward = filter.afterSeq !== undefined && filter.device !== undefined;
    if (forward) add('seq > ?', filter.afterSeq);
    params.push(filter.limit ?? 100);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const order = forward ? 'seq ASC' : 'at DESC, device, seq DESC';
    const { rows } = await this.readPool.query(`SELECT device, seq, hash, body FROM events ${where} ORDER BY ${order} LIMIT $${params.length}`, params);
    const out = rows.map((r) => ({ device: r.device as string, seq: Number(r.seq), hash: r.hash as string, event: JSON.parse(r.body) as AuditEvent }));
    return forward ? out : out.reverse();
  }

  // --- The catalogue across the fleet (docs/catalog.md) ----------------------------------------

  /**
   * How many devices saw each tool definition, per server and version, from the devices'
   * `catalog.tools_seen` events (each device counts once per definition, however often it reported).
   */
  async toolDefinitions(server?: string): Promise<BaselineRow[]> {
    const params: unknown[] = [];
    let where = "type = 'catalog.tools_seen'";
    if (server !== undefined) {
      params.push(server);
      where += ` AND server = $1`;
    }
    const { rows } = await this.readPool.query(
      `SELECT server, version, tool, sha256, count(DISTINCT device)::int AS devices, max(at) AS last_seen
         FROM (SELECT device, at, server, body::jsonb->'detail'->>'version' AS version, t.key AS tool, t.value AS sha256
                 FROM events, jsonb_each_text(body::jsonb->'detail'->'tools') AS t
                WHERE ${where}) seen
        GROUP BY server, version, tool, sha256
        ORDER BY server, version, tool, devices DESC`,
      params,
    );
    return rows.map((r) => ({
      server: r.server as string,
      version: (r.version as string | null) ?? 'unknown',
      tool: r.tool as string,
      sha256: r.sha256 as string,
      devices: Number(r.devices),
      lastSeen: new Date(r.last_seen as string).toISOString(),
    }));
  }

  /** Servers devices' clients run outside Gatehouse: the newest report of each (device, client, name). */
  async shadowServers(): Promise<
    { device: string; host: string; at: string; client: string; name: string; type: string; target: string; envKeys: string[]; inCatalog?: string }[]
  > {
    const { rows } = await this.readPool.query(
      `SELECT DISTINCT ON (e.device, e.client, e.server) e.device, d.host, e.at, e.client, e.server, e.body
         FROM events e JOIN devices d ON d.id = e.device
        WHERE e.type = 'catalog.shadow_server'
        ORDER BY e.device, e.client, e.server, e.at DESC`,
    );
    return rows.map((r) => {
      const detail = ((JSON.parse(r.body as string) as AuditEvent).detail ?? {}) as { type?: string; target?: string; envKeys?: string[]; inCatalog?: string };
      return {
        device: r.device as string,
        host: r.host as string,
        at: new Date(r.at as string).toISOString(),
        client: (r.client as string | null) ?? '',
        name: (r.server as string | null) ?? '',
        type: detail.type ?? '',
        target: detail.target ?? '',
        envKeys: detail.envKeys ?? [],
        ...(detail.inCatalog ? { inCatalog: detail.inCatalog } : {}),
      };
    });
  }

  // --- The fleet view (src/common/fleet.ts) ------------------------------------------------------

  /**
   * Every device with what the fleet view shows: its newest user and policy version (each from the
   * newest event that carries one, found through the (device, seq) key, newest first), its ack and
   * its open flags. Read from the read pool.
   */
  async fleet(): Promise<FleetDevice[]> {
    const { rows } = await this.readPool.query(
      `SELECT d.*,
              (SELECT e.user_id FROM events e WHERE e.device = d.id AND e.user_id IS NOT NULL ORDER BY e.seq DESC LIMIT 1) AS last_user,
              p.body::jsonb->>'policyVersion' AS policy_version,
              p.body::jsonb->>'policyMode' AS policy_mode,
              (SELECT coalesce(jsonb_object_agg(kind, n), '{}'::jsonb)
                 FROM (SELECT kind, count(*)::int AS n FROM flags f WHERE f.device = d.id AND f.resolved_at IS NULL GROUP BY kind) k) AS open_flags
         FROM devices d
         LEFT JOIN LATERAL (SELECT e.body FROM events e WHERE e.device = d.id AND e.body LIKE '%"policyVersion"%' ORDER BY e.seq DESC LIMIT 1) p ON true
        ORDER BY d.id`,
    );
    return rows.map((r) => {
      const d = toDevice(r);
      return {
        id: d.id,
        host: d.host,
        status: d.status,
        enrolledAt: d.enrolledAt,
        lastSeenAt: d.lastSeenAt,
        acked: d.acked,
        highest: d.highest,
        user: (r.last_user as string | null) ?? null,
        policyVersion: (r.policy_version as string | null) ?? null,
        policyMode: (r.policy_mode as string | null) ?? null,
        openFlags: r.open_flags as FleetDevice['openFlags'],
      };
    });
  }

  /** Refusals and approvals across the fleet in `buckets` equal buckets of [from, to). */
  async timeline(from: Date, to: Date, buckets: number): Promise<FleetTimeline> {
    const bucketMs = Math.max(1, Math.ceil((to.getTime() - from.getTime()) / buckets));
    const { rows } = await this.readPool.query(
      `SELECT floor(extract(epoch FROM at - $1::timestamptz) * 1000 / $3)::int AS bucket,
              count(*) FILTER (WHERE decision = 'denied' AND type NOT LIKE 'approval.%')::int AS refused,
              count(*) FILTER (WHERE type = 'approval.requested')::int AS asked,
              count(*) FILTER (WHERE type = 'approval.decided' AND decision = 'allowed')::int AS approved,
              count(*) FILTER (WHERE type = 'approval.decided' AND decision <> 'allowed')::int AS declined
         FROM events
        WHERE at >= $1 AND at < $2 AND (decision = 'denied' OR type IN ('approval.requested', 'approval.decided'))
        GROUP BY 1`,
      [from.toISOString(), to.toISOString(), bucketMs],
    );
    const zeros = () => new Array<number>(buckets).fill(0);
    const out: FleetTimeline = {
      from: from.toISOString(),
      to: to.toISOString(),
      bucketMs,
      refused: zeros(),
      approvalsAsked: zeros(),
      approved: zeros(),
      declined: zeros(),
    };
    for (const r of rows) {
      const i = Number(r.bucket);
      if (i < 0 || i >= buckets) continue;
      out.refused[i] = r.refused;
      out.approvalsAsked[i] = r.asked;
      out.approved[i] = r.approved;
      out.declined[i] = r.declined;
    }
    return out;
  }

  // --- Gauges for /metrics (src/hub/metrics.ts) -----------------------------------------------

  /** What the scraper reads at each scrape: one query per table, none per device. */
  async metricsSnapshot(): Promise<MetricsSnapshot> {
    // One after the other: a scrape holds at most one of the pool's connections.
    const devices = await this.pool.query(
      `SELECT id, status, acked_seq, highest_seq, extract(epoch FROM now() - last_seen_at) AS age FROM devices ORDER BY id`,
    );
    const flags = await this.pool.query(
      `SELECT device, kind, count(*)::int AS n FROM flags WHERE resolved_at IS NULL GROUP BY device, kind ORDER BY device, kind`,
    );
    const outbox = await this.pool.query(`SELECT count(*)::int AS n, extract(epoch FROM now() - min(enqueued_at)) AS oldest FROM siem_outbox`);
    return {
      devices: devices.rows.map((r) => ({
        id: r.id as string,
        status: r.status as DeviceRow['status'],
        unacked: Number(r.highest_seq) - Number(r.acked_seq),
        syncAgeSeconds: r.age === null ? null : Math.max(0, Number(r.age)),
      })),
      openFlags: flags.rows.map((r) => ({ device: r.device as string, kind: r.kind as FlagKind, count: r.n as number })),
      outbox: { events: outbox.rows[0].n as number, oldestSeconds: outbox.rows[0].oldest === null ? null : Math.max(0, Number(outbox.rows[0].oldest)) },
    };
  }

  // --- SIEM outbox ---------------------------------------------------------------------------

  /**
   * Hands up to `limit` waiting events to `send`; they leave the outbox only if it resolves. Rows
   * are locked with SKIP LOCKED, so several hub instances forward without sending an event twice
   * (a crash between sending and committing can repeat it: the SIEM deduplicates on the event id).
   */
  async forward(
    limit: number,
    send: (rows: { device: string; seq: number; hash: string; body: string }[], hosts: Map<string, string>) => Promise<void>,
  ): Promise<number> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query('SELECT id, device, seq, hash, body FROM siem_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED', [limit]);
      if (rows.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      const devices = [...new Set(rows.map((r) => r.device as string))];
      const hostRows = await client.query('SELECT id, host FROM devices WHERE id = ANY($1::text[])', [devices]);
      const hosts = new Map(hostRows.rows.map((r) => [r.id as string, r.host as string]));
      await send(
        rows.map((r) => ({ device: r.device, seq: Number(r.seq), hash: r.hash, body: r.body })),
        hosts,
      );
      await client.query('DELETE FROM siem_outbox WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
      await client.query('COMMIT');
      return rows.length;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  // --- Policy bundles ------------------------------------------------------------------------

  async publishBundle(bytes: Uint8Array, contentType: string): Promise<string> {
    const etag = `"sha256-${createHash('sha256').update(bytes).digest('hex')}"`;
    await this.pool.query('INSERT INTO bundles (etag, content_type, bytes) VALUES ($1, $2, $3)', [etag, contentType, Buffer.from(bytes)]);
    return etag;
  }

  async currentBundle(): Promise<{ etag: string; contentType: string; bytes: Buffer; publishedAt: string } | undefined> {
    const { rows } = await this.pool.query('SELECT etag, content_type, bytes, published_at FROM bundles ORDER BY id DESC LIMIT 1');
    const r = rows[0];
    return r ? { etag: r.etag, contentType: r.content_type, bytes: r.bytes, publishedAt: iso(r.published_at)! } : undefined;
  }
}

function toDevice(r: Record<string, unknown>): DeviceRow {
  return {
    id: r.id as string,
    publicKey: r.public_key as string,
    keyId: r.key_id as string,
    host: r.host as string,
    status: r.status as DeviceRow['status'],
    enrolledAt: iso(r.enrolled_at)!,
    lastSeenAt: iso(r.last_seen_at),
    acked: Number(r.acked_seq),
    ackedHash: r.acked_hash as string,
    highest: Number(r.highest_seq),
    checkpoint: Number(r.checkpoint_seq ?? 0),
  };
}

function iso(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : String(value);
}
