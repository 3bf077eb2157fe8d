/**
 * The `gatehouse` command. Every subcommand has `--help`, exits non-zero with a one-line reason on
 * stderr when it fails, and never takes a secret value as an argument.
 */
import { closeInheritedDescriptors } from '../node/descriptors.js';
import { readFileSync } from 'node:fs';
import { ServerConfigSchema, ToolViewSchema, formatPath } from '../common/config.js';
import { GatehouseError, errorMessage } from '../common/errors.js';
import { isServerName, SERVER_NAME_RULE } from '../common/names.js';
import type { DaemonStatus, ServerStatus } from '../common/status.js';
import { editConfigFile, loadConfigFile } from '../node/config-file.js';
import { callControl } from '../node/control/control-client.js';
import { defaultLogFormat, isLogFormat, isLogLevel, jsonLogger, pinoLogger } from '../node/logger.js';
import { defaultPaths, type GatehousePaths } from '../node/paths.js';
import { holdOptimizingCompiler, type HeldCompiler } from '../node/optimizing-compiler.js';
import { VERSION } from '../node/version.js';
import { parseOptions, untilStopSignal } from './args.js';
import { runBridge } from './connect.js';

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** How to run this Gatehouse by absolute path, for the entries `clients setup` writes (the packaged app passes its own). */
  self?: { command: string; args: string[] };
  /** `daemon`: V8's optimizing compiler, held by the entry point before the CLI loaded (bin/gatehouse.js); the daemon releases it. */
  heldCompiler?: HeldCompiler;
}

const USAGE = `gatehouse ${VERSION}: governed MCP servers behind one local endpoint

Usage: gatehouse <command> [options]

Commands:
  daemon [--config FILE] [--ui]    run the core in the foreground (--ui: with the console)
  console                          a new sign-in code for the console (on the daemon's terminal)
  status [--json]                  servers, states, restarts, clients, policy mode
  connect [--client NAME] [--view search]
                                   the stdio bridge an IDE launches (--view search: find_tools, call_tool)
  tools cost [--json]              what each client's tool list costs in model tokens, in each view
  servers list|add|remove|restart|start|stop
  servers login|logout NAME        sign in to (or out of) a remote server that needs it
  servers install NAME [--as ALIAS], servers pin NAME
                                   install a catalogue entry verified; pin an npx server
  catalog list|show                the signed catalogue of approved servers
  logs SERVER [--lines N]          a server's recent stderr
  login [--device], logout, whoami sign in with your organisation's identity provider
  clients list|revoke|pair         paired clients (consent is given on the pairing page)
  clients setup|import CLIENT      write Gatehouse into an IDE's config; move its servers behind Gatehouse
  secrets set|list|delete NAME     keychain secrets servers get as \${secret:NAME}
  policy keygen|sign|keylist|verify|test|explain|pin
                                   managed policy bundles (admins)
  audit verify|query|export|enrol|prune
                                   the local tamper-evident audit log
  hub [--database URL] [--listen HOST:PORT]
                                   the central audit store (PostgreSQL)

Run \`gatehouse <command> --help\` for a command's options.`;

