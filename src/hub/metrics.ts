/**
 * The hub's Prometheus metrics (`GET /metrics`, text format 0.0.4). One registry per hub
 * instance, built by `startHub`: no module-level state, so several instances in one process (the
 * tests) keep their counts apart.
 *
 * Counters and the batch histogram are this instance's own (Prometheus sums them over instances);
 * the fleet gauges (devices, flags, outbox) are read from PostgreSQL at each scrape and are the
 * same from every instance (query them with `max by (...)`, not `sum`). Per-device series carry
 * the device id only, never the host or the user: the id is what the admin API and the fleet view
 * use, and the label set stays bounded by the number of enrolled devices.
 */
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FLAG_KINDS } from '../common/fleet.js';
import type { FlagKind } from '../core/audit/protocol.js';
import type { HubStore } from './store.js';

// Every kind of integrity flag has a series (at 0) before the first flag of its kind: the list must be the protocol's.
FLAG_KINDS satisfies readonly FlagKind[];

/** The routes requests are counted under: a fixed set, whatever paths clients send. */
export type HubRoute = 'healthz' | 'metrics' | 'enrol' | 'device' | 'events' | 'bundle' | 'admin' | 'fleet' | 'other';

export type BatchOutcome = 'stored' | 'refused' | 'failed';

export interface MetricsSources {
  store: HubStore;
  /** Each connection pool by name (`primary`, and `read` when admin queries have a replica of their own). */
  pools: Record<string, pg.Pool>;
}

