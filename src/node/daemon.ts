/**
 * The composition root for headless Gatehouse (and, through the same function, the desktop app):
 * it builds the core with real adapters and opens the local endpoints. Nothing else constructs
 * these parts; tests call `startDaemon` with their own paths and configuration.
 */
import { writeFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { GatehouseConfig } from '../common/config.js';
import type { ReloadReport } from '../common/control-api.js';
import { GatehouseError, errorMessage } from '../common/errors.js';
import type { DaemonStatus } from '../common/status.js';
import { Gateway } from '../core/gateway.js';
import { ApprovalBroker } from '../core/approvals/broker.js';
import { QuotaGovernor } from '../core/quotas/governor.js';
import { SessionKeys } from '../core/quotas/session.js';
import { BundlePolicy, SIGN_IN_REQUIRED } from '../core/policy/bundle-policy.js';
import { NarrowedPolicy, Restrictions } from '../core/policy/narrowing.js';
import { systemClock, type LogMessage, type Logger, type UpstreamLists } from '../core/ports.js';
import { Supervisor, type ServerRequestHandler } from '../core/supervisor/supervisor.js';
import type { Durability } from './audit/schema.js';
import { openLocalAudit } from './audit/local.js';
import type { SecretStore } from '../core/secrets.js';
import { KeychainSecretStore } from './keychain-secret-store.js';
import { ClientRegistry } from './client-registry.js';
import { ensureConfigFile, loadConfigFile, watchConfigFile, type ConfigWatcher } from './config-file.js';
import { ControlServer } from './control/control-server.js';
import { HttpListener } from './downstream/http-listener.js';
import { SessionHost } from './downstream/sessions.js';
import { SocketListener, isLive } from './downstream/socket-listener.js';
import { acquireDaemonLock } from './daemon-lock.js';
import { LocalIdentity, type SessionPort } from './local-identity.js';
import { ScopedPolicy } from '../core/identity/client-scope.js';
import type { Principal } from '../core/principal.js';
import type { IdentityStatus } from '../common/status.js';
import { HumanPage, type Announcement } from './identity/human-page.js';
import { DesktopNotifier, type Notifier } from './identity/notify.js';
import { OAuthServer } from './identity/oauth-server.js';
import { PairingService, PAIRING_DEADLINE_MS } from './identity/pairing.js';
import { UserSession } from './identity/session.js';
import { loadIdentitySettings } from './identity/settings.js';
import { SecretResolver, SecretScrubber, secretReferences } from './secrets/resolver.js';
import { PolicyController } from './policy/controller.js';
import { managedDirFor } from './policy/settings.js';
import { StaticIdentity, type TestIdentity } from './policy/static-identity.js';
import { jsonLogger } from './logger.js';
import { defaultPaths, ensureUserOnlyDir, type GatehousePaths } from './paths.js';
import { RotatingServerLogs } from './server-logs.js';
import { NodeUpstreamConnector } from './upstream/connector.js';
import { APPROVALS_DB_FILE, SqliteApprovalJournal } from './approvals/sqlite-journal.js';
import { QUOTA_DB_FILE, SqliteQuotaStore } from './quotas/sqlite-quota-store.js';
import { VERSION, packageRoot } from './version.js';
import type { HumanChannel } from '../core/identity/human-channel.js';
import type { ControlHandlers } from './control/control-server.js';
import { consoleHandlers, readRawServers } from './console/handlers.js';
import { ConsoleHub } from './console/hub.js';
import { teeLogSink } from './console/log-tee.js';
import { BundleHistory } from './console/policy-report.js';
import { ConsoleServer } from './console/server.js';

export interface DaemonOptions {
  /** A config file other than the user's default. */
  configFile?: string;
  /** Overrides for where everything lives (tests); defaults from the platform and GATEHOUSE_HOME. */
  paths?: GatehousePaths;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** The keychain for the audit device key (tests pass an in-memory store); default: the OS keychain. */
  secrets?: SecretStore;
  /** Audit store tuning (tests and benchmarks); see docs/audit.md. */
  audit?: { durability?: Durability; checkpointEvery?: number; checkpointIntervalMs?: number };
  /**
   * Tests only: where the managed policy settings are read from. Otherwise the platform's fixed
   * location (/etc/gatehouse, ...); no config field or environment variable can move it.
   */
  managedDir?: string;
  /** Tests only: a fixed user with group claims, standing in for the SSO identity that does not exist yet. */
  testIdentity?: TestIdentity;
  /** The human channel and sign-in (tests pass hooks; the daemon's defaults reach a person's terminal and desktop). */
  human?: {
    /** Another place questions are announced, with their one-time address (tests answer from there). */
    announce?: (announcement: Announcement) => void;
    /** Where the daemon's terminal is; default: stderr when it is a TTY. `null`: none. */
    terminal?: ((line: string) => void) | null;
    notifier?: Notifier;
    pairingDeadlineMs?: number;
  };
  /** Tests only: how the sign-in session retries, and trusting a managed identity.json not owned by root. */
  identity?: { retry?: { initialMs: number; maxMs: number }; trustManagedOwner?: boolean };
  /**
   * `gatehouse daemon --ui`: serve the console on 127.0.0.1 (docs/console.md). `announce` shows a
   * one-time login address to the person (the daemon's terminal); it must never be logged or written.
   */
  ui?: { port?: number; staticDir?: string; announce(url: string): void };
  /** Where the person is asked (the desktop app's popup windows); default: the loopback pairing page. */
  humanChannel?: HumanChannel;
  /** How long a call waits for a person's approval before it is refused (default 120 s; docs/approvals.md). */
  approvals?: { timeoutMs?: number };
}

export interface Daemon {
  readonly paths: GatehousePaths;
  readonly httpUrl: string | undefined;
  /** The console's way in (Electron IPC, the headless console server): the console's control methods and its events. */
  readonly console: ConsoleHub;
  /** With `ui`: the console's origin (without a login key). */
  readonly consoleUrl: string | undefined;
  status(): DaemonStatus;
  reload(): Promise<ReloadReport>;
  stop(): Promise<void>;
}

/** Where `gatehouse status` and `gatehouse connect` find a running daemon. */
export interface RuntimeInfo {
  pid: number;
  version: string;
  startedAt: string;
  socketPath: string;
  controlSocketPath: string;
  httpUrl?: string;
}

export function runtimeInfoFile(paths: GatehousePaths): string {
  return join(paths.runtimeDir, 'daemon.json');
}


export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  const env = options.env ?? process.env;
  const basePaths = options.paths ?? defaultPaths(env);
  const paths: GatehousePaths = options.configFile ? { ...basePaths, configFile: options.configFile } : basePaths;
  const logger = options.logger ?? jsonLogger((line) => process.stderr.write(line));
  const startedAt = new Date();

  for (const dir of [paths.stateDir, paths.dataDir, paths.logDir, paths.runtimeDir]) await ensureUserOnlyDir(dir);
  // One daemon per home: refuse before touching anything the running one owns (its audit log above all).
  const lock = acquireDaemonLock(paths.runtimeDir);
  if (await isLive(paths.socketPath)) {
    lock.release();
    throw new GatehouseError('already_running', `another Gatehouse daemon is already listening on ${paths.socketPath}`);
  }
  if (!options.configFile) await ensureConfigFile(paths.configFile, join(packageRoot(), 'resources', 'default-config.json'));

  const loadConfig = () => loadConfigFile(paths.configFile, { dataDir: paths.dataDir });
  const first = await loadConfig();
  if (!first.ok) throw new GatehouseError('config_invalid', first.error);
  let config: GatehouseConfig = first.config;
  // The default configuration's filesystem server is confined to this folder.
  await mkdir(join(paths.dataDir, 'demo'), { recursive: true });

  const localAudit = openLocalAudit({ stateDir: paths.stateDir, secrets: options.secrets ?? new KeychainSecretStore(), logger, ...(options.audit ?? {}) });
  const audit = localAudit.store;
  /** Events other than calls: a failed audit write is logged there, and must not break the part that reports it. */
  const record = (entry: Parameters<typeof audit.append>[0]): void => {
    try {
      audit.append(entry);
    } catch (error) {
      logger.log('error', 'audit.event_lost', { type: entry.type, error: errorMessage(error) });
    }
  };
  record({ type: 'audit.started', at: startedAt.toISOString(), detail: { version: VERSION, pid: process.pid, ...(audit.startupWarnings.length > 0 ? { integrity: audit.startupWarnings } : {}) } });
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  const keychain = options.secrets ?? new KeychainSecretStore();
  const notifier = options.human?.notifier ?? new DesktopNotifier(env);
  const managedDir = options.managedDir ?? managedDirFor(process.platform);

  // The user: signed in with the organisation's IdP when identity.json names one, else the OS user.
  const identitySettings = loadIdentitySettings({ managedDir, configDir: paths.configDir, ...(options.identity?.trustManagedOwner ? { trustManagedOwner: true } : {}) });
  let session: UserSession | undefined;
  let sessionPort: SessionPort | undefined;
  let identityStatus = (): IdentityStatus => ({ mode: 'os', state: 'local' });
  if (identitySettings.kind === 'ok') {
    session = new UserSession({
      settings: identitySettings.settings,
      source: identitySettings.source,
      store: keychain,
      logger,
      notifier,
      ...(options.identity?.retry ? { retry: options.identity.retry } : {}),
      onChange: () => identityChanged(),
    });
    sessionPort = session;
    identityStatus = () => session!.status();
  } else if (identitySettings.kind === 'invalid') {
    // A broken identity.json fails closed: no call is made as anyone until it is fixed.
    const reason = `the identity provider settings are invalid (${identitySettings.error}); fix the file and restart Gatehouse`;
    logger.log('error', 'identity.settings_invalid', { error: identitySettings.error });
    sessionPort = { currentUser: () => undefined, admission: () => ({ ok: false, code: 'unauthenticated', reason }) };
    identityStatus = () => ({ mode: 'oidc', state: 'misconfigured', reason, notice: reason });
  }
  const humanPage = new HumanPage({
    logger,
    notifier,
    ...(options.human && 'terminal' in options.human ? { terminal: options.human.terminal ?? undefined } : {}),
    ...(options.human?.announce ? { announce: options.human.announce } : {}),
  });
  const humanChannel: HumanChannel = options.humanChannel ?? humanPage;
  const pairingDeadlineMs = options.human?.pairingDeadlineMs ?? PAIRING_DEADLINE_MS;
  const pairing: PairingService = new PairingService({
    registry,
    channel: humanChannel,
    logger,
    audit: (event) => record(event),
    user: (): Principal['user'] => identity.currentUser,
    servers: () =>
      supervisor.names().map((name) => {
        const lists = supervisor.lists(name);
        return { name, tools: lists ? [...lists.tools.map((t) => t.name), ...lists.prompts.map((p) => p.name)] : [] };
      }),
    deadlineMs: pairingDeadlineMs,
  });
  const identityOptions = { pairing, ...(sessionPort ? { session: sessionPort } : {}) };
  const identity: LocalIdentity = options.testIdentity ? new StaticIdentity(registry, options.testIdentity) : new LocalIdentity(registry, identityOptions);
  // The policy in force: a verified managed bundle (or fail-closed, or unmanaged), put there by the
  // policy controller below, inside the user's own restrictions, which can only take away; and
  // inside the scope the person gave each paired client (effective rights = user's ∩ client's).
  let restrictions = new Restrictions(config.restrict);
  const bundlePolicy = new BundlePolicy({ now: () => Date.now(), lists: (server) => supervisor.lists(server), logger });
  const readOnly = (server: string, tool: string): boolean => {
    const state = bundlePolicy.state;
    // Managed: the signed catalog says what is read-only. Unmanaged: the server's own annotation (the user trusts their servers).
    if (state.kind === 'enforcing') return state.evaluator.catalogTool(server, tool)?.readOnly === true;
    if (state.kind === 'fail-closed') return false;
    const found = supervisor.lists(server)?.tools.find((t) => t.name === tool) as { annotations?: { readOnlyHint?: unknown } } | undefined;
    return found?.annotations?.readOnlyHint === true;
  };
  const policy = new ScopedPolicy(new NarrowedPolicy(bundlePolicy, () => restrictions), readOnly);
  // Quotas and approvals: the bundle's rate limits and quotas, counted in quotas.db so a restart
  // resets nothing; approvals asked in the human channel, journalled in approvals.db so requests a
  // crash interrupts are refused and audited at the next start (docs/approvals.md).
  const catalogTool = (server: string, tool: string) => {
    const state = bundlePolicy.state;
    return state.kind === 'enforcing' ? state.evaluator.catalogTool(server, tool) : undefined;
  };
  const sessionKeys = new SessionKeys();
  const quotaStore = new SqliteQuotaStore(join(paths.stateDir, QUOTA_DB_FILE));
  const quotaSweep = setInterval(() => {
    try {
      quotaStore.sweep(Date.now());
    } catch (error) {
      logger.log('error', 'quota.sweep_failed', { error: errorMessage(error) });
    }
  }, 3_600_000);
  quotaSweep.unref();
  const quotas = new QuotaGovernor({
    store: quotaStore,
    clock: systemClock,
    settings: () => (bundlePolicy.state.kind === 'enforcing' ? bundlePolicy.state.evaluator.bundle.content.quotas : undefined),
    version: () => bundlePolicy.version,
    tool: catalogTool,
    sessions: sessionKeys,
    audit: record,
    logger,
  });
  const approvalJournal = new SqliteApprovalJournal(join(paths.stateDir, APPROVALS_DB_FILE));
  const approvals = new ApprovalBroker({
    channel: humanChannel,
    clock: systemClock,
    journal: approvalJournal,
    sessions: sessionKeys,
    audit: record,
    logger,
    tool: catalogTool,
    ...(options.approvals?.timeoutMs !== undefined ? { timeoutMs: options.approvals.timeoutMs } : {}),
  });
  // Requests that waited when Gatehouse last stopped (or died) are refused and audited, never carried over.
  approvals.recover();
  const closeGovernance = async (): Promise<void> => {
    await approvals.close();
    clearInterval(quotaSweep);
  };
  let lastUser = '';
  /** The user signed in, renewed with other groups, expired or signed out: every cached decision and every list may change. */
  function identityChanged(): void {
    const user = session?.currentUser();
    const key = JSON.stringify([user?.id, user?.groups, session?.status().state]);
    if (key === lastUser) return;
    const before = lastUser;
    lastUser = key;
    if (user && !before.includes(JSON.stringify(user.id))) record({ type: 'identity.signed_in', at: new Date().toISOString(), user: user.id, detail: { groups: user.groups } });
    if (!user && before !== '') record({ type: 'identity.signed_out', at: new Date().toISOString() });
    bundlePolicy.install(bundlePolicy.state);
    // "For this session" approvals were given to the user who was asked.
    approvals.revokeSessionGrants();
    late.gateway?.refresh({ policyChanged: true });
  }
  const late: { gateway?: Gateway; hub?: ConsoleHub } = {};
  const serverLogs = new RotatingServerLogs(paths.logDir, config.limits.logFileBytes, config.limits.logFilesKept);
  // What changed between the bundles in force, for the console's Policy screen.
  const bundleHistory = new BundleHistory();
  const scrubber = new SecretScrubber();
  const resolver = new SecretResolver(keychain, scrubber);

  // The supervisor needs the gateway to relay server requests, and the gateway needs the supervisor: bind late.
  let relayLog: (server: string, message: LogMessage) => void = () => undefined;
  let relayServerRequest: ServerRequestHandler = (_server, method) => Promise.reject(new Error(`Gatehouse is starting and cannot relay ${method} yet`));
  const supervisor = new Supervisor({
    connector: new NodeUpstreamConnector({
      version: VERSION,
      maxMessageBytes: config.limits.maxMessageBytes,
      secrets: {
        resolve: (server, c) => resolver.resolve(server, c),
        scrub: (text) => scrubber.scrub(text),
        scrubError: (error) => scrubber.scrubError(error),
        active: () => scrubber.size > 0,
      },
    }),
    clock: systemClock,
    logger,
    ringLines: config.limits.logRingLines,
    logSink: teeLogSink(serverLogs, (server, line) => late.hub?.log(server, line)),
    onServerRequest: (server, method, params, signal) => relayServerRequest(server, method, params, signal),
    onServerLog: (server, message) => relayLog(server, message),
  });
  const gateway = new Gateway({
    directory: {
      readyLists: () => {
        const lists = new Map<string, UpstreamLists>();
        for (const name of supervisor.names()) {
          const l = supervisor.lists(name);
          if (l) lists.set(name, l);
        }
        return lists;
      },
      connection: (name) => {
        const connection = supervisor.connection(name);
        const server = supervisor.config(name);
        return connection && server ? { connection, timeoutMs: server.requestTimeoutMs } : undefined;
      },
    },
    audit,
    clock: systemClock,
    logger,
    identity,
    policy,
    quota: quotas,
    approval: approvals,
  });
  late.gateway = gateway;
  relayServerRequest = (server, method, params, signal) => gateway.routeServerRequest(server, method, params, signal);
  relayLog = (server, message) => gateway.relayLog(server, message);
  const sessions = new SessionHost(gateway, { version: VERSION });

  // Which servers run: the catalog's in managed mode, the user's own when unmanaged, none when
  // failing closed; never one the user switched off for everyone.
  const policyController = new PolicyController({
    managedDir,
    stateDir: paths.stateDir,
    dataDir: paths.dataDir,
    policy: bundlePolicy,
    logger,
    audit: { append: record },
    onChange: () => {
      // "For this session" approvals were given under the bundle that is no longer in force.
      approvals.revokeSessionGrants();
      bundleHistory.observe(bundlePolicy.state);
      gateway.refresh({ policyChanged: true });
      if (serving) void applyServers();
      late.hub?.changed();
    },
  });
  let serving = false;
  const effectiveServers = () => Object.fromEntries(Object.entries(policyController.servers(config.servers)).filter(([name]) => !restrictions.serverDisabled(name)));
  let applying: Promise<unknown> = Promise.resolve();
  const applyServers = (): Promise<Awaited<ReturnType<typeof supervisor.apply>>> => {
    const next = applying.then(() => supervisor.apply(effectiveServers()));
    applying = next.catch((error) => logger.log('error', 'servers.apply_failed', { error: errorMessage(error) }));
    return next;
  };
  await policyController.start();
  // Servers come up together: rebuild the views once per burst, not once per server (12 ms at 5,000 tools).
  let refreshScheduled = false;
  supervisor.on('lists', () => {
    if (refreshScheduled) return;
    refreshScheduled = true;
    setImmediate(() => {
      refreshScheduled = false;
      gateway.refresh();
      late.hub?.changed();
    });
  });
  supervisor.on('state', (name, status) => {
    logger.log(status.state === 'ready' ? 'info' : 'warn', 'server.state', { server: name, state: status.state, ...(status.lastError ? { error: status.lastError } : {}) });
    const at = new Date().toISOString();
    record({ type: 'server.state', at, server: name, reason: status.lastError, detail: { state: status.state, restarts: status.restarts } });
    if ((status.state === 'backing-off' || status.state === 'crash-looping') && status.lastError) record({ type: 'server.crashed', at, server: name, reason: status.lastError, detail: { state: status.state, restarts: status.restarts } });
    if (status.state === 'ready' && status.restarts > 0) record({ type: 'server.restarted', at, server: name, detail: { restarts: status.restarts } });
  });
  supervisor.on('resourceUpdated', (name, uri) => sessions.resourceUpdated([uri]));

  const serverExists = (name: string) => supervisor.names().includes(name);
  const socket = new SocketListener({
    path: paths.socketPath,
    maxMessageBytes: config.limits.maxMessageBytes,
    sessions,
    logger,
    authenticate: (hello, context) => identity.fromHello(hello, context),
    pairingDeadlineMs,
    serverExists,
  });
  // MCP authorization for HTTP clients: Gatehouse is their OAuth 2.1 authorization server, and consent is the same pairing.
  const oauth = new OAuthServer({
    stateFile: join(paths.stateDir, 'oauth-clients.json'),
    pairing,
    logger,
    revoke: (name) => {
      if (registry.revoke(name)) record({ type: 'client.revoked', at: new Date().toISOString(), client: name, reason: 'its authorization code was used twice' });
    },
  });
  const http = config.listen.http.enabled
    ? new HttpListener({
        oauth,
        port: config.listen.http.port,
        maxMessageBytes: config.limits.maxMessageBytes,
        sessions,
        logger,
        authenticate: (token) => identity.fromBearer(token),
        serverExists,
        onListChanged: (listener) => gateway.onChange(listener),
      })
    : undefined;

  const status = (): DaemonStatus => ({
    version: VERSION,
    pid: process.pid,
    startedAt: startedAt.toISOString(),
    user: identity.currentUser.displayName,
    policy: {
      mode: policy.mode,
      ...(policy.version ? { version: policy.version } : {}),
      ...policyController.status(),
      ...(policy.mode === 'managed' && identity.currentUser.source === 'os'
        ? { notice: `${SIGN_IN_REQUIRED}; no identity provider is configured (identity.json in the managed location, see docs/identity.md)` }
        : {}),
    },
    configFile: paths.configFile,
    socketPath: paths.socketPath,
    ...(http ? { httpUrl: http.url } : {}),
    servers: supervisor.statuses(),
    clients: sessions.statuses(),
    audit: localAudit.status(),
    identity: identityStatus(),
    pendingQuestions: humanChannel.pending(),
    approvals: approvals.status(),
    ...(() => {
      const q = quotas.status(identity.currentUser);
      return q ? { quotas: q } : {};
    })(),
  });

  let reloading: Promise<ReloadReport> = Promise.resolve({ ok: true, added: [], removed: [], restarted: [], unchanged: [] });
  const reload = (): Promise<ReloadReport> => {
    reloading = reloading.then(async () => {
      const next = await loadConfig();
      if (!next.ok) {
        // The running configuration stays.
        logger.log('error', 'config.rejected', { error: next.error });
        record({ type: 'config.rejected', at: new Date().toISOString(), reason: next.error });
        return { ok: false, error: next.error, added: [], removed: [], restarted: [], unchanged: [] };
      }
      const restartNeeded = ['listen', 'limits'].filter((key) => JSON.stringify(next.config[key as 'listen']) !== JSON.stringify(config[key as 'listen']));
      if (restartNeeded.length > 0) {
        logger.log('warn', 'config.restart_needed', { fields: restartNeeded, note: 'these settings take effect when Gatehouse restarts' });
      }
      const restrictChanged = JSON.stringify(next.config.restrict) !== JSON.stringify(config.restrict);
      config = next.config;
      if (restrictChanged) {
        restrictions = new Restrictions(config.restrict);
        gateway.refresh({ policyChanged: true });
      }
      const result = await applyServers();
      logger.log('info', 'config.applied', { ...result });
      record({ type: 'config.applied', at: new Date().toISOString(), detail: { ...result } });
      return { ok: true, ...result };
    });
    return reloading;
  };

  const handlers: ControlHandlers = {
    status: async () => status(),
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
    'config.reload': () => reload(),
    'clients.reload': async () => {
      const before = new Set(registry.list().map((c) => c.name));
      registry.reload();
      const after = new Set(registry.list().map((c) => c.name));
      const at = new Date().toISOString();
      for (const name of after) if (!before.has(name)) record({ type: 'client.paired', at, client: name });
      for (const name of before) if (!after.has(name)) record({ type: 'client.revoked', at, client: name });
      oauth.forgetRevoked(after);
      return { clients: registry.list().length };
    },
    'clients.pair': async ({ name }) => {
      const paired = await pairing.pair({ client: name, via: 'http' });
      if (!paired.ok) throw new GatehouseError(paired.code, paired.reason);
      return { name, token: paired.token, expiresAt: paired.record.expiresAt, scope: paired.scope };
    },
    'identity.status': async () => identityStatus(),
    'identity.reload': async () => {
      if (!session) return identityStatus();
      return session.reload();
    },
    'identity.logout': async () => {
      if (!session) throw new GatehouseError('no_identity_provider', 'no identity provider is configured; calls are made as the OS user');
      return session.logout();
    },
    'secrets.changed': async ({ names }) => {
      // Only the servers whose config refers to one of these secrets restart; the others keep running.
      const changed = new Set(names);
      const restarted: string[] = [];
      for (const server of supervisor.names()) {
        const c = supervisor.config(server);
        if (!c || !secretReferences(c).some((n) => changed.has(n))) continue;
        if (supervisor.status(server)?.state === 'stopped') continue;
        await supervisor.restart(server);
        restarted.push(server);
      }
      logger.log('info', 'secrets.changed', { names, restarted });
      return { restarted };
    },
    'console.link': async () => {
      if (!consoleServer || !options.ui) return { announced: false, reason: 'the console is not served: start the daemon with `gatehouse daemon --ui`' };
      options.ui.announce(consoleServer.newLoginUrl());
      return { announced: true };
    },
    // The console's own queries and actions (src/node/console/handlers.ts).
    ...consoleHandlers({
      config: () => config,
      rawServers: () => readRawServers(paths.configFile),
      configFile: paths.configFile,
      policyMode: () => policy.mode,
      policyVersion: () => policy.version,
      policyState: () => bundlePolicy.state,
      policy,
      restrictions: () => restrictions,
      readOnly,
      currentUser: () => identity.currentUser,
      supervised: supervisor,
      logFile: (server) => serverLogs.fileOf(server),
      clients: () => registry.list(),
      sessions: () => sessions.statuses(),
      keychain,
      logger,
      record,
      reload,
      registry,
      forgetRevoked: (names) => oauth.forgetRevoked(names),
      restart: (server) => supervisor.restart(server),
      audit: {
        query: (filter) => audit.query(filter),
        head: () => localAudit.status().records,
        file: audit.file,
        publicKey: () => audit.deviceKey?.publicKey,
        signingNote: () => (audit.deviceKey ? undefined : 'the device key is not available, so signed checkpoints are checked against the key recorded in the log'),
      },
      policyStatus: () => status().policy,
      history: bundleHistory,
      ...(session && identitySettings.kind === 'ok' ? { identity: { settings: identitySettings.settings, session } } : {}),
      emit: (event) => late.hub?.emit(event),
    }),
  };
  const control = new ControlServer(paths.controlSocketPath, handlers);
  const hub = new ConsoleHub(handlers, status);
  late.hub = hub;
  supervisor.on('state', () => hub.changed());
  audit.events.on('commit', () => hub.changed());
  let consoleServer: ConsoleServer | undefined;
  function requireServer(name: string): void {
    if (!serverExists(name)) throw new GatehouseError('unknown_server', `no server named "${name}" is configured`);
  }

  const opened: { close(): Promise<void> }[] = [];
  let watcher: ConfigWatcher | undefined;
  try {
    await socket.listen();
    opened.push(socket);
    await control.listen();
    opened.push(control);
    if (http) {
      await http.listen();
      opened.push(http);
    }
    if (options.ui) {
      consoleServer = new ConsoleServer({ hub, staticDir: options.ui.staticDir ?? join(packageRoot(), 'dist', 'renderer'), ...(options.ui.port !== undefined ? { port: options.ui.port } : {}), logger });
      await consoleServer.listen();
      opened.push(consoleServer);
    }
    const info: RuntimeInfo = {
      pid: process.pid,
      version: VERSION,
      startedAt: startedAt.toISOString(),
      socketPath: paths.socketPath,
      controlSocketPath: paths.controlSocketPath,
      ...(http ? { httpUrl: http.url } : {}),
    };
    writeFileSync(runtimeInfoFile(paths), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
    // The sign-in renews in the background: the endpoints answer meanwhile, and calls wait for it (refused with a clear reason).
    if (session) void session.start().catch((error) => logger.log('error', 'identity.start_failed', { error: errorMessage(error) }));
    // Servers start in parallel; the endpoints already answer while they come up.
    serving = true;
    const applied = applyServers();
    watcher = watchConfigFile(paths.configFile, () => void reload());
    await applied;
  } catch (error) {
    policyController.stop();
    session?.stop();
    await closeGovernance();
    await humanPage.close();
    await Promise.allSettled(opened.map((o) => o.close()));
    await supervisor.dispose();
    quotaStore.close();
    approvalJournal.close();
    await localAudit.close();
    lock.release();
    throw error;
  }
  bundleHistory.observe(bundlePolicy.state);
  logger.log('info', 'daemon.ready', { socket: paths.socketPath, http: http?.url, config: paths.configFile, policy: policy.mode, ...(consoleServer ? { console: consoleServer.origin } : {}) });
  // The login address goes to the person only (the daemon's terminal), never to the log.
  if (consoleServer && options.ui) options.ui.announce(consoleServer.newLoginUrl());

  let stopping: Promise<void> | undefined;
  return {
    paths,
    httpUrl: http?.url,
    console: hub,
    consoleUrl: consoleServer?.origin,
    status,
    reload,
    stop: () => {
      stopping ??= (async () => {
        watcher?.close();
        hub.close();
        policyController.stop();
        session?.stop();
        // Waiting approval requests are refused (and audited) before the channel and the audit log close.
        await closeGovernance();
        await humanPage.close();
        sessions.dispose();
        await Promise.allSettled(opened.map((o) => o.close()));
        await supervisor.dispose();
        quotaStore.close();
        approvalJournal.close();
        rmSync(runtimeInfoFile(paths), { force: true });
        lock.release();
        await localAudit.close();
        logger.log('info', 'daemon.stopped', {});
      })();
      return stopping;
    },
  };
}

export function describeStartupError(error: unknown): string {
  return errorMessage(error);
}
