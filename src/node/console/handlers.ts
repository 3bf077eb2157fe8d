/**
 * The daemon's answers to the control methods the console added (servers with their config and
 * tools, config edits, tools and who may see them, the audit query, timeline and verification, the
 * policy in detail, clients, secrets, sign-in). Built by the composition root (src/node/daemon.ts)
 * from its live parts; each calls the module that owns the work (config-file, client registry,
 * keychain, audit store, OIDC client) and nothing here keeps state of its own but the sign-in in
 * progress.
 */
import { readFile } from 'node:fs/promises';
import type { AuditTimeline, ConsoleEvent } from '../../common/console-api.js';
import type { ReloadReport } from '../../common/control-api.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { PolicyStatus } from '../../common/status.js';
import type { AuditEvent } from '../../core/audit/event.js';
import type { AuditFilter } from '../../core/audit/filter.js';
import type { Logger, AuditRecord } from '../../core/ports.js';
import type { PolicyState } from '../../core/policy/bundle-policy.js';
import type { ClientRegistry } from '../client-registry.js';
import { editConfigFile } from '../config-file.js';
import type { ControlHandlers } from '../control/control-server.js';
import { OidcClient, noRefreshToken, type TokenSet } from '../identity/oidc.js';
import type { UserSession } from '../identity/session.js';
import type { IdentitySettings } from '../identity/settings.js';
import { TokenStore } from '../identity/token-store.js';
import type { QueriedEvent } from '../audit/query.js';
import { userSecretItem } from '../secrets/resolver.js';
import { policyReport, type BundleHistory } from './policy-report.js';
import {
  auditRow,
  clientsReport,
  fittedStart,
  secretUsers,
  secretsReport,
  serversReport,
  summarizeTool,
  timeline,
  toolsReport,
  type ReportSources,
} from './reports.js';
import { verifyAudit } from './verify.js';

export type ConsoleMethods =
  | 'servers.list'
  | 'servers.tools'
  | 'servers.add'
  | 'servers.update'
  | 'servers.remove'
  | 'tools.list'
  | 'audit.query'
  | 'audit.timeline'
  | 'audit.verify'
  | 'policy.status'
  | 'clients.list'
  | 'clients.revoke'
  | 'secrets.list'
  | 'secrets.set'
  | 'secrets.delete'
  | 'identity.login';

export interface ConsoleHandlerDeps extends ReportSources {
  logger: Logger;
  /** Appends a non-call audit event (never throws). */
  record(entry: AuditRecord): void;
  reload(): Promise<ReloadReport>;
  registry: ClientRegistry;
  /** Tells the OAuth server which clients are still paired. */
  forgetRevoked(names: Set<string>): void;
  restart(server: string): Promise<void>;
  audit: {
    query(filter: AuditFilter): QueriedEvent[];
    head(): number;
    file: string;
    publicKey(): string | undefined;
    signingNote(): string | undefined;
  };
  policyStatus(): PolicyStatus;
  history: BundleHistory;
  identity?: { settings: IdentitySettings; session: UserSession };
  /** Sign-in progress, for the console's subscribers. */
  emit(event: ConsoleEvent): void;
}

/** Most events the timeline counts in one request (beyond that it says `truncated`). */
const TIMELINE_MAX_EVENTS = 200_000;
const PAGE = 10_000;

