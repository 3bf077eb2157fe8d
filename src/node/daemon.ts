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
import { NoApprovals, NoQuotas, UnmanagedPolicy } from '../core/governance.js';
import { systemClock, type Logger, type UpstreamLists } from '../core/ports.js';
import { Supervisor, type ServerRequestHandler } from '../core/supervisor/supervisor.js';
import { JsonlAuditLog } from './audit-log.js';
import { ClientRegistry } from './client-registry.js';
import { ensureConfigFile, loadConfigFile, watchConfigFile, type ConfigWatcher } from './config-file.js';
import { ControlServer } from './control/control-server.js';
import { HttpListener } from './downstream/http-listener.js';
import { SessionHost } from './downstream/sessions.js';
import { SocketListener } from './downstream/socket-listener.js';
import { LocalIdentity } from './local-identity.js';
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
  if (!options.configFile) await ensureConfigFile(paths.configFile, join(packageRoot(), 'resources', 'default-config.json'));

  const loadConfig = () => loadConfigFile(paths.configFile, { dataDir: paths.dataDir });
  const first = await loadConfig();
  if (!first.ok) throw new GatehouseError('config_invalid', first.error);
  let config: GatehouseConfig = first.config;
  // The default configuration's filesystem server is confined to this folder.
  await mkdir(join(paths.dataDir, 'demo'), { recursive: true });

  const audit = new JsonlAuditLog(join(paths.stateDir, 'audit.jsonl'));
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  const identity = new LocalIdentity(registry);
  const policy = new UnmanagedPolicy();

  // The supervisor needs the gateway to relay server requests, and the gateway needs the supervisor: bind late.
  let relayServerRequest: ServerRequestHandler = (_server, method) => Promise.reject(new Error(`Gatehouse is starting and cannot relay ${method} yet`));
  const supervisor = new Supervisor({
    connector: new NodeUpstreamConnector({ version: VERSION, maxMessageBytes: config.limits.maxMessageBytes }),
    clock: systemClock,
    logger,
    ringLines: config.limits.logRingLines,
    logSink: new RotatingServerLogs(paths.logDir, config.limits.logFileBytes, config.limits.logFilesKept),
    onServerRequest: (server, method, params, signal) => relayServerRequest(server, method, params, signal),
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
  const sessions = new SessionHost(gateway, { version: VERSION });
  supervisor.on('lists', () => gateway.refresh());
  supervisor.on('state', (name, status) => {
    logger.log(status.state === 'ready' ? 'info' : 'warn', 'server.state', { server: name, state: status.state, ...(status.lastError ? { error: status.lastError } : {}) });
    audit.append({ type: 'server.state', at: new Date().toISOString(), server: name, reason: status.lastError, detail: { state: status.state, restarts: status.restarts } });
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
    policy: { mode: policy.mode },
    configFile: paths.configFile,
    socketPath: paths.socketPath,
    ...(http ? { httpUrl: http.url } : {}),
    servers: supervisor.statuses(),
    clients: sessions.statuses(),
    audit: { file: audit.file, records: audit.records },
  });

  let reloading: Promise<ReloadReport> = Promise.resolve({ ok: true, added: [], removed: [], restarted: [], unchanged: [] });
  const reload = (): Promise<ReloadReport> => {
    reloading = reloading.then(async () => {
      const next = await loadConfig();
      if (!next.ok) {
        // The running configuration stays.
        logger.log('error', 'config.rejected', { error: next.error });
        audit.append({ type: 'config.rejected', at: new Date().toISOString(), reason: next.error });
        return { ok: false, error: next.error, added: [], removed: [], restarted: [], unchanged: [] };
      }
      const restartNeeded = ['listen', 'limits'].filter((key) => JSON.stringify(next.config[key as 'listen']) !== JSON.stringify(config[key as 'listen']));
      if (restartNeeded.length > 0) {
        logger.log('warn', 'config.restart_needed', { fields: restartNeeded, note: 'these settings take effect when Gatehouse restarts' });
      }
      config = next.config;
      const result = await supervisor.apply(config.servers);
      logger.log('info', 'config.applied', { ...result });
      audit.append({ type: 'config.applied', at: new Date().toISOString(), detail: { ...result } });
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
      registry.reload();
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
    const applied = supervisor.apply(config.servers);
    watcher = watchConfigFile(paths.configFile, () => void reload());
    await applied;
  } catch (error) {
    await Promise.allSettled(opened.map((o) => o.close()));
    await supervisor.dispose();
    audit.close();
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
        sessions.dispose();
        await Promise.allSettled(opened.map((o) => o.close()));
        await supervisor.dispose();
        rmSync(runtimeInfoFile(paths), { force: true });
        audit.close();
        logger.log('info', 'daemon.stopped', {});
      })();
      return stopping;
    },
  };
}

export function describeStartupError(error: unknown): string {
  return errorMessage(error);
}
