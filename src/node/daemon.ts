/**
 * The composition root for headless Gatehouse (and, through the same function, the desktop app):
 * it builds the core with real adapters and opens the local endpoints. Nothing else constructs
 * these parts; tests call `startDaemon` with their own paths and configuration. The parts it wires
 * live beside it in `daemon/`: who the user is (`user-identity.ts`), quotas and approvals
 * (`governance.ts`), the configuration in force (`live-config.ts`), the control API's answers
 * (`control-handlers.ts`), the human channel (`human.ts`), the catalogue (`catalog.ts`), status
 * (`status.ts`), and the runtime file and last-seen note (`runtime-info.ts`).
 */
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ReloadReport } from '../common/control-api.js';
import { GatehouseError, errorMessage } from '../common/errors.js';
import type { DaemonStatus, IdentityStatus } from '../common/status.js';
import { Gateway } from '../core/gateway.js';
import { ToolSearch } from '../core/search/view.js';
import { SessionKeys } from '../core/quotas/session.js';
import { BundlePolicy } from '../core/policy/bundle-policy.js';
import { NarrowedPolicy } from '../core/policy/narrowing.js';
import { AskingPolicy } from '../core/approvals/local-rules.js';
import { systemClock, type AuditSink, type LogMessage, type Logger, type UpstreamLists } from '../core/ports.js';
import { Supervisor, type ApplyResult, type ServerRequestHandler } from '../core/supervisor/supervisor.js';
import type { Durability } from './audit/schema.js';
import { openLocalAudit } from './audit/local.js';
import { interruptedOutcome } from '../core/audit/interrupted.js';
import type { SecretStore } from '../core/secrets.js';
import { KeyStore } from '../core/keystore/keystore.js';
import { openKeyStore } from './keystore/open.js';
import { ClientRegistry } from './client-registry.js';
import { ensureConfigFile, loadConfigFile, watchConfigFile, type ConfigWatcher } from './config-file.js';
import { ControlServer } from './control/control-server.js';
import { HttpListener } from './downstream/http-listener.js';
import { SessionHost } from './downstream/sessions.js';
import { SocketListener, isLive } from './downstream/socket-listener.js';
import { acquireDaemonLock } from './daemon-lock.js';
import { LocalIdentity } from './local-identity.js';
import { ScopedPolicy } from '../core/identity/client-scope.js';
import type { Principal } from '../core/principal.js';
import { DesktopNotifier, type Notifier } from './human/notify.js';
import { OAuthServer } from './identity/oauth-server.js';
import type { ClientMetadataPolicy } from './identity/client-metadata.js';
import { PairingService, PAIRING_DEADLINE_MS } from './identity/pairing.js';
import { BridgePairings } from './identity/bridge-pairing.js';
import { loadIdentitySettings } from './identity/settings.js';
import { SecretResolver, SecretScrubber, USER_SECRET_PREFIX } from './secrets/resolver.js';
import { PolicyController } from './policy/controller.js';
import { managedDirFor, readTelemetryPolicy } from './policy/settings.js';
import { chooseTelemetry, openTelemetry } from './telemetry/open.js';
import { StaticIdentity, type TestIdentity } from './policy/static-identity.js';
import { trimHeapWhenIdle } from './heap.js';
import type { HeldCompiler } from './optimizing-compiler.js';
import { jsonLogger } from './logger.js';
import { defaultPaths, ensureUserOnlyDir, type GatehousePaths } from './paths.js';
import { RotatingServerLogs } from './server-logs.js';
import { NodeUpstreamConnector } from './upstream/connector.js';
import { O200kTokenCounter } from './search/tokens.js';
import { SandboxEvents } from '../core/sandbox/events.js';
import { SandboxLauncher } from './sandbox/launcher.js';
import type { SandboxRequirement } from '../common/sandbox.js';
import { VERSION, packageRoot } from './version.js';
import { readRawServers } from './console/handlers.js';
import { ConsoleHub } from './console/hub.js';
import { teeLogSink } from './console/log-tee.js';
import { BundleHistory } from './console/policy-report.js';
import { ConsoleServer } from './console/server.js';
import { controlHandlers } from './daemon/control-handlers.js';
import { openGovernance } from './daemon/governance.js';
import { openHumanChannel, type HumanOptions, type QuestionsApi } from './daemon/human.js';
import { LiveConfig } from './daemon/live-config.js';
import { announcePresence, type Presence } from './daemon/runtime-info.js';
import { daemonStatus, identityStatus as identityStatusOf, type StatusParts } from './daemon/status.js';
import { nodeSelfCommand, type SelfCommand } from './clients/launch.js';
import { openUserIdentity } from './daemon/user-identity.js';
import { UpstreamAuth, type EnterpriseSource } from './upstream-auth/service.js';
import { SignInOffers } from './upstream-auth/offer.js';
import { openBrowser } from './human/open-browser.js';
import { openCatalog } from './daemon/catalog.js';