export class HubMetrics {
  readonly registry = new Registry();
  private readonly events: Counter<'result'>;
  private readonly batches: Histogram<'outcome'>;
  private readonly requests: Counter<'route' | 'status'>;
  private readonly siemSent: Counter;
  private readonly siemFailures: Counter;
  private readonly beforeScrape: () => void;
  private readonly afterScrape: () => void;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    this.events = new Counter({
      name: 'gatehouse_hub_events_ingested_total',
      help: 'Audit events received in device batches: stored (new) or duplicate (already held, not stored again).',
      labelNames: ['result'],
      registers,
    });
    this.batches = new Histogram({
      name: 'gatehouse_hub_batch_duration_seconds',
      help: 'Time to take one signed, well-formed device batch, from its request to the answer: stored, refused (a forged event) or failed (database).',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.requests = new Counter({
      name: 'gatehouse_hub_http_requests_total',
      help: 'HTTP requests by route and status code.',
      labelNames: ['route', 'status'],
      registers,
    });
    this.siemSent = new Counter({ name: 'gatehouse_hub_siem_forwarded_total', help: 'Events the SIEM receiver accepted from this instance.', registers });
    this.siemFailures = new Counter({
      name: 'gatehouse_hub_siem_failures_total',
      help: 'Forwarding rounds the SIEM receiver refused or did not answer (the events stay in the outbox).',
      registers,
    });
    for (const result of ['stored', 'duplicate']) this.events.inc({ result }, 0);

    // The pools as they were when the scrape arrived, before its own queries took a connection.
    let poolsAtScrape: Record<string, { total: number; idle: number; waiting: number }> | undefined;
    const pools = () => poolsAtScrape ?? readPools(sources.pools);
    this.beforeScrape = () => (poolsAtScrape = readPools(sources.pools));
    this.afterScrape = () => (poolsAtScrape = undefined);

    // The fleet, read from the database once per scrape by the first gauge; the others reuse it.
    let snapshot: ReturnType<HubStore['metricsSnapshot']> | undefined;
    const read = () => (snapshot ??= sources.store.metricsSnapshot().finally(() => setImmediate(() => (snapshot = undefined))));

    new Gauge({
      name: 'gatehouse_hub_devices',
      help: 'Enrolled devices by status.',
      labelNames: ['status'],
      registers,
      async collect() {
        const { devices } = await read();
        for (const status of ['active', 'revoked'] as const) this.set({ status }, devices.filter((d) => d.status === status).length);
      },
    });
    new Gauge({
      name: 'gatehouse_hub_device_sync_age_seconds',
      help: 'Seconds since each active device last sent a batch (the hub-side lag; devices that never synced are left out).',
      labelNames: ['device'],
      registers,
      async collect() {
        this.reset();
        for (const d of (await read()).devices) if (d.status === 'active' && d.syncAgeSeconds !== null) this.set({ device: d.id }, d.syncAgeSeconds);
      },
    });
    new Gauge({
      name: 'gatehouse_hub_device_unacked_events',
      help: "Sequence numbers between each active device's ack and the highest event the hub holds from it: events missing in a gap and those held after it.",
      labelNames: ['device'],
      registers,
      async collect() {
        this.reset();
        for (const d of (await read()).devices) if (d.status === 'active') this.set({ device: d.id }, d.unacked);
      },
    });
    new Gauge({
      name: 'gatehouse_hub_device_open_flags',
      help: 'Unresolved integrity flags per device and kind (gap, fork, broken_link, bad_hash, bad_signature, malformed, checkpoint_mismatch).',
      labelNames: ['device', 'kind'],
      registers,
      async collect() {
        this.reset();
        for (const f of (await read()).openFlags) this.set({ device: f.device, kind: f.kind }, f.count);
      },
    });
    new Gauge({
      name: 'gatehouse_hub_open_flags',
      help: 'Unresolved integrity flags across the fleet, by kind; alert on gap and fork above 0.',
      labelNames: ['kind'],
      registers,
      async collect() {
        const { openFlags } = await read();
        for (const kind of FLAG_KINDS)
          this.set(
            { kind },
            openFlags.filter((f) => f.kind === kind).reduce((n, f) => n + f.count, 0),
          );
      },
    });
    new Gauge({
      name: 'gatehouse_hub_siem_outbox_events',
      help: 'Events waiting in the outbox for the SIEM.',
      registers,
      async collect() {
        this.set((await read()).outbox.events);
      },
    });
    new Gauge({
      name: 'gatehouse_hub_siem_outbox_oldest_seconds',
      help: 'Age of the oldest event waiting for the SIEM (0 when the outbox is empty).',
      registers,
      async collect() {
        this.set((await read()).outbox.oldestSeconds ?? 0);
      },
    });
    new Gauge({
      name: 'gatehouse_hub_db_pool_connections',
      help: 'PostgreSQL connections of this instance by pool and state: total (open), idle, and waiting (requests queued for a connection).',
      labelNames: ['pool', 'state'],
      registers,
      collect() {
        for (const [name, p] of Object.entries(pools())) for (const [state, n] of Object.entries(p)) this.set({ pool: name, state }, n);
      },
    });
  }

  batch(outcome: BatchOutcome, seconds: number, counts?: { stored: number; duplicates: number }): void {
    this.batches.observe({ outcome }, seconds);
    if (counts) {
      this.events.inc({ result: 'stored' }, counts.stored);
      this.events.inc({ result: 'duplicate' }, counts.duplicates);
    }
  }

  request(route: HubRoute, status: number): void {
    this.requests.inc({ route, status: String(status) });
  }

  forwarded(events: number): void {
    this.siemSent.inc(events);
  }

  forwardFailed(): void {
    this.siemFailures.inc();
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    this.beforeScrape();
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.afterScrape();
    }
  }
}

function readPools(pools: Record<string, pg.Pool>): Record<string, { total: number; idle: number; waiting: number }> {
  return Object.fromEntries(Object.entries(pools).map(([name, p]) => [name, { total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount }]));
}

/** The route a request is counted under. */
export function routeOf(path: string): HubRoute {
  if (path === '/healthz') return 'healthz';
  if (path === '/metrics') return 'metrics';
  if (path === '/v1/enrol') return 'enrol';
  if (/^\/v1\/devices\/[^/]+\/events$/.test(path)) return 'events';
  if (/^\/v1\/devices\/[^/]+$/.test(path)) return 'device';
  if (path === '/v1/bundle') return 'bundle';
  if (path.startsWith('/v1/admin/')) return 'admin';
  if (path === '/fleet' || path.startsWith('/fleet/')) return 'fleet';
  return 'other';
}
