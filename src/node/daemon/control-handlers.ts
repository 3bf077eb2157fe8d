/**
 * The daemon's answers on the control socket (and, for the console's methods, over the console's
 * transports): each handler checks its input's meaning and calls the part that owns the work. The
 * composition root (src/node/daemon.ts) passes the live parts in; nothing here keeps state.
 */
import type { ChangeTopic, QuestionsReport } from '../../common/console-api.js';
import type { ReloadReport } from '../../common/control-api.js';
import { GatehouseError } from '../../common/errors.js';
import type { DaemonStatus, IdentityStatus } from '../../common/status.js';
import type { AuditRecord, Logger } from '../../core/ports.js';
import type { Supervisor } from '../../core/supervisor/supervisor.js';
import type { ClientRegistry } from '../client-registry.js';
import { consoleHandlers, type ConsoleHandlerDeps } from '../console/handlers.js';
import type { ControlHandlers } from '../control/control-server.js';
import type { PairingService } from '../identity/pairing.js';
import type { UserSession } from '../identity/session.js';
import type { UpstreamAuth } from '../upstream-auth/service.js';
import { searchHandlers, type SearchHandlerDeps } from '../search/handlers.js';
import { secretReferences } from '../secrets/resolver.js';
import { detectClients } from '../clients/clients.js';
import { importClient, setupClient, type ClientsContext } from '../clients/service.js';
import { readRawServers } from '../console/handlers.js';
import { bridgeLaunch } from '../clients/launch.js';
import type { CatalogService } from '../catalog/service.js';

export interface ControlDeps {
  status(): DaemonStatus;
  supervisor: Supervisor;
  registry: ClientRegistry;
  pairing: PairingService;
  logger: Logger;
  /** Appends a non-call audit event (never throws). */
  record(entry: AuditRecord): void;
  reload(): Promise<ReloadReport>;
  /** Tells the OAuth server which clients are still paired. */
  forgetRevoked(names: Set<string>): void;
  identityStatus(): IdentityStatus;
  session: UserSession | undefined;
  /** The user's sign-ins to remote servers (docs/remote-servers.md). */
  upstreamAuth: UpstreamAuth;
  /** Shows the person a new console sign-in code; a reason when the console is not served or no terminal can show it. */
  consoleLink(): { announced: true } | { announced: false; reason: string };
  /** What waits for the person (read-only). */
  questions(): QuestionsReport;
  /** Tells the console's screens what a command changed behind their back (the CLI's notifications). */
  changed?(topics: ChangeTopic[]): void;
  /** What the console's own methods need (src/node/console/handlers.ts). */
  console: ConsoleHandlerDeps;
  /** Client views and tool-list costs (src/node/search/handlers.ts). */
  search: SearchHandlerDeps;
  /** Where MCP clients keep their configs, and how this Gatehouse is run (the Clients screen's setup buttons). */
  clients: ClientsContext;
  /** The servers the policy in force runs (the catalog's in managed mode). */
  policyServers(): { mode: 'managed' | 'unmanaged' | 'fail-closed'; servers: string[] };
  /** The signed catalogue and the servers installed from it (src/node/catalog/service.ts). */
  catalog: CatalogService;
}

