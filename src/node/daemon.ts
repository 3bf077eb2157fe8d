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
import { NoApprovals, NoQuotas } from '../core/governance.js';
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
import { LocalIdentity } from './local-identity.js';
import { PolicyController } from './policy/controller.js';
import { managedDirFor } from './policy/settings.js';
import { StaticIdentity, type TestIdentity } from './policy/static-identity.js';
import { jsonLogger } from './logger.js';
import { defaultPaths, ensureUserOnlyDir, type GatehousePaths } from './paths.js';
import { RotatingServerLogs } from './server-logs.js';
import { NodeUpstreamConnector } from './upstream/connector.js';
import { VERSION, packageRoot } from './version.js';

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
}

export interface Daemon {
  readonly paths: GatehousePaths;
  readonly httpUrl: string | undefined;
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
  const identity = options.testIdentity ? new StaticIdentity(registry, options.testIdentity) : new LocalIdentity(registry);
  // The policy in force: a verified managed bundle (or fail-closed, or unmanaged), put there by the
  // policy controller below, inside the user's own restrictions, which can only take away.
  let restrictions = new Restrictions(config.restrict);
  const bundlePolicy = new BundlePolicy({ now: () => Date.now(), lists: (server) => supervisor.lists(server), logger });
  const policy = new NarrowedPolicy(bundlePolicy, () => restrictions);

  // The supervisor needs the gateway to relay server requests, and the gateway needs the supervisor: bind late.
  let relayLog: (server: string, message: LogMessage) => void = () => undefined;
  let relayServerRequest: ServerRequestHandler = (_server, method) => Promise.reject(new Error(`Gatehouse is starting and cannot relay ${method} yet`));
  const supervisor = new Supervisor({
    connector: new NodeUpstreamConnector({ version: VERSION, maxMessageBytes: config.limits.maxMessageBytes }),
    clock: systemClock,
    logger,
    ringLines: config.limits.logRingLines,
    logSink: new RotatingServerLogs(paths.logDir, config.limits.logFileBytes, config.limits.logFilesKept),
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
    quota: new NoQuotas(),
    approval: new NoApprovals(),
  });
  relayServerRequest = (server, method, params, signal) => gateway.routeServerRequest(server, method, params, signal);
  relayLog = (server, message) => gateway.relayLog(server, message);
  const sessions = new SessionHost(gateway, { version: VERSION });

  // Which servers run: the catalog's in managed mode, the user's own when unmanaged, none when
  // failing closed; never one the user switched off for everyone.
  const policyController = new PolicyController({
    managedDir: options.managedDir ?? managedDirFor(process.platform),
    stateDir: paths.stateDir,
    dataDir: paths.dataDir,
    policy: bundlePolicy,
    logger,
    audit: { append: record },
    onChange: () => {
      gateway.refresh({ policyChanged: true });
      if (serving) void applyServers();
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
  supervisor.on('lists', () => gateway.refresh());
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
    authenticate: (hello) => identity.fromHello(hello),
    serverExists,
  });
  const http = config.listen.http.enabled
    ? new HttpListener({
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
    user: identity.user.displayName,
    policy: {
      mode: policy.mode,
      ...(policy.version ? { version: policy.version } : {}),
      ...policyController.status(),
      ...(policy.mode === 'managed' && identity.user.source === 'os' ? { notice: `${SIGN_IN_REQUIRED}; sign-in arrives with SSO (gatehouse login)` } : {}),
    },
    configFile: paths.configFile,
    socketPath: paths.socketPath,
    ...(http ? { httpUrl: http.url } : {}),
    servers: supervisor.statuses(),
    clients: sessions.statuses(),
    audit: localAudit.status(),
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

  const control = new ControlServer(paths.controlSocketPath, {
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
      return { clients: registry.list().length };
    },
  });
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
    const info: RuntimeInfo = {
      pid: process.pid,
      version: VERSION,
      startedAt: startedAt.toISOString(),
      socketPath: paths.socketPath,
      controlSocketPath: paths.controlSocketPath,
      ...(http ? { httpUrl: http.url } : {}),
    };
    writeFileSync(runtimeInfoFile(paths), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
    // Servers start in parallel; the endpoints already answer while they come up.
    serving = true;
    const applied = applyServers();
    watcher = watchConfigFile(paths.configFile, () => void reload());
    await applied;
  } catch (error) {
    policyController.stop();
    await Promise.allSettled(opened.map((o) => o.close()));
    await supervisor.dispose();
    await localAudit.close();
    lock.release();
    throw error;
  }
  logger.log('info', 'daemon.ready', { socket: paths.socketPath, http: http?.url, config: paths.configFile, policy: policy.mode });

  let stopping: Promise<void> | undefined;
  return {
    paths,
    httpUrl: http?.url,
    status,
    reload,
    stop: () => {
      stopping ??= (async () => {
        watcher?.close();
        policyController.stop();
        sessions.dispose();
        await Promise.allSettled(opened.map((o) => o.close()));
        await supervisor.dispose();
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
