/**
 * Quotas and approvals, with their stores: the bundle's rate limits and quotas counted in
 * quotas.db so a restart resets nothing, and approvals asked in the human channel, journalled in
 * approvals.db so requests a crash interrupts are refused and audited at the next start
 * (docs/approvals.md).
 */
import { join } from 'node:path';
import { errorMessage } from '../../common/errors.js';
import { ApprovalBroker } from '../../core/approvals/broker.js';
import type { HumanChannel } from '../../core/human/channel.js';
import type { BundlePolicy } from '../../core/policy/bundle-policy.js';
import { systemClock, type AuditRecord, type Logger } from '../../core/ports.js';
import { QuotaGovernor } from '../../core/quotas/governor.js';
import type { SessionKeys } from '../../core/quotas/session.js';
import { APPROVALS_DB_FILE, SqliteApprovalJournal } from '../approvals/sqlite-journal.js';
import { QUOTA_DB_FILE, SqliteQuotaStore } from '../quotas/sqlite-quota-store.js';

/** How often expired quota windows are swept from quotas.db. */
const QUOTA_SWEEP_MS = 3_600_000;

export interface Governance {
  quotas: QuotaGovernor;
  approvals: ApprovalBroker;
  /** Refuses (and audits) every waiting approval; calls still in flight may go on spending quota. */
  stopAsking(): Promise<void>;
  /** Closes both stores, once nothing can call any more. */
  close(): void;
}

export interface GovernanceOptions {
  stateDir: string;
  bundlePolicy: BundlePolicy;
  channel: HumanChannel;
  sessions: SessionKeys;
  record(entry: AuditRecord): void;
  logger: Logger;
  /** How long a request waits for its answer, read at each request. */
  approvalTimeoutMs?: number | (() => number);
}

export function openGovernance(options: GovernanceOptions): Governance {
  const { bundlePolicy, logger, record } = options;
  const catalogTool = (server: string, tool: string) => {
    const state = bundlePolicy.state;
    return state.kind === 'enforcing' ? state.evaluator.catalogTool(server, tool) : undefined;
  };
  const quotaStore = new SqliteQuotaStore(join(options.stateDir, QUOTA_DB_FILE));
  const sweep = setInterval(() => {
    try {
      quotaStore.sweep(Date.now());
    } catch (error) {
      logger.log('error', 'quota.sweep_failed', { error: errorMessage(error) });
    }
  }, QUOTA_SWEEP_MS);
  sweep.unref();
  const quotas = new QuotaGovernor({
    store: quotaStore,
    clock: systemClock,
    settings: () => (bundlePolicy.state.kind === 'enforcing' ? bundlePolicy.state.evaluator.bundle.content.quotas : undefined),
    version: () => bundlePolicy.version,
    tool: catalogTool,
    sessions: options.sessions,
    audit: record,
    logger,
  });
  const journal = new SqliteApprovalJournal(join(options.stateDir, APPROVALS_DB_FILE));
  const approvals = new ApprovalBroker({
    channel: options.channel,
    clock: systemClock,
    journal,
    sessions: options.sessions,
    audit: record,
    logger,
    tool: catalogTool,
    ...(options.approvalTimeoutMs !== undefined ? { timeoutMs: options.approvalTimeoutMs } : {}),
  });
  // Requests that waited when Gatehouse last stopped (or died) are refused and audited, never carried over.
  approvals.recover();
  return {
    quotas,
    approvals,
    stopAsking: async () => {
      clearInterval(sweep);
      await approvals.close();
    },
    close: () => {
      quotaStore.close();
      journal.close();
    },
  };
}