export { runtimeInfoFile, type RuntimeInfo } from './daemon/runtime-info.js';

export interface DaemonOptions {
  /** A config file other than the user's default. */
  configFile?: string;
  /** Overrides for where everything lives (tests); defaults from the platform and GATEHOUSE_HOME. */
  paths?: GatehousePaths;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /**
   * The key store for the audit device key, the sign-in and the servers' secrets (tests pass an
   * in-memory store or their own `KeyStore`); default: the OS keychain, or the user-only file store
   * where none answers (src/core/keystore/keystore.ts).
   */
  secrets?: SecretStore | KeyStore;
  /** Audit store tuning (tests and benchmarks); see docs/audit.md. */
  audit?: { durability?: Durability; checkpointEvery?: number; checkpointIntervalMs?: number };
  /**
   * Tests only: where the managed policy settings are read from. Otherwise the platform's fixed
   * location (/etc/gatehouse, ...); no config field or environment variable can move it.
   */
  managedDir?: string;
  /** Tests only: a fixed signed-in user with group claims, behind the sign-in's port (`StaticIdentity`), instead of an identity provider. */
  testIdentity?: TestIdentity;
  /**
   * The human channel: where the person is asked (src/node/daemon/human.ts). Default: the daemon's
   * own terminal with the question page, and desktop notifications that say where to answer.
   */
  human?: HumanOptions & {
    /** Sign-in notices (a session that needs the person to sign in again). */
    notifier?: Notifier;
    pairingDeadlineMs?: number;
  };
  /** Tests only: how the sign-in session retries, and trusting a managed identity.json not owned by root. */
  identity?: { retry?: { initialMs: number; maxMs: number }; trustManagedOwner?: boolean };
  /**
   * `gatehouse daemon --ui`: serve the console on 127.0.0.1 (docs/console.md). `announce` shows the
   * console's address and a sign-in code to the person (the daemon's terminal), and says whether it
   * could; the code must never be logged or written anywhere else.
   */
  ui?: { port?: number; staticDir?: string; announce(url: string, code: string): boolean };
  /** How long a call waits for a person's approval before it is refused (default: `approvals.timeoutSeconds`; docs/approvals.md). */
  approvals?: { timeoutMs?: number };
  /** How this Gatehouse is run by absolute path, for the client entries the console writes (the packaged app passes its command). */
  selfCommand?: SelfCommand;
  /** Tests only: how HTTP clients' metadata documents are fetched (plain HTTP on loopback, shorter limits). */
  clientMetadata?: Partial<ClientMetadataPolicy>;
  /**
   * V8's optimizing compiler, held by the process while the core loaded (`gatehouse daemon`); the
   * daemon releases it when it first works: a client connects, or it is busy after start-up
   * (src/node/optimizing-compiler.ts).
   */
  heldCompiler?: HeldCompiler;
}

export interface Daemon {
  readonly paths: GatehousePaths;
  readonly httpUrl: string | undefined;
  /** The console's way in (Electron IPC, the headless console server): the console's control methods and its events. */
  readonly console: ConsoleHub;
  /** With `ui`: the console's origin (without a login key). */
  readonly consoleUrl: string | undefined;
  /**
   * The questions waiting for the person, for the desktop app's windows (and tests standing in for
   * them). In process only: nothing served on a socket or a port reaches it.
   */
  readonly questions: QuestionsApi;
  status(): DaemonStatus;
  reload(): Promise<ReloadReport>;
  stop(): Promise<void>;
}

