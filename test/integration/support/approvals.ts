/**
 * For the approval and quota tests: a real Gatehouse under a signed bundle (as in ./policy.ts) whose
 * terminal is the test's screen (test/support/screen.ts), which can be restarted on the same home; a
 * person who answers on the real question page over HTTP, exactly as their browser would (open the
 * address the terminal shows, type the code shown beside it, post the form); and readers for the CRM
 * fixture's call log and the audit log.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DaemonStatus } from '../../../src/common/status.js';
import type { AuditEvent } from '../../../src/core/audit/event.js';
import type { Logger } from '../../../src/core/ports.js';
import { MemorySecretStore } from '../../../src/core/secrets.js';
import { queryEvents } from '../../../src/node/audit/query.js';
import { openForReading } from '../../../src/node/audit/schema.js';
import { ClientRegistry } from '../../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../../src/node/daemon.js';
import type { GatehousePaths } from '../../../src/node/paths.js';
import type { TestIdentity } from '../../../src/node/policy/static-identity.js';
import type { TestKey } from '../../support/policy.js';
import { Screen, type ShownQuestion } from '../../support/screen.js';
import { eventually, makeHome } from './gatehouse.js';

export { PagePerson as Person, type PageAnswer } from '../../support/screen.js';

export interface ApprovalOptions {
  roots: TestKey[];
  bundle: Buffer;
  identity: TestIdentity;
  /** How long a call waits for the person (default: the daemon's). */
  timeoutMs?: number;
  clients?: string[];
  /** A home made earlier with `prepareHome` (another daemon ran there before). */
  home?: PreparedHome;
}

export interface PreparedHome {
  home: string;
  paths: GatehousePaths;
  env: NodeJS.ProcessEnv;
  managedDir: string;
  tokens: Record<string, string>;
}

/** A throwaway home with the managed settings, the bundle, a config with HTTP on, and registered clients. */
export function prepareHome(options: Pick<ApprovalOptions, 'roots' | 'bundle' | 'clients'>): PreparedHome {
  const { home, paths, env } = makeHome('gh-approval-');
  const managedDir = writeManagedDir(home, options.roots, options.bundle);
  writeFileSync(paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } } }), { mode: 0o600 });
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  const tokens = Object.fromEntries((options.clients ?? ['ide']).map((name) => [name, registry.add(name)]));
  return { home, paths, env, managedDir, tokens };
}

export interface ApprovalGatehouse {
  home: string;
  paths: GatehousePaths;
  env: NodeJS.ProcessEnv;
  managedDir: string;
  tokens: Record<string, string>;
  logs: string[];
  daemon: Daemon;
  /** The daemon's terminal: what the person sees there. */
  screen: Screen;
  /** Every question the terminal has shown so far. */
  readonly announcements: ShownQuestion[];
  /** The next question the terminal shows, not yet taken. */
  nextQuestion(timeoutMs?: number): Promise<ShownQuestion>;
  status(): DaemonStatus;
  until(check: (s: DaemonStatus) => boolean, what: string, timeoutMs?: number): Promise<DaemonStatus>;
  /** Stops the daemon and starts it again on the same home. */
  restart(): Promise<void>;
  /** Stops the daemon, keeping the home. */
  halt(): Promise<void>;
  /** Starts it again after `halt`. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** Writes the managed directory (trust anchors, policy.json, the bundle) of a home. */
export function writeManagedDir(home: string, roots: TestKey[], bundle: Buffer): string {
  const managedDir = join(home, 'managed');
  mkdirSync(managedDir, { recursive: true, mode: 0o755 });
  const trust = roots.map((root, i) => {
    writeFileSync(join(managedDir, `root-${i}.pub`), root.publicPem, { mode: 0o644 });
    return `root-${i}.pub`;
  });
  writeFileSync(join(managedDir, 'policy.json'), JSON.stringify({ trust, required: true }), { mode: 0o644 });
  writeFileSync(join(managedDir, 'policy.bundle.new'), bundle, { mode: 0o644 });
  renameSync(join(managedDir, 'policy.bundle.new'), join(managedDir, 'policy.bundle'));
  return managedDir;
}

export async function startApprovalGatehouse(options: ApprovalOptions): Promise<ApprovalGatehouse> {
  const { home, paths, env, managedDir, tokens } = options.home ?? prepareHome(options);
  const logs: string[] = [];
  const logger: Logger = { log: (level, event, fields) => logs.push(JSON.stringify({ level, event, ...fields })) };
  const screen = new Screen();
  const secrets = new MemorySecretStore();
  const open = () =>
    startDaemon({
      paths,
      logger,
      env,
      secrets,
      managedDir,
      testIdentity: options.identity,
      human: { terminal: screen, notifier: { notify: () => false }, notice: { notify: () => undefined } },
      ...(options.timeoutMs !== undefined ? { approvals: { timeoutMs: options.timeoutMs } } : {}),
    });
  let daemon: Daemon;
  try {
    daemon = await open();
  } catch (error) {
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  const gh: ApprovalGatehouse = {
    home,
    paths,
    env,
    managedDir,
    tokens,
    logs,
    get daemon() {
      return daemon;
    },
    screen,
    get announcements() {
      return screen.questions();
    },
    nextQuestion: (timeoutMs = 10_000) => screen.nextQuestion(timeoutMs),
    status: () => daemon.status(),
    until: (check, what, timeoutMs = 10_000) => eventually(() => (check(daemon.status()) ? daemon.status() : undefined), timeoutMs, what),
    restart: async () => {
      await daemon.stop();
      daemon = await open();
    },
    halt: () => daemon.stop(),
    resume: async () => {
      daemon = await open();
    },
    stop: async () => {
      await daemon.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
  return gh;
}

export async function untilCrmReady(gh: Pick<ApprovalGatehouse, 'until'>): Promise<void> {
  await gh.until((s) => s.servers.some((v) => v.name === 'crm' && v.state === 'ready'), 'the CRM server from the catalog to be ready', 20_000);
}

/** The calls the CRM fixture executed (its --log file). */
export function executed(callLog: string): { tool: string; args: Record<string, unknown> }[] {
  try {
    return readFileSync(callLog, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as never);
  } catch {
    return [];
  }
}

/** Audit events of one type, read from the database as `gatehouse audit query` reads it. */
export function auditEvents(paths: GatehousePaths, type: string): AuditEvent[] {
  const db = openForReading(join(paths.stateDir, 'audit.db'));
  try {
    return queryEvents(db, { type, limit: 10_000 }).map((e) => e.event);
  } finally {
    db.close();
  }
}

/** What a refused MCP call threw (or a marker when it did not fail). */
export async function errorOf(promise: Promise<unknown>): Promise<{ message: string; code?: number; data?: Record<string, unknown> }> {
  try {
    await promise;
    return { message: 'no error' };
  } catch (error) {
    return error as never;
  }
}