export function consoleHandlers(deps: ConsoleHandlerDeps): Pick<ControlHandlers, ConsoleMethods> {
  let signIn: AbortController | undefined;

  const requireRunning = (name: string) => {
    if (!deps.supervised.names().includes(name)) throw new GatehouseError('unknown_server', `no server named "${name}" is running`);
  };

  const edit = async (mutate: (servers: Record<string, unknown>) => void): Promise<ReloadReport> => {
    const result = await editConfigFile(deps.configFile, (raw) => {
      const servers = (raw.servers ??= {}) as Record<string, unknown>;
      if (typeof servers !== 'object' || servers === null || Array.isArray(servers)) {
        throw new GatehouseError('config_invalid', '"servers" in the config file is not an object');
      }
      mutate(servers);
    });
    if (!result.ok) throw new GatehouseError('invalid', result.error);
    const report = await deps.reload();
    if (!report.ok) throw new GatehouseError('config_invalid', report.error ?? 'the daemon refused the configuration');
    return report;
  };

  return {
    'servers.list': async () => serversReport(deps),
    'servers.tools': async ({ name }) => {
      requireRunning(name);
      const lists = deps.supervised.lists(name);
      if (!lists) {
        throw new GatehouseError(
          'server_unavailable',
          `server "${name}" is not ready (${deps.supervised.status(name)?.state ?? 'stopped'}); its tools are listed once it is`,
        );
      }
      return lists.tools.map(summarizeTool);
    },
    'servers.add': async ({ name, config }) =>
      edit((servers) => {
        if (Object.hasOwn(servers, name)) {
          throw new GatehouseError('exists', `a server named "${name}" is already configured; edit it instead, or choose another name`);
        }
        servers[name] = config;
      }),
    'servers.update': async ({ name, config }) =>
      edit((servers) => {
        if (!Object.hasOwn(servers, name)) throw new GatehouseError('unknown_server', `no server named "${name}" is in the config file`);
        servers[name] = config;
      }),
    'servers.remove': async ({ name }) =>
      edit((servers) => {
        if (!Object.hasOwn(servers, name)) throw new GatehouseError('unknown_server', `no server named "${name}" is in the config file`);
        delete servers[name];
      }),

    'tools.list': async () => toolsReport(deps),

    'audit.query': async ({ limit, afterSeq, ...filter }) => {
      // One more than asked, to tell whether more matched.
      const found = deps.audit.query({ ...filter, ...(afterSeq !== undefined ? { afterSeq } : {}), limit: limit + 1 });
      const more = found.length > limit;
      const page = more ? (afterSeq !== undefined ? found.slice(0, limit) : found.slice(1)) : found;
      return { events: page.map((e) => auditRow(e.event, e.hash)), head: deps.audit.head(), more };
    },
    'audit.timeline': async ({ by, buckets, from: asked, to, fit, ...filter }): Promise<AuditTimeline> => {
      const end = to ?? new Date().toISOString();
      if (Date.parse(asked) >= Date.parse(end)) throw new GatehouseError('invalid_params', '"from" must be before "to"');
      // Fitted: from the first call in the range (oldest first with afterSeq), so a burst keeps its shape.
      const first = fit ? deps.audit.query({ ...filter, from: asked, to: end, type: 'call.outcome', afterSeq: 0, limit: 1 })[0] : undefined;
      const from = new Date(fittedStart(Date.parse(asked), Date.parse(end), first ? Date.parse(first.event.at) : undefined)).toISOString();
      const events = function* (): Generator<AuditEvent> {
        let after = 0;
        let counted = 0;
        for (;;) {
          const page = deps.audit.query({ ...filter, from, to: end, type: 'call.outcome', afterSeq: after, limit: PAGE });
          for (const e of page) yield e.event;
          counted += page.length;
          if (page.length < PAGE || counted > TIMELINE_MAX_EVENTS) return;
          after = page[page.length - 1]!.event.seq;
        }
      };
      return timeline(events(), { from, to: end, buckets, by, max: TIMELINE_MAX_EVENTS, requestedFrom: asked });
    },
    'audit.verify': async () => verifyAudit(deps.audit.file, deps.audit.publicKey(), deps.audit.signingNote()),

    'policy.status': async () => {
      const state: PolicyState = deps.policyState();
      const events = deps.audit.query({ type: 'policy.changed', limit: 50 }).concat(deps.audit.query({ type: 'policy.rejected', limit: 50 }));
      events.sort((a, b) => a.event.seq - b.event.seq);
      return policyReport(
        deps.policyStatus(),
        state,
        deps.history,
        events.map((e) => e.event),
      );
    },

    'clients.list': async () => {
      deps.registry.reload();
      return clientsReport(deps);
    },
    'clients.revoke': async ({ name }) => {
      if (!deps.registry.revoke(name)) throw new GatehouseError('unknown_client', `no client named "${name}" is paired`);
      deps.record({ type: 'client.revoked', at: new Date().toISOString(), client: name, reason: 'revoked in the console' });
      deps.forgetRevoked(new Set(deps.registry.list().map((c) => c.name)));
      return { revoked: true };
    },

    'secrets.list': async () => secretsReport(deps),
    'secrets.set': async ({ name, value }) => {
      await deps.keychain.set(userSecretItem(name), value);
      deps.logger.log('info', 'secrets.set', { name, via: 'console' });
      return { restarted: await restartUsers(deps, name) };
    },
    'secrets.delete': async ({ name }) => {
      const deleted = await deps.keychain.delete(userSecretItem(name));
      if (!deleted) throw new GatehouseError('unknown_secret', `no secret named "${name}" is in the keychain`);
      deps.logger.log('info', 'secrets.deleted', { name, via: 'console' });
      return { deleted, restarted: await restartUsers(deps, name) };
    },

    'identity.login': async () => {
      const identity = deps.identity;
      if (!identity) {
        throw new GatehouseError(
          'no_identity_provider',
          'no identity provider is configured, so calls are made as the OS user; an administrator names one in identity.json (see docs/identity.md)',
        );
      }
      signIn?.abort();
      const controller = new AbortController();
      signIn = controller;
      // The keychain must work before anyone types a password.
      await deps.keychain.list();
      const client = await OidcClient.discover(identity.settings);
      let announce!: (url: string) => void;
      const url = new Promise<string>((resolve) => (announce = resolve));
      /** Keeps the sign-in while the browser tab waits, so that the tab says how it went. */
      const accept = async (result: TokenSet): Promise<string> => {
        if (!result.refreshToken) throw noRefreshToken(identity.settings);
        const user = result.user!;
        await new TokenStore(deps.keychain, identity.settings.issuer, identity.settings.clientId).save({
          refreshToken: result.refreshToken,
          sub: user.sub,
          displayName: user.displayName,
        });
        const status = await identity.session.reload();
        deps.emit({
          type: 'sign-in',
          state: status.state === 'active' ? 'signed-in' : 'failed',
          ...(status.state === 'active' ? {} : { message: status.notice ?? status.reason ?? status.state }),
        });
        return `Signed in to Gatehouse as ${user.displayName}.`;
      };
      const flow = client.loginWithBrowser({ openBrowser: async (u) => (announce(u), true), say: () => undefined }, { signal: controller.signal, accept });
      flow
        .catch((error: unknown) => {
          if (controller.signal.aborted && signIn !== controller) return;
          deps.logger.log('warn', 'identity.console_login_failed', { error: errorMessage(error) });
          deps.emit({ type: 'sign-in', state: 'failed', message: errorMessage(error) });
        })
        .finally(() => {
          if (signIn === controller) signIn = undefined;
        });
      const address = await Promise.race([
        url,
        flow.then(
          () => undefined,
          () => undefined,
        ),
      ]);
      if (address === undefined) throw new GatehouseError('login_failed', 'the sign-in could not start; see the daemon log');
      deps.emit({ type: 'sign-in', state: 'waiting' });
      return { url: address };
    },
  };
}

/** Restarts the running servers whose config refers to this secret (the others keep running). */
async function restartUsers(deps: ConsoleHandlerDeps, name: string): Promise<string[]> {
  const users = secretUsers(deps).get(name) ?? [];
  const restarted: string[] = [];
  for (const server of users) {
    if (!deps.supervised.names().includes(server)) continue;
    if (deps.supervised.status(server)?.state === 'stopped') continue;
    await deps.restart(server);
    restarted.push(server);
  }
  deps.logger.log('info', 'secrets.changed', { names: [name], restarted });
  return restarted;
}

/** The servers of the config file as written (defaults not filled in), for editing. */
export async function readRawServers(file: string): Promise<Record<string, Record<string, unknown>> | undefined> {
  try {
    const raw = JSON.parse(await readFile(file, 'utf8')) as { servers?: unknown };
    return raw.servers && typeof raw.servers === 'object' && !Array.isArray(raw.servers) ? (raw.servers as Record<string, Record<string, unknown>>) : {};
  } catch {
    return undefined;
  }
}