const HELP: Record<string, string> = {
  daemon: `Usage: gatehouse daemon [--config FILE] [--log-level debug|info|warn|error] [--log-format pretty|json] [--ui [--ui-port N]]

Runs Gatehouse in the foreground: starts every enabled server, opens the local socket and
Streamable HTTP on 127.0.0.1, and logs on stderr: readable lines on a terminal, one JSON object
per line otherwise (or with --log-format json). SIGINT or SIGTERM
stops every server gracefully. The config file is watched; a valid change is applied (only
what differs), an invalid one is refused and the running configuration stays.

Questions for you (pairing a client, approving a call) are shown on this terminal: answer them
here by typing a letter, or on the question page whose address and code are shown beside them.
Nothing else can answer them. See docs/approvals.md.

--ui also serves the console on 127.0.0.1 (--ui-port, default: a free port) and prints its
address and a sign-in code on this terminal (never in the log, never in a file, never in a
link). A code works once; \`gatehouse console\` prints a new one here. See docs/console.md.`,
  console: `Usage: gatehouse console

Asks the running daemon (started with --ui) to show a new sign-in code for the console on its own
terminal. The code is shown only there, never here; a daemon without a terminal cannot show one,
and this command then fails.`,
  status: `Usage: gatehouse status [--json]

Shows the running daemon's servers (state, restarts, tools), connected clients and policy mode.
--json prints everything, including the socket path and the HTTP endpoint URL.`,
  connect: `Usage: gatehouse connect [--client NAME] [--server NAME | --view search|aggregate] [--token-file FILE]

The stdio bridge an IDE launches as its MCP server command. It speaks MCP on stdin/stdout and
carries it to the daemon's socket. --client names the client in status and audit records
(default: "stdio-bridge"). --server shows one server alone, under its own tool names.
--view search shows two tools instead of every tool: find_tools and call_tool (docs/search.md);
--view aggregate shows every tool. Without --view, the client's setting in the config decides.
The first time a client name connects, Gatehouse asks you to pair it on its pairing page (see the
desktop notification or the daemon's terminal); the bridge then keeps its credential in the OS
keychain. A credential can also be given with --token-file FILE, or the GATEHOUSE_CLIENT_TOKEN
environment variable. Never on the command line.`,
  servers: `Usage:
  gatehouse servers list [--json]
  gatehouse servers add NAME --command CMD [--arg ARG]... [--cwd DIR] [--env KEY=VALUE]... [--disabled]
  gatehouse servers add NAME --url URL [--header NAME:VALUE]... [--disabled]
  gatehouse servers remove NAME
  gatehouse servers restart|start|stop NAME
  gatehouse servers login NAME [--no-browser]
  gatehouse servers logout NAME
  gatehouse servers client-document URL         the Client ID Metadata Document to publish at URL (docs/remote-servers.md)
  gatehouse servers install NAME [--as ALIAS]    a signed catalogue entry, verified (docs/catalog.md)
  gatehouse servers pin NAME                     resolve an \`npx -y PACKAGE\` server once, install and pin it

add and remove edit the config file (checked before it is written); the daemon applies the change.
Secrets go in as \${secret:NAME} references, never as values.

login signs you in to a remote server that asks for it (OAuth; state "needs-sign-in"): your
browser opens the server's sign-in page (--no-browser prints its address instead) and comes back
to Gatehouse on 127.0.0.1. Gatehouse keeps the tokens in your key store, renews them, and sends
them to that server only; no client ever sees them. logout revokes them at the server's
authorization server where it can, and forgets them. See docs/remote-servers.md.`,
  logs: `Usage: gatehouse logs SERVER [--lines N]

Prints the last N (default 200) lines the server wrote to stderr, with Gatehouse's own lifecycle
lines marked [gatehouse]. The full log is in the log directory (gatehouse status --json).`,
};

const parse = parseOptions;

export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(USAGE + '\n');
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    io.out(VERSION + '\n');
    return 0;
  }
  try {
    // Inside the try: a bad GATEHOUSE_HOME is a one-line error like any other.
    const paths = command === 'daemon' ? defaultPaths(io.env) : await withRunningDaemon(defaultPaths(io.env), io.env);
    switch (command) {
      case 'daemon':
        return await daemon(rest, io, paths);
      case 'status':
        return await status(rest, io, paths);
      case 'console':
        return await consoleLink(rest, io, paths);
      case 'connect':
        return await connect(rest, io, paths);
      case 'servers':
        return await servers(rest, io, paths);
      case 'logs':
        return await logs(rest, io, paths);
      case 'catalog': {
        const { catalogCommand } = await import('./catalog.js');
        return await catalogCommand(rest, io, paths);
      }
      case 'tools': {
        const { toolsCommand } = await import('./tools.js');
        return await toolsCommand(rest, io, paths);
      }
      case 'clients': {
        const { clientsCommand } = await import('./clients.js');
        return await clientsCommand(rest, io, paths);
      }
      case 'login':
      case 'logout':
      case 'whoami': {
        const { loginCommand } = await import('./login.js');
        return await loginCommand(command, rest, io, paths);
      }
      case 'secrets': {
        const { secretsCommand } = await import('./secrets.js');
        return await secretsCommand(rest, { ...io, stdin: process.stdin }, paths);
      }
      case 'policy': {
        // Loaded only here: Cedar is a wasm module, and the bridge must start fast.
        const { policyCommand } = await import('./policy.js');
        return await policyCommand(rest, io);
      }
      case 'audit': {
        const { auditCommand } = await import('./audit.js');
        return await auditCommand(rest, io, paths);
      }
      case 'hub': {
        const { hubCommand } = await import('./hub.js');
        return await hubCommand(
          rest,
          io,
          jsonLogger((line) => io.err(line)),
        );
      }
      default:
        io.err(`gatehouse: unknown command "${command}"; run \`gatehouse --help\`\n`);
        return 2;
    }
  } catch (error) {
    const usage = error instanceof GatehouseError && error.code === 'usage';
    io.err(`gatehouse ${command}: ${errorMessage(error).split('\n')[0]}\n`);
    const more = errorMessage(error).split('\n').slice(1);
    if (more.length > 0) io.err(more.join('\n') + '\n');
    return usage ? 2 : 1;
  }
}