/** What a call in flight when the daemon stops is answered with (the upstream stage adds what became of the call). */
const STOPPING = 'Gatehouse is stopping';
/** How long the stop waits for calls in flight to be answered before it closes the endpoints anyway. */
const STOP_CALLS_WAIT_MS = 2_000;

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
  // The default configuration's filesystem server is confined to this folder.
  await mkdir(join(paths.dataDir, 'demo'), { recursive: true });

  // Where keys and secrets are kept: the OS keychain, else the user-only file store (as policy and the user allow).
  const keychain: KeyStore = await keyStoreFor(options.secrets, {
    stateDir: paths.stateDir,
    ...(options.managedDir !== undefined ? { managedDir: options.managedDir } : {}),
    userSecretsInFile: first.config.keystore.userSecretsInFile,
  });
  logger.log('info', 'keystore.opened', { ...keychain.status() });
  const managedDir = options.managedDir ?? managedDirFor(process.platform);
  // Secret values known to this daemon, scrubbed from whatever servers write (and from telemetry's own log lines).
  const scrubber = new SecretScrubber();
  // Traces and metrics (docs/telemetry.md): the managed settings over the user's config; off unless one of them asks.
  // What the metrics read is bound once the parts exist; until then they report nothing.
  const observed: { status?: () => DaemonStatus } = {};
  const telemetry = await openTelemetry({
    choice: chooseTelemetry(first.config.telemetry, readTelemetryPolicy(managedDir)),
    secrets: keychain,
    scrubber,
    version: VERSION,
    logger,
    observe: {
      servers: () => observed.status?.().servers.map((server) => ({ name: server.name, state: server.state })) ?? [],
      quotas: () => observed.status?.().quotas,
      auditSync: () => observed.status?.().audit.sync,
    },
  });
  // The audit log first: everything after it records what it does.
  const localAudit = openLocalAudit({ stateDir: paths.stateDir, secrets: keychain, logger, ...(options.audit ?? {}) });
  const audit = localAudit.store;
  /** Events other than calls: a failed audit write is logged there, and must not break the part that reports it. */
  const record = (entry: Parameters<typeof audit.append>[0]): void => {
    try {
      audit.append(entry);
    } catch (error) {
      logger.log('error', 'audit.event_lost', { type: entry.type, error: errorMessage(error) });
    }
    telemetry.observeAudit(entry);
  };
  /** The calls' audit sink: with telemetry on, each record also feeds the metrics (after the log has it, or failed to). */
  const callAudit: AuditSink = telemetry.status().enabled
    ? {
        append: (entry) => {
          try {
            audit.append(entry);
          } finally {
            telemetry.observeAudit(entry);
          }
        },
        durable: () => audit.durable(),
      }
    : audit;
  // Calls the previous daemon had in flight when it died: their attempts get the outcome they never had.
  const interrupted = audit.unfinishedCalls();
  for (const attempt of interrupted) record(interruptedOutcome(attempt, startedAt.toISOString()));
  if (interrupted.length > 0) logger.log('warn', 'audit.interrupted_calls', { calls: interrupted.length });
  const integrity = audit.startupWarnings.length > 0 ? { integrity: audit.startupWarnings } : {};
  const recovered = interrupted.length > 0 ? { interruptedCalls: interrupted.length } : {};
  record({ type: 'audit.started', at: startedAt.toISOString(), detail: { version: VERSION, pid: process.pid, ...integrity, ...recovered } });
  const registry = new ClientRegistry(join(paths.stateDir, 'clients.json'));
  const notifier = options.human?.notifier ?? new DesktopNotifier(env);
  // Parts built further down that earlier parts call back into.
  const late: { gateway?: Gateway; hub?: ConsoleHub; upstreamAuth?: UpstreamAuth } = {};

  // The user: signed in with the organisation's IdP when identity.json names one, else the OS user.
  const user = openUserIdentity({
    settings: loadIdentitySettings({ managedDir, configDir: paths.configDir, ...(options.identity?.trustManagedOwner ? { trustManagedOwner: true } : {}) }),
    keychain,
    logger,
    notifier,
    ...(options.identity?.retry ? { retry: options.identity.retry } : {}),
    onChange: () => identityChanged(),
  });
  const { session } = user;
  const human = openHumanChannel({
    ...(options.human ?? {}),
    logger,
    notifier,
    pagePort: first.config.humanPage.port,
    env,
  });
  const humanChannel = human.desk;
  const pairingDeadlineMs = options.human?.pairingDeadlineMs ?? PAIRING_DEADLINE_MS;
  const pairing: PairingService = new PairingService({
    registry,
    channel: humanChannel,
    logger,
    audit: (event) => record(event),
    user: (): Principal['user'] => identity.currentUser,
    servers: (client, via) => offerable(client, via),
    deadlineMs: pairingDeadlineMs,
  });
  // Bridges are paired without making their client wait: the question outlives the connection that asked.
  const bridgePairings = new BridgePairings(pairing, logger);
  // A test identity stands behind the sign-in's own port; pairing is always wired (no unverified hello gets in).
  const sessionPort = options.testIdentity ? new StaticIdentity(options.testIdentity) : user.sessionPort;
  const identity = new LocalIdentity(registry, { bridges: bridgePairings, ...(sessionPort ? { session: sessionPort } : {}) });

  // The policy in force: a verified managed bundle (or fail-closed, or unmanaged), put there by the
  // policy controller below, inside the user's own restrictions, which can only take away; and
  // inside the scope the person gave each paired client (effective rights = user's ∩ client's).
  const bundlePolicy = new BundlePolicy({
    now: () => Date.now(),
    lists: (server) => supervisor.lists(server),
    logger,
    catalogName: (server) => catalog.service.catalogNameOf(server),
  });
  const readOnly = (server: string, tool: string): boolean => {
    const state = bundlePolicy.state;
    // Managed: the signed catalog says what is read-only. Unmanaged: the server's own annotation (the user trusts their servers).
    if (state.kind === 'enforcing') return state.evaluator.catalogTool(catalog.service.catalogNameOf(server) ?? server, tool)?.readOnly === true;
    if (state.kind === 'fail-closed') return false;
    const found = supervisor.lists(server)?.tools.find((t) => t.name === tool) as { annotations?: { readOnlyHint?: unknown } } | undefined;
    return found?.annotations?.readOnlyHint === true;
  };
  const live: LiveConfig = new LiveConfig(first.config, {
    load: loadConfig,
    logger,
    record,
    restrictionsChanged: () => late.gateway?.refresh({ policyChanged: true }),
    // Installed servers first: an install verified (or an upgrade ready) changes what runs.
    applyServers: async () => {
      await catalog.service.sync();
      return applyServers();
    },
  });
  const place = { platform: process.platform, home: env.HOME && env.HOME !== '' ? env.HOME : homedir(), env };
  // The signed catalogue: verified installs, upgrades, fleet baselines and shadow servers (docs/catalog.md).
  const catalog = openCatalog({
    dataDir: paths.dataDir,
    configFile: paths.configFile,
    env,
    place,
    logger,
    record: (entry) => record(entry),
    policy: () => bundlePolicy.state,
    config: () => live.config,
    storedSecrets: async () =>
      (await keychain.list())
        .map(String)
        .filter((n) => n.startsWith(USER_SECRET_PREFIX))
        .map((n) => n.slice(USER_SECRET_PREFIX.length)),
    reload: () => live.reload(),
    changed: () => {
      if (serving) void applyServers();
      late.hub?.changed();
    },
    running: () =>
      supervisor.names().flatMap((name) => {
        const lists = supervisor.lists(name);
        return lists ? [{ name, lists, status: supervisor.status(name) }] : [];
      }),
  });
  // The user's own approval rules sit inside the client's scope: they add a question to what is allowed, never more.
  const narrowed = new NarrowedPolicy(bundlePolicy, () => live.restrictions);
  const policy = new ScopedPolicy(new AskingPolicy(narrowed, () => live.asking, readOnly), readOnly);
  /**
   * What the pairing page offers: the servers, tools and prompts the user may see, through the same
   * visibility their lists get (the policy, their restrictions, for a client of this name), never
   * what is hidden from them everywhere else.
   */
  const offerable = (client: string, via: 'socket' | 'http' | 'oauth') => {
    const principal: Principal = {
      get user() {
        return identity.currentUser;
      },
      client: { id: `pairing:${client}`, name: client, verified: true, transport: via === 'socket' ? 'socket' : 'http' },
    };
    return supervisor
      .names()
      .filter((name) => gateway.serverVisible(principal, name))
      .map((name) => {
        const scope = { server: name };
        return { name, tools: [...gateway.listTools(principal, scope).map((t) => t.name), ...gateway.listPrompts(principal, scope).map((p) => p.name)] };
      });
  };
  const sessionKeys = new SessionKeys();
  const governance = openGovernance({
    stateDir: paths.stateDir,
    bundlePolicy,
    channel: humanChannel,
    sessions: sessionKeys,
    record,
    logger,
    approvalTimeoutMs: () => options.approvals?.timeoutMs ?? live.config.approvals.timeoutSeconds * 1000,
  });
  const { quotas, approvals } = governance;

  let lastUser = '';
  /** The user signed in, renewed with other groups, expired or signed out: every cached decision and every list may change. */
  function identityChanged(): void {
    const current = session?.currentUser();
    const key = JSON.stringify([current?.id, current?.groups, session?.status().state]);
    if (key === lastUser) return;
    const before = lastUser;
    lastUser = key;
    const at = new Date().toISOString();
    if (current && !before.includes(JSON.stringify(current.id))) {
      record({ type: 'identity.signed_in', at, user: current.id, detail: { displayName: current.displayName, groups: current.groups } });
    }
    if (!current && before !== '') record({ type: 'identity.signed_out', at });
    bundlePolicy.install(bundlePolicy.state);
    // "For this session" approvals were given to the user who was asked.
    approvals.revokeSessionGrants();
    late.gateway?.refresh({ policyChanged: true });
    late.hub?.changed(['identity', 'tools', 'policy']);
    // Remote servers' tokens belong to one user: another user's (or none) take their place.
    late.upstreamAuth?.userChanged();
  }

  const serverLogs = new RotatingServerLogs(paths.logDir, live.config.limits.logFileBytes, live.config.limits.logFilesKept);
  // What changed between the bundles in force, for the console's Policy screen.
  const bundleHistory = new BundleHistory();
  const resolver = new SecretResolver(keychain, scrubber);
  // Remote servers that need the user to sign in (OAuth): their tokens, per user, in the key store (docs/remote-servers.md).
  const upstreamAuth: UpstreamAuth = new UpstreamAuth({
    keychain,
    logger,
    record,
    user: () => ({ id: identity.currentUser.id, signedIn: !session || session.currentUser() !== undefined }),
    config: (server) => supervisor.config(server),
    servers: () => supervisor.names(),
    restart: (server) => supervisor.restart(server),
    scrub: (name, values) => scrubber.set(name, values),
    enterprise: () => enterpriseSource(user),
    changed: () => late.hub?.changed(['servers', 'tools']),
  });
  late.upstreamAuth = upstreamAuth;
  const signInOffers = new SignInOffers({
    channel: humanChannel,
    signIn: (server) => upstreamAuth.signIn(server),
    cancel: (server, reason) => upstreamAuth.cancelSignIn(server, reason),
    address: (server) => {
      const config = supervisor.config(server);
      return config?.type === 'http' ? config.url : undefined;
    },
    openBrowser: (url) => openBrowser(url, env),
    logger,
  });

  // Every stdio server is confined with its profile where this machine can (docs/sandbox.md); a
  // bundle that requires confinement keeps the others from starting.
  const sandboxRequirement = (): SandboxRequirement => {
    const state = bundlePolicy.state;
    if (state.kind === 'enforcing') return state.evaluator.bundle.content.sandbox ?? 'preferred';
    return state.kind === 'fail-closed' ? 'required' : 'preferred';
  };
  const sandboxEvents = new SandboxEvents({ clock: systemClock, append: record });
  const sandbox = new SandboxLauncher({
    paths,
    env,
    requirement: sandboxRequirement,
    fromCatalog: () => bundlePolicy.state.kind === 'enforcing',
    events: sandboxEvents,
    record,
    logger,
  });

  // The supervisor needs the gateway to relay server requests, and the gateway needs the supervisor: bind late.
  let relayLog: (server: string, message: LogMessage) => void = () => undefined;
  let relayServerRequest: ServerRequestHandler = (_server, method) => Promise.reject(new Error(`Gatehouse is starting and cannot relay ${method} yet`));
  const supervisor: Supervisor = new Supervisor({
    connector: new NodeUpstreamConnector({
      version: VERSION,
      maxMessageBytes: live.config.limits.maxMessageBytes,
      secrets: {
        resolve: (server, c) => resolver.resolve(server, c),
        scrub: (text) => scrubber.scrub(text),
        scrubError: (error) => scrubber.scrubError(error),
        active: () => scrubber.size > 0,
      },
      sandbox,
      auth: upstreamAuth,
    }),
    annotate: (name, status) => {
      const auth = upstreamAuth.status(name);
      return auth ? { ...status, auth } : status;
    },
    clock: systemClock,
    logger,
    ringLines: live.config.limits.logRingLines,
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
      signInNeeded: (name) => {
        const status = supervisor.status(name);
        return status?.state === 'needs-sign-in'
          ? (status.lastError ?? `server "${name}" needs you to sign in: run \`gatehouse servers login ${name}\``)
          : undefined;
      },
    },
    onSignInNeeded: (server, principal) => signInOffers.offer(server, principal.client.name),
    audit: callAudit,
    ...(telemetry.tracer ? { tracer: telemetry.tracer } : {}),
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
  // The search view (docs/search.md): another view of the same gateway, chosen per client.
  const search = new ToolSearch(gateway);
  // V8 optimizes again once the daemon works: a client connects (its calls are the hot path), or it
  // is busy after start-up (src/node/optimizing-compiler.ts; the CLI held the compiler).
  let compilerHeld = options.heldCompiler !== undefined;
  const releaseCompiler = (reason: 'client' | 'busy'): void => {
    if (!compilerHeld) return;
    compilerHeld = false;
    options.heldCompiler?.release();
    logger.log('debug', 'daemon.compiler_released', { reason, afterMs: Date.now() - startedAt.getTime() });
  };
  const sessions = new SessionHost(gateway, {
    version: VERSION,
    search,
    // A session ends with its connection: its quota counters leave status, its "for this session" approvals lapse.
    onClose: (session) => sessionKeys.end(session.principal),
    onChange: () => {
      releaseCompiler('client');
      late.hub?.changed(['clients']);
    },
    views: (client, requested) => {
      const view = requested ?? live.config.clients[client]?.view ?? 'aggregate';
      return view === 'search' ? { kind: 'search', pinned: [...(live.config.clients[client]?.pinned ?? [])] } : undefined;
    },
  });

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
      if (serving)
        void catalog.service
          .sync()
          .then(() => applyServers())
          .then(() => restartForSandboxRequirement());
      late.hub?.changed(['policy', 'tools', 'servers', 'identity']);
    },
  });
  let serving = false;
  let lastRequirement = sandboxRequirement();
  /** A bundle that starts or stops requiring confinement: servers started under the other rule start again under this one. */
  const restartForSandboxRequirement = (): void => {
    const now = sandboxRequirement();
    if (now === lastRequirement) return;
    lastRequirement = now;
    for (const name of supervisor.names()) {
      const config = supervisor.config(name);
      if (config?.type !== 'stdio') continue;
      const state = supervisor.status(name)?.confinement?.state ?? sandbox.describe(name, config).state;
      const conflicts = now === 'required' ? state === 'unconfined' : state === 'refused';
      if (conflicts) void supervisor.restart(name).catch(() => undefined);
    }
  };
  const effectiveServers = () =>
    Object.fromEntries(
      Object.entries({ ...catalog.service.servers(), ...policyController.servers(live.config.servers) }).filter(
        ([name]) => !live.restrictions.serverDisabled(name),
      ),
    );
  let applying: Promise<unknown> = Promise.resolve();
  const applyServers = (): Promise<ApplyResult> => {
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
      catalog.observeLists();
      late.hub?.changed(['tools', 'servers', 'clients']);
    });
  });
  supervisor.on('state', (name, status) => {
    const error = status.lastError ? { error: status.lastError } : {};
    // Starting, ready and stopped are the ordinary life of a server; only failing is worth a warning.
    const failing = status.state === 'backing-off' || status.state === 'crash-looping';
    logger.log(failing ? 'warn' : 'info', 'server.state', { server: name, state: status.state, ...error });
    const at = new Date().toISOString();
    const detail = { state: status.state, restarts: status.restarts };
    record({ type: 'server.state', at, server: name, reason: status.lastError, detail });
    if (failing && status.lastError) record({ type: 'server.crashed', at, server: name, reason: status.lastError, detail });
    if (status.state === 'ready' && status.restarts > 0) record({ type: 'server.restarted', at, server: name, detail: { restarts: status.restarts } });
  });
  supervisor.on('resourceUpdated', (_name, uri) => sessions.resourceUpdated([uri]));

  // A credential revoked by any path (the console, `gatehouse clients revoke`, a replayed OAuth code) ends its live sessions at once.
  registry.onChange(({ revoked }) => {
    if (revoked.length > 0)
      sessions.end(
        (session) => !identity.credentialCurrent(session.principal),
        (session) => `the credential of client "${session.principal.client.name}" was revoked`,
      );
    late.hub?.changed(['clients', 'tools']);
  });

  /** A server's own view opens for a configured server, and, once the caller is known, only if they may see something of it. */
  const serverExists = (name: string, principal?: Principal) =>
    supervisor.names().includes(name) && (principal === undefined || gateway.serverVisible(principal, name));
  const socket = new SocketListener({
    path: paths.socketPath,
    maxMessageBytes: live.config.limits.maxMessageBytes,
    sessions,
    logger,
    authenticate: (hello) => identity.fromHello(hello),
    serverExists,
    pairingWhere: () => human.whereToAnswer(),
    notice: (principal) => gateway.notice(principal),
  });
  // MCP authorization for HTTP clients: Gatehouse is their OAuth 2.1 authorization server, and consent is the same pairing.
  const oauth = new OAuthServer({
    stateFile: join(paths.stateDir, 'oauth-clients.json'),
    pairing,
    logger,
    clientMetadata: { allowPrivateAddresses: live.config.listen.http.clientMetadata.allowPrivateAddresses, ...(options.clientMetadata ?? {}) },
    revoke: (name) => {
      if (registry.revoke(name)) {
        record({ type: 'client.revoked', at: new Date().toISOString(), client: name, reason: 'its authorization code was used twice' });
      }
    },
  });
  const http = live.config.listen.http.enabled
    ? new HttpListener({
        oauth,
        port: live.config.listen.http.port,
        limits: {
          maxConnections: live.config.listen.http.maxConnections,
          headersTimeoutMs: live.config.listen.http.headersTimeoutMs,
          requestTimeoutMs: live.config.listen.http.requestTimeoutMs,
        },
        maxMessageBytes: live.config.limits.maxMessageBytes,
        sessions,
        logger,
        authenticate: (token) => identity.fromBearer(token),
        serverExists,
        onListChanged: (listener) => gateway.onChange(listener),
      })
    : undefined;

  const statusParts: StatusParts = {
    version: VERSION,
    startedAt,
    paths,
    policy,
    policyController,
    bundlePolicy,
    identity,
    user,
    supervisor,
    sandbox,
    sessions,
    localAudit,
    keychain,
    human,
    governance,
    http,
    catalog,
    telemetry,
  };
  const identityStatus = (): IdentityStatus => identityStatusOf(statusParts);
  const status = (): DaemonStatus => daemonStatus(statusParts);
  observed.status = status;

  let consoleServer: ConsoleServer | undefined;
  const handlers = controlHandlers({
    status,
    supervisor,
    registry,
    pairing,
    logger,
    record,
    reload: () => live.reload(),
    forgetRevoked: (names) => oauth.forgetRevoked(names),
    identityStatus,
    session,
    upstreamAuth,
    search: {
      configFile: paths.configFile,
      config: () => live.config,
      reload: () => live.reload(),
      clients: () => registry.list(),
      currentUser: () => identity.currentUser,
      gateway,
      search,
      tokens: new O200kTokenCounter(),
    },
    consoleLink: () => {
      if (!consoleServer || !options.ui) return { announced: false, reason: 'the console is not served: start the daemon with `gatehouse daemon --ui`' };
      const login = consoleServer.newLoginCode();
      if (options.ui.announce(login.url, login.code)) return { announced: true };
      consoleServer.forgetLoginCodes();
      return {
        announced: false,
        reason: 'the daemon has no terminal to show a sign-in code on; run `gatehouse daemon --ui` in a terminal, or use the desktop app',
      };
    },
    questions: () => human.report(),
    changed: (topics) => late.hub?.changed(topics),
    console: {
      config: () => live.config,
      rawServers: () => readRawServers(paths.configFile),
      configFile: paths.configFile,
      policyMode: () => policy.mode,
      policyVersion: () => policy.version,
      policyState: () => bundlePolicy.state,
      policy,
      restrictions: () => live.restrictions,
      readOnly,
      currentUser: () => identity.currentUser,
      supervised: supervisor,
      logFile: (server) => serverLogs.fileOf(server),
      clients: () => registry.list(),
      sessions: () => sessions.statuses(),
      keychain,
      logger,
      record,
      reload: () => live.reload(),
      registry,
      forgetRevoked: (names) => oauth.forgetRevoked(names),
      restart: (server) => supervisor.restart(server),
      audit: {
        query: (filter) => audit.query(filter),
        head: () => localAudit.status().records,
        file: audit.file,
        publicKey: () => audit.deviceKey?.publicKey,
        signingNote: () =>
          audit.deviceKey ? undefined : 'the device key is not available, so signed checkpoints are checked against the key recorded in the log',
      },
      policyStatus: () => status().policy,
      history: bundleHistory,
      ...(session && user.settings.kind === 'ok' ? { identity: { settings: user.settings.settings, session } } : {}),
      emit: (event) => late.hub?.emit(event),
    },
    catalog: catalog.service,
    clients: {
      place,
      stateDir: paths.stateDir,
      configFile: paths.configFile,
      self: options.selfCommand ?? nodeSelfCommand(),
    },
    policyServers: () => {
      const state = bundlePolicy.state;
      const mode = state.kind === 'enforcing' ? 'managed' : state.kind === 'fail-closed' ? 'fail-closed' : 'unmanaged';
      return { mode, servers: Object.keys(policyController.servers(live.config.servers)) };
    },
  });
  const control = new ControlServer(paths.controlSocketPath, handlers);
  const hub = new ConsoleHub(handlers, status);
  late.hub = hub;
  supervisor.on('state', () => hub.changed(['servers', 'tools', 'secrets']));
  audit.events.on('commit', () => hub.changed(['audit']));
  human.desk.onChange(() => hub.changed(['questions']));

  const opened: { close(): Promise<void> }[] = [];
  let presence: Presence | undefined;
  let watcher: ConfigWatcher | undefined;
  // What a load window leaves in the heap is collected once the daemon rests (src/node/heap.ts).
  const heapTrim = trimHeapWhenIdle({
    ...(compilerHeld ? { onFirstWork: () => releaseCompiler('busy') } : {}),
    onTrim: ({ ms, beforeBytes, afterBytes }) =>
      logger.log('debug', 'daemon.heap_trimmed', {
        ms: Math.round(ms),
        heapMbBefore: Math.round(beforeBytes / 1048576),
        heapMbAfter: Math.round(afterBytes / 1048576),
      }),
  });
  /** Everything the daemon opened, closed in the order that keeps every record: endpoints, servers, stores, the audit log last. */
  const closeAll = async (): Promise<void> => {
    heapTrim.stop();
    options.heldCompiler?.release();
    policyController.stop();
    catalog.close();
    session?.stop();
    // Waiting approval requests are refused (and audited) before the channel and the audit log close.
    await governance.stopAsking();
    // Calls in flight are cancelled upstream and answered, and later ones refused, while their clients are still connected
    // to hear why (each answer is audited). Then one turn of the loop, for those answers to be written out.
    await gateway.stop(STOPPING, STOP_CALLS_WAIT_MS);
    await new Promise((resolve) => setImmediate(resolve));
    signInOffers.close();
    upstreamAuth.close();
    bridgePairings.close();
    await human.close();
    sessions.dispose();
    search.dispose();
    await Promise.allSettled(opened.map((o) => o.close()));
    await supervisor.dispose();
    await sandbox.close();
    sandboxEvents.flush();
    governance.close();
    // What is still queued goes out (bounded by the export timeout) before the daemon ends.
    await telemetry.shutdown();
  };
  try {
    await human.start();
    await socket.listen();
    opened.push(socket);
    await control.listen();
    opened.push(control);
    if (http) {
      await http.listen();
      opened.push(http);
    }
    if (options.ui) {
      const staticDir = options.ui.staticDir ?? join(packageRoot(), 'dist', 'renderer');
      consoleServer = new ConsoleServer({ hub, staticDir, ...(options.ui.port !== undefined ? { port: options.ui.port } : {}), logger });
      await consoleServer.listen();
      opened.push(consoleServer);
    }
    // A note in the state directory (found from HOME alone) for bridges started without this environment.
    presence = announcePresence(paths, {
      pid: process.pid,
      version: VERSION,
      startedAt: startedAt.toISOString(),
      ...(http ? { httpUrl: http.url } : {}),
      ...(env.DBUS_SESSION_BUS_ADDRESS ? { dbusAddress: env.DBUS_SESSION_BUS_ADDRESS } : {}),
    });
    // The sign-in renews in the background: the endpoints answer meanwhile, and calls wait for it (refused with a clear reason).
    if (session) void session.start().catch((error) => logger.log('error', 'identity.start_failed', { error: errorMessage(error) }));
    // Servers start in parallel; the endpoints already answer while they come up.
    serving = true;
    catalog.start();
    const applied = catalog.service.sync().then(() => applyServers());
    // A hand-edited config changes servers, client views and tool lists: the screens that show them refetch.
    watcher = watchConfigFile(paths.configFile, () => void live.reload().finally(() => late.hub?.changed(['servers', 'clients', 'tools', 'secrets'])));
    await applied;
  } catch (error) {
    await closeAll();
    await localAudit.close();
    lock.release();
    throw error;
  }
  bundleHistory.observe(bundlePolicy.state);
  const consoleOrigin = consoleServer ? { console: consoleServer.origin } : {};
  logger.log('info', 'daemon.ready', { socket: paths.socketPath, http: http?.url, config: paths.configFile, policy: policy.mode, ...consoleOrigin });
  // The sign-in code goes to the person only (the daemon's terminal), never to the log.
  if (consoleServer && options.ui) {
    const login = consoleServer.newLoginCode();
    if (!options.ui.announce(login.url, login.code)) {
      consoleServer.forgetLoginCodes();
      logger.log('warn', 'console.no_terminal', { note: 'the console runs, but no terminal can show its sign-in code; run the daemon in a terminal' });
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    paths,
    httpUrl: http?.url,
    console: hub,
    consoleUrl: consoleServer?.origin,
    questions: human.questions,
    status,
    reload: () => live.reload(),
    stop: () => {
      stopping ??= (async () => {
        watcher?.close();
        hub.close();
        await closeAll();
        presence?.withdraw();
        lock.release();
        await localAudit.close();
        logger.log('info', 'daemon.stopped', {});
      })();
      return stopping;
    },
  };
}

