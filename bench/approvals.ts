/**
 * What the quota and approval stages add to one governed call on the hot path, in process: the two
 * stages wrapped around a handler that answers at once, timed per call, for
 *
 * - `baseline`: no quotas, no approvals (`NoQuotas`, `NoApprovals`), what the chain cost before;
 * - `unmatched`: a bundle's rate limit and quotas in force, none of which counts this tool (a
 *   read-only tool under write quotas: a cached rule lookup);
 * - `sqlite`: the sample bundle's shape, all matching (a rate limit per user, client and tool, a
 *   day quota and a session quota on a write tool), with the SQLite store the daemon uses: every
 *   call checks three counters and writes them through in one transaction;
 * - `memory`: the same with the in-memory store, to show what the write-through costs.
 *
 * No call needs approval here: a call that does waits for a person, and no benchmark of that means
 * anything. `quotaStageBench()` returns the figures (µs per call) and, run directly
 * (`node dist/bench/approvals.js`), prints them. The BRIEF's budget for a whole governed call is
 * p50 0.3 ms added latency.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApprovalBroker } from '../src/core/approvals/broker.js';
import { MemoryJournal } from '../src/core/approvals/journal.js';
import type { GovernedCall, Handler } from '../src/core/chain.js';
import { chain } from '../src/core/chain.js';
import { NoApprovals, NoQuotas, type ApprovalPort, type QuotaPort } from '../src/core/governance.js';
import { systemClock } from '../src/core/ports.js';
import type { Principal } from '../src/core/principal.js';
import { QuotaGovernor } from '../src/core/quotas/governor.js';
import { SessionKeys } from '../src/core/quotas/session.js';
import type { QuotaSettings } from '../src/core/quotas/settings.js';
import { MemoryQuotaStore, type QuotaStore } from '../src/core/quotas/store.js';
import { approvalStage, quotaStage } from '../src/core/stages.js';
import { SqliteQuotaStore } from '../src/node/quotas/sqlite-quota-store.js';
import { summarize, type Summary } from './lib/stats.js';

export interface QuotaStageBenchResult {
  calls: number;
  /** Per call, in microseconds, through the quota and approval stages. */
  perCallUs: Record<'baseline' | 'unmatched' | 'sqlite' | 'memory', Summary>;
  /** p50 over the baseline, in microseconds. */
  addedP50Us: Record<'unmatched' | 'sqlite' | 'memory', number>;
}

/** The sample bundle's shape, with limits no benchmark reaches. */
const SETTINGS: QuotaSettings = {
  rateLimits: [
    { id: 'calls-per-tool', per: ['user', 'client', 'tool'], calls: 1_000_000_000, intervalMs: 60_000, burst: 1_000_000_000, tools: { kind: 'all' } },
  ],
  quotas: [
    { id: 'writes-per-day', window: 'day', per: ['user'], limit: 1_000_000_000, approvalAfter: 999_999_999, tools: { kind: 'writes' } },
    { id: 'writes-per-session', window: 'session', per: ['user'], limit: 1_000_000_000, tools: { kind: 'writes' } },
  ],
};

const UNMATCHED: QuotaSettings = { rateLimits: [{ ...SETTINGS.rateLimits[0]!, tools: { kind: 'names', patterns: ['other__*'] } }], quotas: SETTINGS.quotas };

const PRINCIPAL: Principal = {
  user: { id: 'sam@example.com', source: 'oidc', displayName: 'Sam', groups: ['crm-support'], roles: ['support'] },
  client: { id: 'client:bench:k', name: 'bench', verified: true, transport: 'socket' },
};

function call(name: string): GovernedCall {
  return {
    id: 'bench',
    kind: 'tool',
    server: 'crm',
    name,
    arguments: { contact_id: 'c-1', amount: 12, currency: 'EUR' },
    principal: PRINCIPAL,
    context: { signal: new AbortController().signal },
    facts: {},
  };
}

const answer: Handler = async () => ({ kind: 'ok', result: { content: [] } });

function governor(store: QuotaStore, settings: QuotaSettings): QuotaGovernor {
  return new QuotaGovernor({
    store,
    clock: systemClock,
    settings: () => settings,
    tool: (_server, name) => ({ readOnly: name === 'search_contacts', destructive: false }),
    sessions: new SessionKeys(),
    audit: () => undefined,
  });
}

function broker(): ApprovalBroker {
  return new ApprovalBroker({
    channel: { ask: async () => ({ kind: 'declined' }), pending: () => 0 },
    clock: systemClock,
    journal: new MemoryJournal(),
    sessions: new SessionKeys(),
    audit: () => undefined,
    logger: { log: () => undefined },
  });
}

async function time(quota: QuotaPort, approval: ApprovalPort, tool: string, calls: number): Promise<Summary> {
  const handle = chain(quotaStage(quota), approvalStage(approval))(answer);
  for (let i = 0; i < Math.min(2000, calls); i++) await handle(call(tool));
  const samples: number[] = new Array(calls);
  for (let i = 0; i < calls; i++) {
    const c = call(tool);
    const t0 = performance.now();
    const outcome = await handle(c);
    samples[i] = (performance.now() - t0) * 1000;
    if (outcome.kind !== 'ok') throw new Error(`the benchmark call was refused: ${JSON.stringify(outcome)}`);
  }
  return summarize(samples);
}

export async function quotaStageBench(options: { calls?: number; log?: (line: string) => void } = {}): Promise<QuotaStageBenchResult> {
  const calls = options.calls ?? 20_000;
  const log = options.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-quota-'));
  const sqlite = new SqliteQuotaStore(join(dir, 'quotas.db'));
  try {
    const perCallUs = {
      baseline: await time(new NoQuotas(), new NoApprovals(), 'refund', calls),
      unmatched: await time(governor(new MemoryQuotaStore(), UNMATCHED), broker(), 'search_contacts', calls),
      sqlite: await time(governor(sqlite, SETTINGS), broker(), 'refund', calls),
      memory: await time(governor(new MemoryQuotaStore(), SETTINGS), broker(), 'refund', calls),
    };
    const added = (s: Summary) => s.p50 - perCallUs.baseline.p50;
    const result = {
      calls,
      perCallUs,
      addedP50Us: { unmatched: added(perCallUs.unmatched), sqlite: added(perCallUs.sqlite), memory: added(perCallUs.memory) },
    };
    for (const [name, s] of Object.entries(perCallUs)) log(`  quota+approval stages, ${name}: p50 ${s.p50.toFixed(1)} µs, p99 ${s.p99.toFixed(1)} µs per call`);
    log(
      `  added at p50: ${result.addedP50Us.unmatched.toFixed(1)} µs unmatched, ${result.addedP50Us.sqlite.toFixed(1)} µs with 3 counters in SQLite, ${result.addedP50Us.memory.toFixed(1)} µs in memory`,
    );
    return result;
  } finally {
    sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await quotaStageBench({ log: (line) => process.stderr.write(line + '\n') });
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}