/**
 * The commands talk to the running daemon of this user even from a minimal environment (an IDE's
 * terminal, a launcher): when this environment's socket is not there, the one discovery finds is
 * used (src/node/discovery.ts). `connect` does its own discovery, with its message.
 */
async function withRunningDaemon(paths: GatehousePaths, env: NodeJS.ProcessEnv): Promise<GatehousePaths> {
  const { discover } = await import('../node/discovery.js');
  const found = discover({ paths, env, platform: process.platform, uid: process.getuid?.() });
  const first = found.tries[0];
  return first ? { ...paths, socketPath: first.socketPath, controlSocketPath: first.controlSocketPath } : paths;
}

function helpWanted(command: string, values: { help?: boolean | undefined }, io: Io): boolean {
  if (!values.help) return false;
  io.out((HELP[command] ?? USAGE) + '\n');
  return true;
}

async function daemon(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const { values } = parse(args, {
    config: { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    ui: { type: 'boolean' },
    'ui-port': { type: 'string' },
  });
  if (helpWanted('daemon', values, io)) return 0;
  const uiPort = values['ui-port'] === undefined ? undefined : Number(values['ui-port']);
  if (uiPort !== undefined && (!values.ui || !Number.isInteger(uiPort) || uiPort < 0 || uiPort > 65_535))
    throw new GatehouseError('usage', '--ui-port takes a port number (0-65535) and goes with --ui');
  const level = values['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new GatehouseError('usage', `--log-level must be debug, info, warn or error`);
  const format = values['log-format'] ?? defaultLogFormat(process.stderr.isTTY === true);
  if (!isLogFormat(format)) throw new GatehouseError('usage', '--log-format must be pretty or json');
  // The log goes straight to stderr's descriptor, synchronously: the lines a person must see are written there too, in order.
  const logger =
    format === 'json' && !process.stderr.isTTY
      ? jsonLogger((line) => io.err(line), level)
      : pinoLogger({ format, level, colorize: process.stderr.isTTY === true });
  // Nothing the daemon's parent left open reaches the servers it starts (src/node/descriptors.ts).
  const inherited = closeInheritedDescriptors();
  // V8 optimizes nothing until the daemon first works: what it optimized while the core loaded and
  // started never ran again (src/node/optimizing-compiler.ts). The daemon releases it.
  const heldCompiler = io.heldCompiler ?? holdOptimizingCompiler();
  let running: Awaited<ReturnType<typeof import('../node/daemon.js').startDaemon>>;
  try {
    // Loaded only here: the bridge and the other commands start faster without the whole core.
    const { startDaemon } = await import('../node/daemon.js');
    // The person's terminal: questions are shown and answered there, and the console's sign-in code shown.
    const terminal = (await import('../node/human/terminal.js')).daemonTerminal();
    const announce = (await import('../node/console/announce.js')).terminalAnnouncer(terminal);
    const ui = values.ui ? { ...(uiPort !== undefined ? { port: uiPort } : {}), announce } : undefined;
    running = await startDaemon({
      paths,
      logger,
      env: io.env,
      human: { terminal: terminal ?? null },
      heldCompiler,
      ...(values.config ? { configFile: values.config } : {}),
      ...(ui ? { ui } : {}),
    });
  } catch (error) {
    // A process that goes on after a failed start (a test calling the CLI) optimizes as before.
    heldCompiler.release();
    throw error;
  }
  // Said once the daemon runs: a start that fails says only why it failed.
  if (inherited.length > 0) logger.log('info', 'daemon.descriptors_closed', { fds: inherited, note: 'inherited from the process that started the daemon' });
  const s = running.status();
  io.err(`Gatehouse ${VERSION} is running (${s.policy.mode} mode). Connect an IDE with: gatehouse connect --client NAME\n`);
  await untilStopSignal();
  await running.stop();
  return 0;
}

async function consoleLink(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const { values } = parse(args, {});
  if (helpWanted('console', values, io)) return 0;
  const result = (await callControl(paths.controlSocketPath, 'console.link', {})) as { announced: boolean; reason?: string };
  if (!result.announced) throw new GatehouseError('no_console', result.reason ?? 'the console is not served');
  io.out("A new sign-in code for the console is on the daemon's terminal.\n");
  return 0;
}

async function status(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' } });
  if (helpWanted('status', values, io)) return 0;
  const s = (await callControl(paths.controlSocketPath, 'status', {})) as DaemonStatus;
  if (values.json) {
    io.out(JSON.stringify(s, null, 2) + '\n');
    return 0;
  }
  const lines = [
    `Gatehouse ${s.version} (pid ${s.pid}), user ${s.user}, policy: ${s.policy.mode}${s.policy.version ? ` v${s.policy.version}` : ''}`,
    ...(s.policy.state !== undefined ? (await import('./policy.js')).policyStatusLines(s.policy) : []),
    `config: ${s.configFile}`,
    `socket: ${s.socketPath}${s.httpUrl ? `   http: ${s.httpUrl}/mcp` : ''}`,
    '',
    'SERVERS',
    ...table(
      ['NAME', 'STATE', 'RESTARTS', 'TOOLS', 'DETAIL'],
      s.servers.map((v) => [v.name, v.enabled ? v.state : 'disabled', String(v.restarts), String(v.counts.tools), serverDetail(v)]),
    ),
    ...(await import('./sandbox.js')).sandboxLines(s, table),
    '',
    'CLIENTS',
    ...(s.clients.length === 0
      ? ['(none connected)']
      : table(
          ['NAME', 'VIA', 'VERIFIED', 'CALLS', 'SINCE'],
          s.clients.map((c) => [c.name, c.transport, c.verified ? 'yes' : 'no', String(c.calls), c.connectedAt]),
        )),
    '',
    ...auditLines(s),
    ...(s.keystore
      ? [`keys: kept in ${s.keystore.description}${s.keystore.backend === 'none' && s.keystore.reason ? `: ${s.keystore.reason.split('. ')[0]}` : ''}`]
      : []),
    ...(s.identity ? ['', ...(await import('./login.js')).describeIdentity(s.identity)] : []),
    ...humanChannelLines(s),
    ...governanceLines(s),
  ];
  io.out(lines.join('\n') + '\n');
  return 0;
}

/** Where questions are answered, in words. */
function answerWhere(s: DaemonStatus): string {
  const at = s.humanChannel?.surfaces ?? [];
  if (at.length === 0) return 'nowhere: no person can be asked, so they are refused';
  const places = at.map((p) =>
    p === 'desktop app' ? 'in the Gatehouse window' : p === 'terminal' ? "in the daemon's terminal" : 'on the question page (with the code the terminal shows)',
  );
  return places.join(', or ');
}

/** Who can be asked, how many questions wait, and which doors this machine leaves open to a process of the user's. */
function humanChannelLines(s: DaemonStatus): string[] {
  const lines: string[] = [];
  if (s.pendingQuestions) lines.push('', `${s.pendingQuestions} question(s) wait for you: answer ${answerWhere(s)}`);
  const doors = s.humanChannel?.doors ?? [];
  if (doors.length > 0) {
    lines.push('', 'YOUR ANSWERS: WHAT A PROCESS OF YOURS COULD STILL DO HERE (SECURITY.md, "The human channel")');
    for (const door of doors) lines.push(`- ${door.risk}.`, `  Fix: ${door.fix}.`);
  }
  return lines;
}

/** Calls waiting for approval, and what the current user has left of each quota. Nothing here can answer a request. */
function governanceLines(s: DaemonStatus): string[] {
  const lines: string[] = [];
  const pending = s.approvals?.pending ?? [];
  if (pending.length > 0) {
    lines.push('', `APPROVALS (${pending.length} waiting; answer ${answerWhere(s)})`);
    lines.push(
      ...table(
        ['CLIENT', 'CALL', 'WHY', 'REFUSED AT'],
        pending.map((p) => [p.client, `${p.server}__${p.name}`, p.reasons.join('; '), p.deadline]),
      ),
    );
  }
  if (s.approvals?.sessionGrants) lines.push(`${s.approvals.sessionGrants} "allow for this session" approval(s) in force`);
  const q = s.quotas;
  if (q && (q.quotas.length > 0 || q.rateLimits.length > 0)) {
    lines.push('', `QUOTAS AND RATE LIMITS${q.version ? ` (policy v${q.version})` : ''}`);
    const rows: string[][] = [];
    for (const quota of q.quotas) {
      const rule = `${quota.limit}${quota.approvalAfter !== undefined ? `, approval after ${quota.approvalAfter}` : ''} per ${quota.window} (${quota.tools})`;
      if (quota.usage.length === 0) rows.push([quota.id, rule, `0 used, ${quota.limit} left`]);
      for (const u of quota.usage) {
        const approval = u.beforeApproval === undefined ? '' : u.beforeApproval > 0 ? `, ${u.beforeApproval} before approval` : ', each call needs approval';
        rows.push([quota.id, rule, `${u.used} used, ${u.remaining} left${approval} (${u.scope}${u.resetsAt ? `, resets ${u.resetsAt}` : ''})`]);
      }
    }
    for (const r of q.rateLimits) {
      const limited = r.limited.map((l) => `${l.scope} until ${l.retryAt}`).join('; ');
      rows.push([r.id, `${r.rate}, bursts of ${r.burst}, per ${r.per} (${r.tools})`, limited ? `limiting: ${limited}` : 'not limiting']);
    }
    lines.push(...table(['NAME', 'LIMIT', 'NOW'], rows));
  }
  return lines;
}

function auditLines(s: DaemonStatus): string[] {
  const a = s.audit;
  const lines = [
    `audit: ${a.records} records in ${a.file}${a.healthy === false ? `, NOT WRITABLE since ${a.unavailableSince}: ${a.error} (calls are refused)` : ''}`,
  ];
  if (a.signing && a.signing.state !== 'ok') lines.push(`audit signing: ${a.signing.state}${a.signing.error ? ` (${a.signing.error.split('. ')[0]})` : ''}`);
  if (a.sync) {
    const lag = a.sync.lagRecords === 0 ? 'in sync' : `${a.sync.lagRecords} events behind (oldest ${a.sync.lagSeconds} s old)`;
    lines.push(`audit sync: ${a.sync.hub}: ${lag}, ${a.sync.state}${a.sync.lastError ? ` (${a.sync.lastError})` : ''}`);
  } else if (a.hubError) lines.push(`audit sync: ${a.hubError}`);
  else lines.push('audit sync: not enrolled with a hub (gatehouse audit enrol)');
  return lines;
}

function serverDetail(v: ServerStatus): string {
  if (v.state === 'ready')
    return `${v.serverInfo ? `${v.serverInfo.name} ${v.serverInfo.version}` : ''}${v.protocolVersion ? ` (MCP ${v.protocolVersion})` : ''}`.trim();
  const next = v.nextAttemptAt ? ` (retry at ${v.nextAttemptAt})` : '';
  return (v.lastError ?? '') + next;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (row: string[]) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  return [format(header), ...rows.map(format)];
}

async function connect(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const { values } = parse(args, { client: { type: 'string' }, server: { type: 'string' }, view: { type: 'string' }, 'token-file': { type: 'string' } });
  if (helpWanted('connect', values, io)) return 0;
  const view = values.view === undefined ? undefined : ToolViewSchema.safeParse(values.view);
  if (view && !view.success) throw new GatehouseError('usage', '--view: "search" or "aggregate"');
  if (view?.data === 'search' && values.server !== undefined)
    throw new GatehouseError('usage', '--server and --view search are two different views; choose one');
  let token = io.env.GATEHOUSE_CLIENT_TOKEN;
  if (values['token-file']) token = readFileSync(values['token-file'], 'utf8').trim();
  if (values.server !== undefined && !isServerName(values.server)) throw new GatehouseError('usage', `--server: ${SERVER_NAME_RULE}`);
  const client = values.client ?? 'stdio-bridge';
  // An IDE starts the bridge with little of the user's environment: find the daemon (and its keychain's bus) from HOME.
  const { discover, notRunningMessage, sessionBusFor } = await import('../node/discovery.js');
  const input = { paths, env: io.env, platform: process.platform, uid: process.getuid?.() };
  const found = discover(input);
  const bus = sessionBusFor(input, found.lastSeen);
  if (bus) process.env.DBUS_SESSION_BUS_ADDRESS = bus;
  let keeper: Partial<Parameters<typeof runBridge>[0]> = {};
  if (!token) {
    // Loaded only without a token: the bridge must start fast. The key store is opened while the socket connects.
    const { storedCredentialKeeper, launcherDescription } = await import('../node/identity/bridge-credentials.js');
    const { openKeyStore } = await import('../node/keystore/open.js');
    const store = openKeyStore({ stateDir: paths.stateDir, timeoutMs: 3000 });
    store.catch(() => undefined);
    const about = launcherDescription();
    keeper = { credentials: async (socketPath) => storedCredentialKeeper(await store, socketPath, client), ...(about ? { about } : {}) };
  }
  return runBridge({
    sockets: found.tries.map((c) => c.socketPath),
    notRunning: notRunningMessage(found.looked, found.lastSeen),
    client,
    ...(token ? { token } : {}),
    ...(values.server !== undefined ? { server: values.server } : {}),
    ...(view?.data !== undefined ? { view: view.data } : {}),
    stdin: process.stdin,
    stdout: process.stdout,
    say: (line) => io.err(line + '\n'),
    ...keeper,
  });
}

async function servers(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(HELP.servers + '\n');
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case 'list': {
      const { values } = parse(rest, { json: { type: 'boolean' } });
      if (helpWanted('servers', values, io)) return 0;
      const loaded = await loadConfigFile(paths.configFile, { dataDir: paths.dataDir });
      if (!loaded.ok) throw new GatehouseError('config_invalid', loaded.error);
      let live: ServerStatus[] = [];
      try {
        live = ((await callControl(paths.controlSocketPath, 'status', {}, 5000)) as DaemonStatus).servers;
      } catch {
        // Not running: show the configuration alone.
      }
      const rows = Object.entries(loaded.config.servers).map(([name, server]) => {
        const state = live.find((s) => s.name === name);
        return {
          name,
          type: server.type,
          enabled: server.enabled,
          state: state?.state ?? (server.enabled ? 'not running' : 'disabled'),
          target: server.type === 'stdio' ? [server.command, ...server.args].join(' ') : server.url,
        };
      });
      if (values.json) io.out(JSON.stringify(rows, null, 2) + '\n');
      else
        io.out(
          table(
            ['NAME', 'TYPE', 'STATE', 'COMMAND / URL'],
            rows.map((r) => [r.name, r.type, r.state, r.target]),
          ).join('\n') + '\n',
        );
      return 0;
    }
    case 'add': {
      const { values, positionals } = parse(rest, {
        command: { type: 'string' },
        arg: { type: 'string', multiple: true },
        cwd: { type: 'string' },
        env: { type: 'string', multiple: true },
        url: { type: 'string' },
        header: { type: 'string', multiple: true },
        disabled: { type: 'boolean' },
      });
      if (helpWanted('servers', values, io)) return 0;
      const name = positionals[0];
      if (!name || positionals.length > 1) throw new GatehouseError('usage', 'give exactly one server NAME');
      if (!isServerName(name)) throw new GatehouseError('usage', `"${name}": ${SERVER_NAME_RULE}`);
      if ((values.command === undefined) === (values.url === undefined))
        throw new GatehouseError('usage', 'give either --command (stdio) or --url (Streamable HTTP)');
      const raw: Record<string, unknown> =
        values.command !== undefined
          ? {
              type: 'stdio',
              command: values.command,
              ...(values.arg ? { args: values.arg } : {}),
              ...(values.cwd ? { cwd: values.cwd } : {}),
              ...(values.env ? { env: pairs(values.env, '=', '--env') } : {}),
            }
          : { type: 'http', url: values.url, ...(values.header ? { headers: pairs(values.header, ':', '--header') } : {}) };
      if (values.disabled) raw.enabled = false;
      const check = ServerConfigSchema.safeParse(raw);
      if (!check.success) {
        const issue = check.error.issues[0]!;
        // For a bad record key (an --env or --header name), the key's own rule says more than "Invalid key in record".
        const message = issue.code === 'invalid_key' && issue.issues[0] ? issue.issues[0].message : issue.message;
        throw new GatehouseError('invalid', `${formatPath(issue.path)}: ${message}`);
      }
      const result = await editConfigFile(paths.configFile, (config) => {
        const servers = (config.servers ??= {}) as Record<string, unknown>;
        if (Object.hasOwn(servers, name)) throw new GatehouseError('exists', `a server named "${name}" is already configured; remove it first`);
        servers[name] = raw;
      });
      if (!result.ok) throw new GatehouseError('invalid', result.error);
      io.out(`added "${name}" to ${paths.configFile}\n`);
      if (!(await tellDaemon(paths, io, values.disabled ? {} : { added: name })) || values.disabled) return 0;
      return (await reportStart(paths, name, io)) ? 0 : 1;
    }
    case 'remove': {
      const { values, positionals } = parse(rest, {});
      if (helpWanted('servers', values, io)) return 0;
      const name = positionals[0];
      if (!name || positionals.length > 1) throw new GatehouseError('usage', 'give exactly one server NAME');
      const result = await editConfigFile(paths.configFile, (config) => {
        const servers = (config.servers ?? {}) as Record<string, unknown>;
        if (!Object.hasOwn(servers, name)) throw new GatehouseError('unknown_server', `no server named "${name}" is configured`);
        delete servers[name];
      });
      if (!result.ok) throw new GatehouseError('invalid', result.error);
      io.out(`removed "${name}" from ${paths.configFile}\n`);
      await tellDaemon(paths, io, { removed: name });
      return 0;
    }
    case 'login':
    case 'logout': {
      const { values, positionals } = parse(rest, sub === 'login' ? { 'no-browser': { type: 'boolean' } } : {});
      if (helpWanted('servers', values, io)) return 0;
      const name = positionals[0];
      if (!name || positionals.length > 1) throw new GatehouseError('usage', 'give exactly one server NAME');
      if (!isServerName(name)) throw new GatehouseError('usage', `"${name}": ${SERVER_NAME_RULE}`);
      const { serversLogin, serversLogout } = await import('./upstream-auth.js');
      return sub === 'login' ? serversLogin(name, { browser: values['no-browser'] !== true }, io, paths) : serversLogout(name, io, paths);
    }
    case 'client-document': {
      const { values, positionals } = parse(rest, {});
      if (helpWanted('servers', values, io)) return 0;
      if (positionals.length !== 1) throw new GatehouseError('usage', 'give exactly one URL: the https address where the document will be published');
      const { clientDocumentCommand } = await import('./upstream-auth.js');
      return clientDocumentCommand(positionals[0]!, io);
    }
    case 'install':
    case 'pin': {
      const { installCommand } = await import('./catalog.js');
      return await installCommand(sub, rest, io, paths);
    }
    case 'restart':
    case 'start':
    case 'stop': {
      const { values, positionals } = parse(rest, {});
      if (helpWanted('servers', values, io)) return 0;
      const name = positionals[0];
      if (!name || positionals.length > 1) throw new GatehouseError('usage', 'give exactly one server NAME');
      const result = (await callControl(paths.controlSocketPath, `servers.${sub}` as 'servers.restart', { name })) as ServerStatus;
      io.out(`${name}: ${result.state}${result.lastError ? ` (${result.lastError})` : ''}\n`);
      return 0;
    }
    default:
      throw new GatehouseError('usage', `unknown servers subcommand "${sub}"; run \`gatehouse servers --help\``);
  }
}

/**
 * Applies a config edit now if the daemon runs; true when the daemon applied it. The daemon also
 * watches the file, and its watcher may apply the edit before this reload arrives, which then finds
 * nothing left to change: what the edit did (`edit`) is read from the daemon's servers instead.
 */
async function tellDaemon(paths: GatehousePaths, io: Io, edit: { added?: string; removed?: string } = {}): Promise<boolean> {
  try {
    const report = (await callControl(paths.controlSocketPath, 'config.reload', {})) as {
      ok: boolean;
      error?: string;
      added: string[];
      removed: string[];
      restarted: string[];
    };
    if (!report.ok) io.err(`the daemon refused the configuration: ${report.error}\n`);
    else {
      if (edit.added !== undefined || edit.removed !== undefined) {
        const running = new Set(((await callControl(paths.controlSocketPath, 'status', {}, 5000)) as DaemonStatus).servers.map((s) => s.name));
        if (edit.added !== undefined && running.has(edit.added) && !report.added.includes(edit.added)) report.added.push(edit.added);
        if (edit.removed !== undefined && !running.has(edit.removed) && !report.removed.includes(edit.removed)) report.removed.push(edit.removed);
      }
      io.out(`applied: ${describeReport(report)}\n`);
    }
    return report.ok;
  } catch (error) {
    if (error instanceof GatehouseError && error.code === 'daemon_not_running') io.out('the daemon is not running; the change applies when it starts\n');
    else throw error;
    return false;
  }
}

/**
 * Waits until a server just added is ready or has failed (its first start, within its startup
 * timeout), and says which: "added" alone does not tell whether the command even runs.
 */
async function reportStart(paths: GatehousePaths, name: string, io: Io): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const server = ((await callControl(paths.controlSocketPath, 'status', {}, 5000)) as DaemonStatus).servers.find((s) => s.name === name);
    if (server?.state === 'ready') {
      const info = server.serverInfo ? `${server.serverInfo.name} ${server.serverInfo.version}, ` : '';
      io.out(`"${name}" started: ${info}${server.counts.tools} tools\n`);
      return true;
    }
    if (server?.state === 'needs-sign-in') {
      io.out(`"${name}" is added and asks you to sign in: run gatehouse servers login ${name}\n`);
      return true;
    }
    if (server && (server.state === 'backing-off' || server.state === 'crash-looping' || (server.state === 'stopped' && server.lastError))) {
      io.err(
        `"${name}" did not start: ${server.lastError ?? server.state}; its log: gatehouse logs ${name} (the server stays configured; fix it, or gatehouse servers remove ${name})\n`,
      );
      return false;
    }
    if (!server && Date.now() > deadline - 55_000) {
      // The policy in force does not run it (managed mode runs the catalog's servers only), or it is switched off.
      io.out(`"${name}" is configured, but the policy in force does not run it\n`);
      return true;
    }
    if (Date.now() > deadline) {
      io.err(`"${name}" has not started within a minute; see gatehouse status and gatehouse logs ${name}\n`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function describeReport(r: { added: string[]; removed: string[]; restarted: string[] }): string {
  const parts = [
    r.added.length ? `started ${r.added.join(', ')}` : '',
    r.removed.length ? `stopped ${r.removed.join(', ')}` : '',
    r.restarted.length ? `restarted ${r.restarted.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join('; ') : 'nothing changed';
}

function pairs(items: string[], separator: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const at = item.indexOf(separator);
    if (at <= 0) throw new GatehouseError('usage', `${flag} takes KEY${separator}VALUE, got "${item}"`);
    out[item.slice(0, at).trim()] = item.slice(at + 1).trim();
  }
  return out;
}

async function logs(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const { values, positionals } = parse(args, { lines: { type: 'string' } });
  if (helpWanted('logs', values, io)) return 0;
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new GatehouseError('usage', 'give exactly one SERVER');
  const lines = values.lines === undefined ? 200 : Number(values.lines);
  if (!Number.isInteger(lines) || lines < 1 || lines > 100_000) throw new GatehouseError('usage', '--lines takes a whole number from 1 to 100000');
  const result = (await callControl(paths.controlSocketPath, 'logs', { name, lines })) as string[];
  if (result.length > 0) io.out(result.join('\n') + '\n');
  return 0;
}
