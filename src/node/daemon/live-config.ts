/**
 * The configuration in force and the user's restrictions drawn from it. A reload reads the file
 * again; a file that does not validate leaves everything running as it was (and says why), and a
 * valid one is applied by touching only what changed. `listen` and `limits` take effect at the
 * next start.
 */
import type { GatehouseConfig } from '../../common/config.js';
import type { ReloadReport } from '../../common/control-api.js';
import { LocalAsking } from '../../core/approvals/local-rules.js';
import { Restrictions } from '../../core/policy/narrowing.js';
import type { AuditRecord, Logger } from '../../core/ports.js';
import type { ApplyResult } from '../../core/supervisor/supervisor.js';
import type { LoadResult } from '../config-file.js';

/** Settings read once at start; a reload that changes them logs that a restart is needed. */
const RESTART_FIELDS = ['listen', 'limits', 'humanPage', 'telemetry'] as const;

export interface LiveConfigHooks {
  load(): Promise<LoadResult>;
  logger: Logger;
  record(entry: AuditRecord): void;
  /** The user's restrictions changed: every principal's lists may differ. */
  restrictionsChanged(): void;
  /** Brings the running servers in line with the configuration in force. */
  applyServers(): Promise<ApplyResult>;
}

export class LiveConfig {
  private current: GatehouseConfig;
  private restricted: Restrictions;
  private askRules: LocalAsking;
  private reloading: Promise<ReloadReport> = Promise.resolve({ ok: true, added: [], removed: [], restarted: [], unchanged: [] });

  constructor(
    first: GatehouseConfig,
    private readonly hooks: LiveConfigHooks,
  ) {
    this.current = first;
    this.restricted = new Restrictions(first.restrict);
    this.askRules = new LocalAsking(first.approvals);
  }

  get config(): GatehouseConfig {
    return this.current;
  }

  get restrictions(): Restrictions {
    return this.restricted;
  }

  /** The user's own approval rules (`approvals.ask`, `approvals.askBeforeWrites`). */
  get asking(): LocalAsking {
    return this.askRules;
  }

  /** Reloads are queued: each starts once the one before has settled. */
  reload(): Promise<ReloadReport> {
    this.reloading = this.reloading.then(() => this.reloadNow());
    return this.reloading;
  }

  private async reloadNow(): Promise<ReloadReport> {
    const { logger, record } = this.hooks;
    const next = await this.hooks.load();
    if (!next.ok) {
      // The running configuration stays.
      logger.log('error', 'config.rejected', { error: next.error });
      record({ type: 'config.rejected', at: new Date().toISOString(), reason: next.error });
      return { ok: false, error: next.error, added: [], removed: [], restarted: [], unchanged: [] };
    }
    const restartNeeded = RESTART_FIELDS.filter((key) => JSON.stringify(next.config[key]) !== JSON.stringify(this.current[key]));
    if (restartNeeded.length > 0) {
      logger.log('warn', 'config.restart_needed', { fields: restartNeeded, note: 'these settings take effect when Gatehouse restarts' });
    }
    const restrictChanged = JSON.stringify(next.config.restrict) !== JSON.stringify(this.current.restrict);
    this.current = next.config;
    this.askRules = new LocalAsking(this.current.approvals);
    if (restrictChanged) {
      this.restricted = new Restrictions(this.current.restrict);
      this.hooks.restrictionsChanged();
    }
    const result = await this.hooks.applyServers();
    logger.log('info', 'config.applied', { ...result });
    record({ type: 'config.applied', at: new Date().toISOString(), detail: { ...result } });
    return { ok: true, ...result };
  }
}