/**
 * The organisation's sign-in, for exchanging it with remote servers that trust the IdP (ID-JAG):
 * only from the managed identity.json, which names the servers allowed; a user's own file cannot.
 */
function enterpriseSource(user: ReturnType<typeof openUserIdentity>): EnterpriseSource | undefined {
  const settings = user.settings;
  const session = user.session;
  if (settings.kind !== 'ok' || settings.source !== 'managed' || !session) return undefined;
  const upstreams = settings.settings.enterpriseAuthorization?.upstreams ?? [];
  if (upstreams.length === 0) return undefined;
  const { issuer, clientId, clientSecret } = settings.settings;
  return { idp: { issuer, clientId, ...(clientSecret ? { clientSecret } : {}) }, upstreams, idToken: () => session.idToken() };
}

/** The key store the daemon uses: the one given (tests), a plain store wrapped, or the user's own. */
async function keyStoreFor(given: SecretStore | KeyStore | undefined, options: Parameters<typeof openKeyStore>[0]): Promise<KeyStore> {
  if (given instanceof KeyStore) return given;
  if (given)
    return KeyStore.single({
      kind: 'memory',
      location: given.description,
      probe: async () => undefined,
      get: (n) => given.get(n),
      set: (n, v) => given.set(n, v),
      delete: (n) => given.delete(n),
      list: () => given.list(),
      description: given.description,
    });
  return openKeyStore(options);
}

export function describeStartupError(error: unknown): string {
  return errorMessage(error);
}