export function controlHandlers(deps: ControlDeps): ControlHandlers {
  const { supervisor, registry, record, logger } = deps;
  const requireServer = (name: string): void => {
    if (!supervisor.names().includes(name)) throw new GatehouseError('unknown_server', `no server named "${name}" is configured`);
  };
  return {
    status: async () => deps.status(),
    'servers.restart': async ({ name }) => {
      requireServer(name);
      await supervisor.restart(name);
      return supervisor.status(name);
    },
    'servers.start': async ({ name }) => {
      requireServer(name);
      await supervisor.start(name);
      return supervisor.status(name);
    },
    'servers.stop': async ({ name }) => {
      requireServer(name);
      await supervisor.stop(name);
      return supervisor.status(name);
    },
    logs: async ({ name, lines }) => {
      requireServer(name);
      return supervisor.logs(name, lines) ?? [];
    },
    'config.reload': () => deps.reload(),
    'clients.reload': async () => {
      const before = new Set(registry.list().map((c) => c.name));
      registry.reload();
      const after = new Set(registry.list().map((c) => c.name));
      const at = new Date().toISOString();
      for (const name of after) if (!before.has(name)) record({ type: 'client.paired', at, client: name });
      for (const name of before) if (!after.has(name)) record({ type: 'client.revoked', at, client: name });
      deps.forgetRevoked(after);
      return { clients: registry.list().length };
    },
    'clients.pair': async ({ name }) => {
      const paired = await deps.pairing.pair({ client: name, via: 'http' });
      if (!paired.ok) throw new GatehouseError(paired.code, paired.reason);
      return { name, token: paired.token, expiresAt: paired.record.expiresAt, scope: paired.scope };
    },
    'identity.status': async () => deps.identityStatus(),
    'identity.reload': async () => (deps.session ? deps.session.reload() : deps.identityStatus()),
    'identity.logout': async () => {
      if (!deps.session) throw new GatehouseError('no_identity_provider', 'no identity provider is configured; calls are made as the OS user');
      // The user's remote sign-ins go first, while they are still the user the tokens belong to.
      await deps.upstreamAuth
        .signOutAll('signed out of Gatehouse')
        .catch((error: unknown) => logger.log('warn', 'upstream_auth.sign_out_failed', { error: String(error) }));
      return deps.session.logout();
    },
    'servers.login': async ({ name }) => {
      requireServer(name);
      return deps.upstreamAuth.signIn(name);
    },
    'servers.logout': async ({ name }) => {
      requireServer(name);
      return deps.upstreamAuth.signOut(name, 'signed out by the user');
    },
    'secrets.changed': async ({ names }) => {
      // Only the servers whose config refers to one of these secrets restart; the others keep running.
      const changed = new Set(names);
      const restarted: string[] = [];
      for (const server of supervisor.names()) {
        const config = supervisor.config(server);
        if (!config || !secretReferences(config).some((n) => changed.has(n))) continue;
        if (supervisor.status(server)?.state === 'stopped') continue;
        await supervisor.restart(server);
        restarted.push(server);
      }
      logger.log('info', 'secrets.changed', { names, restarted });
      deps.changed?.(['secrets', 'servers']);
      return { restarted };
    },
    'console.link': async () => deps.consoleLink(),
    'questions.list': async () => deps.questions(),
    'policy.servers': async () => deps.policyServers(),
    'clients.apps': async () =>
      (await detectClients(deps.clients.place)).map((app) => {
        const launch = bridgeLaunch(deps.clients.self, app.id, { env: deps.clients.place.env });
        return { ...app, command: [launch.command, ...launch.args] };
      }),
    'clients.setup': async ({ client, dryRun }) => {
      const result = await setupClient(deps.clients, client, { dryRun });
      if (!dryRun) logger.log('info', 'clients.setup', { client, file: result.file, changed: result.changed, check: result.check?.ok });
      const check = result.check
        ? result.check.ok
          ? { ok: true as const, ms: result.check.ms, pairing: result.check.pairing }
          : { ok: false as const, reason: result.check.reason }
        : undefined;
      return {
        client,
        file: result.file,
        changed: result.changed,
        ...(result.diff ? { diff: result.diff } : {}),
        command: [result.launch.command, ...result.launch.args],
        ...(check ? { check } : {}),
      };
    },
    'clients.import': async ({ client }) => {
      // Gatehouse's config must be readable before anything is added to it; its servers are compared as written.
      const existing = await readRawServers(deps.clients.configFile);
      if (existing === undefined) throw new GatehouseError('config_invalid', `${deps.clients.configFile} is not valid JSON; fix it before importing`);
      const policy = deps.policyServers();
      const result = await importClient(deps.clients, client, {
        secrets: 'store',
        existing,
        keys: async () => deps.console.keychain,
        ...(policy.mode === 'unmanaged' ? {} : { managed: { servers: policy.servers } }),
      });
      const { plan } = result;
      logger.log('info', 'clients.import', {
        client,
        moved: plan.moved.map((m) => m.server),
        secrets: plan.secrets.map((s) => s.name),
        leftAlone: plan.leftAlone.length,
      });
      if (plan.secrets.length > 0 || Object.keys(plan.add).length > 0) await deps.reload();
      await deps.catalog.scanShadows();
      deps.changed?.(['servers', 'secrets']);
      const check = result.check
        ? result.check.ok
          ? { ok: true as const, ms: result.check.ms, pairing: result.check.pairing }
          : { ok: false as const, reason: result.check.reason }
        : undefined;
      const file = result.changes[1]?.file ?? '';
      return { client, file, moved: plan.moved, secrets: plan.secrets.map((s) => s.name), leftAlone: plan.leftAlone, ...(check ? { check } : {}) };
    },
    'catalog.list': ({ query }) => deps.catalog.listing(query),
    'catalog.show': ({ name }) => deps.catalog.show(name),
    'servers.install': async ({ name, as }) => {
      const result = await deps.catalog.install(name, as);
      logger.log('info', 'servers.install', { entry: name, server: result.server, version: result.version });
      return result;
    },
    'servers.pin': ({ name }) => deps.catalog.pin(name),
    'catalog.shadows': () => deps.catalog.scanShadows(),
    // The console's own queries and actions.
    ...consoleHandlers(deps.console),
    ...searchHandlers(deps.search),
  };
}
