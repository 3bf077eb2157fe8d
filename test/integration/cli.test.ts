/**
 * The `gatehouse` command, run as users and scripts run it (`node bin/gatehouse.js ...`, the
 * compiled CLI) with the test's environment: help, status, servers, logs, clients; every failure
 * exits non-zero with a one-line reason on stderr; commands that need the daemon say when it is
 * not running. The daemon runs in this process, so every command is run asynchronously.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/common/status.js';
import { ClientRegistry, hashToken } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { BIN, eventually, makeHome, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/misbehaving-server.mjs', import.meta.url));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function gatehouse(args: string[], env: NodeJS.ProcessEnv, options: { input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** A failure as the brief wants it: non-zero, nothing on stdout, exactly one line on stderr naming the command. */
function expectOneLineFailure(result: CliResult, command: string | undefined, reason: RegExp, code?: number): void {
  expect(result.code, result.stderr).not.toBe(0);
  if (code !== undefined) expect(result.code).toBe(code);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  const prefix = command === undefined ? 'gatehouse: ' : `gatehouse ${command}: `;
  expect(lines[0]!.startsWith(prefix), lines[0]).toBe(true);
  expect(lines[0]).toMatch(reason);
}

function fixtureServer(extra: Record<string, unknown> = {}) {
  return {
    type: 'stdio' as const,
    command: process.execPath,
    args: [FIXTURE],
    stopGraceMs: 1000,
    health: { intervalMs: 600_000, timeoutMs: 5_000, failuresBeforeRestart: 2 },
    ...extra,
  };
}

interface Session {
  hello: { gatehouse: string; version?: number; reason?: string };
  call(tool: string, args?: Record<string, unknown>): Promise<{ result?: unknown; error?: { code: number; message: string } }>;
  close(): void;
}

/** Says hello on the local socket with a token and, if welcomed, initializes an MCP session. */
async function openSession(gh: RunningGatehouse, client: string, token: string): Promise<Session> {
  const socket = createConnection(gh.socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const lines: string[] = [];
  let buffer = '';
  let wake: (() => void) | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      lines.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (lines.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return lines.shift()!;
  };
  let id = 0;
  const request = async (method: string, params: Record<string, unknown>) => {
    const mine = ++id;
    socket.write(JSON.stringify({ jsonrpc: '2.0', id: mine, method, params }) + '\n');
    for (;;) {
      const message = JSON.parse(await next()) as { id?: number | null; result?: unknown; error?: { code: number; message: string } };
      // An error tied to no request ends the session (the daemon closes the line after it).
      if (message.id === mine || (message.id === null && message.error)) return message;
    }
  };
  socket.write(JSON.stringify({ gatehouse: 'hello', version: 1, client, token }) + '\n');
  const hello = JSON.parse(await next()) as Session['hello'];
  if (hello.gatehouse === 'welcome')
    await request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: client, version: '1' } });
  return {
    hello,
    call: (tool, args = {}) => request('tools/call', { name: tool, arguments: args }),
    close: () => socket.destroy(),
  };
}

// ---- no daemon at all -------------------------------------------------------------------------

describe('gatehouse --help', () => {
  const env = { ...process.env, GATEHOUSE_HOME: '/nonexistent/gatehouse-help-home' };
  const commands: string[][] = [
    ['--help'],
    ['help'],
    ['daemon', '--help'],
    ['status', '--help'],
    ['connect', '--help'],
    ['servers', '--help'],
    ['servers', 'list', '--help'],
    ['servers', 'add', '--help'],
    ['servers', 'remove', '--help'],
    ['servers', 'restart', '--help'],
    ['servers', 'start', '--help'],
    ['servers', 'stop', '--help'],
    ['logs', '--help'],
    ['clients', '--help'],
    ['clients', 'list', '--help'],
    ['clients', 'pair', '--help'],
    ['clients', 'revoke', '--help'],
  ];
  /** Every help text, gathered a few at a time up front: a process each, and a test per command below. */
  const results = new Map<string, CliResult>();
  beforeAll(async () => {
    const all = [...commands, ['servers', '-h'], ['status', '-h']];
    for (let i = 0; i < all.length; i += 4) {
      await Promise.all(all.slice(i, i + 4).map(async (args) => results.set(args.join(' '), await gatehouse(args, env))));
    }
  });

  it.each(commands.map((c) => c.join(' ')))('`gatehouse %s` prints usage on stdout and exits 0', (command) => {
    const result = results.get(command)!;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Usage/);
  });

  it('-h is the same as --help', () => {
    expect(results.get('servers -h')!.stdout).toBe(results.get('servers --help')!.stdout);
    expect(results.get('status -h')!.stdout).toBe(results.get('status --help')!.stdout);
  });

  it('each command has its own help', () => {
    const texts = ['daemon', 'status', 'connect', 'servers', 'logs', 'clients'].map((c) => results.get(`${c} --help`)!.stdout);
    expect(new Set(texts).size).toBe(texts.length);
    expect(texts[0]).toMatch(/gatehouse daemon/);
    expect(texts[3]).toMatch(/gatehouse servers add NAME --command CMD/);
    expect(results.get('--help')!.stdout).toMatch(/Commands:/);
  });
});

describe('gatehouse without a running daemon', () => {
  let home: ReturnType<typeof makeHome>;
  beforeAll(() => {
    home = makeHome('gh-cli-idle-');
    writeFileSync(home.paths.configFile, JSON.stringify({ servers: { tools: fixtureServer() } }, null, 2), { mode: 0o600 });
  });
  afterAll(() => rmSync(home.home, { recursive: true, force: true }));

  const needDaemon: [string[], string][] = [
    [['status'], 'status'],
    [['status', '--json'], 'status'],
    [['logs', 'tools'], 'logs'],
    [['servers', 'restart', 'tools'], 'servers'],
    [['servers', 'start', 'tools'], 'servers'],
    [['servers', 'stop', 'tools'], 'servers'],
  ];
  it.each(needDaemon.map(([args, command]) => [args.join(' '), args, command] as const))(
    '`gatehouse %s` says the daemon is not running',
    async (_, args, command) => {
      expectOneLineFailure(await gatehouse(args, home.env), command, /Gatehouse is not running \(start it with `gatehouse daemon`\)/, 1);
    },
  );

  it('`gatehouse servers client-document URL` prints the document an organisation publishes at URL, named by it', async () => {
    const url = 'https://it.example.com/gatehouse/client.json';
    const result = await gatehouse(['servers', 'client-document', url], home.env);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(result.stdout)).toEqual({
      client_id: url,
      client_name: 'Gatehouse',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
  });

  it.each([
    [['http://it.example.com/client.json'], /published at an https address/],
    [['https://it.example.com/'], /needs a path/],
    [['https://user:pw@it.example.com/c.json'], /no user name or password/],
    [['https://it.example.com/c.json#x'], /no fragment/],
    [['not a url'], /is not a URL/],
    [[], /give exactly one URL/],
    [['https://a.example/c.json', 'https://b.example/c.json'], /give exactly one URL/],
  ])('`gatehouse servers client-document %j` refuses with the rule it broke', async (args, reason) => {
    expectOneLineFailure(await gatehouse(['servers', 'client-document', ...args], home.env), 'servers', reason, 2);
  });

  it('`gatehouse servers list` shows the configuration, marked not running', async () => {
    const result = await gatehouse(['servers', 'list', '--json'], home.env);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      { name: 'tools', type: 'stdio', enabled: true, state: 'not running', target: `${process.execPath} ${FIXTURE}` },
    ]);
  });

  it('`gatehouse servers add` edits the file and says the change applies when the daemon starts', async () => {
    const result = await gatehouse(['servers', 'add', 'later', '--command', process.execPath, '--arg', FIXTURE], home.env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('the daemon is not running; the change applies when it starts');
    const config = JSON.parse(readFileSync(home.paths.configFile, 'utf8')) as { servers: Record<string, unknown> };
    expect(config.servers['later']).toEqual({ type: 'stdio', command: process.execPath, args: [FIXTURE] });
    expect((await gatehouse(['servers', 'remove', 'later'], home.env)).code).toBe(0);
  });

  it('`gatehouse clients add` is gone: a credential is issued only after consent on the pairing page (issue 4)', async () => {
    const result = await gatehouse(['clients', 'add', 'offline-agent'], home.env);
    expectOneLineFailure(result, 'clients', /`gatehouse clients add` is gone: clients are paired with your consent on the pairing page/, 2);
    expect(result.stdout).toBe('');
  });

  it('`gatehouse clients setup CLIENT --view search` writes an entry whose bridge asks for the search view (issues 11 and 19)', async () => {
    const env = { ...home.env, HOME: home.home };
    const planned = await gatehouse(['clients', 'setup', 'cursor', '--view', 'search', '--dry-run'], env);
    expect(planned.stderr).toBe('');
    expect(planned.code).toBe(0);
    expect(planned.stdout).toMatch(/"connect",[\s+]*"--client",[\s+]*"cursor",[\s+]*"--view",[\s+]*"search"/);
    expectOneLineFailure(await gatehouse(['clients', 'setup', 'cursor', '--view', 'everything'], env), 'clients', /--view is search or aggregate/, 2);
    expectOneLineFailure(
      await gatehouse(['clients', 'setup', 'cursor', '--view', 'search', '--server', 'tools'], env),
      'clients',
      /--view and --server do not go together/,
      2,
    );
  });

  it('an unknown command, subcommand or option exits 2 with a one-line reason', async () => {
    expectOneLineFailure(await gatehouse(['frobnicate'], home.env), undefined, /unknown command "frobnicate"; run `gatehouse --help`/, 2);
    expectOneLineFailure(await gatehouse(['servers', 'frob'], home.env), 'servers', /unknown servers subcommand "frob"/, 2);
    expectOneLineFailure(await gatehouse(['clients', 'frob'], home.env), 'clients', /unknown clients subcommand "frob"/, 2);
    expectOneLineFailure(await gatehouse(['status', '--bogus'], home.env), 'status', /Unknown option '--bogus'/, 2);
    expectOneLineFailure(await gatehouse(['logs'], home.env), 'logs', /give exactly one SERVER/, 2);
    expectOneLineFailure(await gatehouse(['logs', 'tools', '--lines', '0'], home.env), 'logs', /--lines takes a whole number/, 2);
  });

  it('`gatehouse daemon` with an invalid config file refuses to start, naming the file, the field and the problem', async () => {
    const bad = makeHome('gh-cli-bad-');
    try {
      writeFileSync(bad.paths.configFile, JSON.stringify({ servers: { broken: { type: 'stdio', command: process.execPath, stopGraceMs: -5 } } }), {
        mode: 0o600,
      });
      expectOneLineFailure(
        await gatehouse(['daemon'], bad.env),
        'daemon',
        new RegExp(`^gatehouse daemon: ${bad.paths.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: servers\\.broken\\.stopGraceMs: `),
        1,
      );
    } finally {
      rmSync(bad.home, { recursive: true, force: true });
    }
  });

  it('a bad GATEHOUSE_HOME is a one-line error, not a stack trace', async () => {
    expectOneLineFailure(
      await gatehouse(['status'], { ...process.env, GATEHOUSE_HOME: 'relative/home' }),
      'status',
      /GATEHOUSE_HOME must be an absolute path/,
      1,
    );
  });
});

// ---- with a daemon --------------------------------------------------------------------------------

describe('gatehouse with a running daemon', () => {
  let gh: RunningGatehouse;
  beforeAll(async () => {
    gh = await startGatehouse({ servers: { tools: fixtureServer() } });
  });
  afterAll(async () => {
    await gh?.stop();
  });

  async function liveStatus(): Promise<DaemonStatus> {
    return gh.status();
  }

  it('`gatehouse status` shows the servers, the endpoints and the policy mode', async () => {
    const result = await gatehouse(['status'], gh.env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Gatehouse \S+ \(pid \d+\), user .+, policy: unmanaged$/m);
    expect(result.stdout).toContain(`socket: ${gh.socketPath}   http: ${gh.httpUrl}/mcp`);
    // Where keys and credentials are kept is said (issue 11): the keychain, or the user-only file store.
    expect(result.stdout).toMatch(/^keys: kept in (the OS keychain \(|the file store in .*\/keys \(no OS keychain answered\))/m);
    expect(result.stdout).toMatch(/^SERVERS\nNAME +STATE +RESTARTS +TOOLS +DETAIL\ntools +ready +0 +6 +misbehaving 1\.0\.0/m);
    expect(result.stdout).toContain('(none connected)');
  });

  it('`gatehouse status --json` gives the socket path, the HTTP URL and policy mode unmanaged', async () => {
    const result = await gatehouse(['status', '--json'], gh.env);
    expect(result.code).toBe(0);
    const status = JSON.parse(result.stdout) as DaemonStatus;
    expect(status.socketPath).toBe(gh.socketPath);
    expect(status.httpUrl).toBe(gh.httpUrl);
    expect(status.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(status.policy).toEqual({ mode: 'unmanaged' });
    // The full MCP endpoint (issue 11): a client posting to it gets MCP, not a 404.
    expect(status.mcpUrl).toBe(`${gh.httpUrl}/mcp`);
    expect(['keychain', 'file']).toContain(status.keystore?.backend);
    const posted = await fetch(status.mcpUrl!, {
      method: 'POST',
      headers: { authorization: `Bearer ${gh.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } },
      }),
    });
    expect(posted.status).toBe(200);
    expect(status.pid).toBe(process.pid);
    expect(status.configFile).toBe(gh.paths.configFile);
    expect(status.servers).toEqual([expect.objectContaining({ name: 'tools', state: 'ready', restarts: 0, counts: expect.objectContaining({ tools: 6 }) })]);
  });

  it('`gatehouse servers list` shows live states', async () => {
    const table = await gatehouse(['servers', 'list'], gh.env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME +TYPE +STATE +COMMAND \/ URL\ntools +stdio +ready +/);
    const json = JSON.parse((await gatehouse(['servers', 'list', '--json'], gh.env)).stdout) as { name: string; state: string }[];
    expect(json).toEqual([expect.objectContaining({ name: 'tools', state: 'ready' })]);
  });

  it('`gatehouse servers add` and `remove` apply to the running daemon', async () => {
    const added = await gatehouse(
      ['servers', 'add', 'extra', '--command', process.execPath, '--arg', FIXTURE, '--arg=--name', '--arg', 'extra-fixture', '--env', 'EXTRA_MODE=on'],
      gh.env,
    );
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(
      new RegExp(`^added "extra" to ${gh.paths.configFile}\\napplied: started extra\\n"extra" started: extra-fixture 1\\.0\\.0, \\d+ tools\\n$`),
    );
    const extra = (await liveStatus()).servers.find((s) => s.name === 'extra');
    expect(extra).toMatchObject({ state: 'ready', serverInfo: { name: 'extra-fixture', version: '1.0.0' } });
    const written = JSON.parse(readFileSync(gh.paths.configFile, 'utf8')) as { servers: Record<string, unknown> };
    expect(written.servers['extra']).toEqual({
      type: 'stdio',
      command: process.execPath,
      args: [FIXTURE, '--name', 'extra-fixture'],
      env: { EXTRA_MODE: 'on' },
    });

    const removed = await gatehouse(['servers', 'remove', 'extra'], gh.env);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe(`removed "extra" from ${gh.paths.configFile}\napplied: stopped extra\n`);
    expect((await liveStatus()).servers.map((s) => s.name)).toEqual(['tools']);
    expectOneLineFailure(await gatehouse(['servers', 'remove', 'extra'], gh.env), 'servers', /no server named "extra" is configured/, 1);
  });

  it('`gatehouse servers add` says when the server it added does not start, and exits 1 (issue 11)', async () => {
    const added = await gatehouse(['servers', 'add', 'broken', '--command', '/nonexistent/mcp-server'], gh.env);
    expect(added.code).toBe(1);
    expect(added.stdout).toContain('applied: started broken');
    expect(added.stderr).toMatch(/^"broken" did not start: .*\/nonexistent\/mcp-server.*; its log: gatehouse logs broken/m);
    expect((await gatehouse(['servers', 'remove', 'broken'], gh.env)).code).toBe(0);
  });

  it('`gatehouse clients list` shows when a client was last used, not only when it connected (issue 11)', async () => {
    const registry = new ClientRegistry(join(gh.paths.stateDir, 'clients.json'));
    const token = registry.add('all-day-agent');
    const live = await openSession(gh, 'all-day-agent', token);
    try {
      // The session opened a while ago: make its last-seen old, as after a long day.
      const seenFile = join(gh.paths.stateDir, 'clients-seen.json');
      const id = hashToken(token).slice(0, 12);
      // The daemon notes the connection in the background: let that write land before making the time old.
      await eventually(
        () => (JSON.parse(readFileSync(seenFile, 'utf8')) as { seen: Record<string, string> }).seen[id] !== undefined,
        5000,
        'the connection noted',
      );
      writeFileSync(seenFile, JSON.stringify({ seen: { [id]: '2020-01-01T00:00:00.000Z' } }));
      await callControl(gh.paths.controlSocketPath, 'clients.reload', {});
      expect((await live.call('tools__echo', { text: 'still here' })).result).toBeDefined();
      const list = JSON.parse((await gatehouse(['clients', 'list', '--json'], gh.env)).stdout) as { name: string; lastSeen: string }[];
      expect(Date.now() - Date.parse(list.find((c) => c.name === 'all-day-agent')!.lastSeen)).toBeLessThan(60_000);
    } finally {
      live.close();
      registry.revoke('all-day-agent');
    }
  });

  it('`gatehouse servers add` with invalid fields is refused and the file is left untouched', async () => {
    const before = readFileSync(gh.paths.configFile);
    const cases: [string[], RegExp, number][] = [
      [['servers', 'add', 'Bad Name!', '--command', 'x'], /"Bad Name!": /, 2],
      [['servers', 'add', 'both', '--command', 'x', '--url', 'http://127.0.0.1:1/mcp'], /give either --command \(stdio\) or --url/, 2],
      [['servers', 'add', 'neither'], /give either --command \(stdio\) or --url/, 2],
      [['servers', 'add', 'ftp', '--url', 'ftp://example.com/mcp'], /url: the url must be http:\/\/ or https:\/\//, 1],
      [['servers', 'add', 'dash', '--command', 'x', '--arg', '--verbose'], /Option '--arg' argument is ambiguous\. .*use '--arg=-XYZ'/, 2],
      [['servers', 'add', 'badenv', '--command', 'x', '--env', '1BAD=x'], /env\.1BAD: an environment variable name is letters, digits and underscores/, 1],
      [['servers', 'add', 'noeq', '--command', 'x', '--env', 'NOVALUE'], /--env takes KEY=VALUE, got "NOVALUE"/, 2],
      [['servers', 'add', 'badheader', '--url', 'http://127.0.0.1:1/mcp', '--header', 'Bad Header:x'], /headers\.Bad Header: not a valid HTTP header name/, 1],
      [
        ['servers', 'add', 'leaky', '--command', 'x', '--arg', '${secret:api_token}'],
        /the edit was not saved: .*servers\.leaky\.args\[0\]: \$\{secret:api_token\}: secrets may be used only in env values and http headers/,
        1,
      ],
      [['servers', 'add', 'tools', '--command', 'x'], /a server named "tools" is already configured; remove it first/, 1],
      [['servers', 'add', 'typo', '--command', 'x', '--argz', 'y'], /Unknown option '--argz'/, 2],
    ];
    // Side by side: none of them may write, so the file must be the same after all of them.
    const results = await Promise.all(cases.map(([args]) => gatehouse(args, gh.env)));
    cases.forEach(([, reason, code], i) => expectOneLineFailure(results[i]!, 'servers', reason, code));
    expect(readFileSync(gh.paths.configFile).equals(before)).toBe(true);
    expect((await liveStatus()).servers.map((s) => s.name)).toEqual(['tools']);
  });

  it('`gatehouse servers stop`, `start` and `restart` act on the running server', async () => {
    const pid = (await liveStatus()).servers[0]!.pid!;
    const stopped = await gatehouse(['servers', 'stop', 'tools'], gh.env);
    expect(stopped).toMatchObject({ code: 0, stdout: 'tools: stopped\n', stderr: '' });
    expect((await liveStatus()).servers[0]!.state).toBe('stopped');

    const started = await gatehouse(['servers', 'start', 'tools'], gh.env);
    expect(started).toMatchObject({ code: 0, stdout: 'tools: ready\n', stderr: '' });
    const pidAfterStart = (await liveStatus()).servers[0]!.pid!;
    expect(pidAfterStart).not.toBe(pid);

    const restarted = await gatehouse(['servers', 'restart', 'tools'], gh.env);
    expect(restarted).toMatchObject({ code: 0, stdout: 'tools: ready\n', stderr: '' });
    expect((await liveStatus()).servers[0]!.pid).not.toBe(pidAfterStart);

    expectOneLineFailure(await gatehouse(['servers', 'restart', 'ghost'], gh.env), 'servers', /no server named "ghost" is configured/, 1);
    expectOneLineFailure(await gatehouse(['servers', 'restart'], gh.env), 'servers', /give exactly one server NAME/, 2);
  });

  it("`gatehouse logs SERVER` prints the server's recent stderr and lifecycle lines", async () => {
    const result = await gatehouse(['logs', 'tools'], gh.env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toContain('[gatehouse] starting');
    expect(lines.some((l) => /^\[gatehouse\] started: misbehaving 1\.0\.0, protocol 2025-\d\d-\d\d, pid \d+$/.test(l))).toBe(true);
    const two = await gatehouse(['logs', 'tools', '--lines', '2'], gh.env);
    expect(two.stdout.trimEnd().split('\n')).toEqual(lines.slice(-2));
    expectOneLineFailure(await gatehouse(['logs', 'ghost'], gh.env), 'logs', /no server named "ghost" is configured/, 1);
  });

  it("`gatehouse clients list|revoke`: only the token's hash is stored, and revoking cuts live sessions off", async () => {
    // A client paired earlier (pairing itself is tested in pairing-socket.test.ts).
    const token = new ClientRegistry(join(gh.paths.stateDir, 'clients.json')).add('morning-agent');

    const file = readFileSync(join(gh.paths.stateDir, 'clients.json'), 'utf8');
    expect(file).not.toContain(token);
    expect(file).not.toContain(token.slice(4));
    expect(file).toContain(createHash('sha256').update(token).digest('hex'));

    const list = await gatehouse(['clients', 'list', '--json'], gh.env);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((c) => c.name)).toContain('morning-agent');
    expect(list.stdout).not.toContain(token);
    expect((await gatehouse(['clients', 'list'], gh.env)).stdout).toMatch(/^NAME +SCOPE +PAIRED +EXPIRES +LAST SEEN\n/);

    // The token works, and only for its own client.
    const live = await openSession(gh, 'morning-agent', token);
    try {
      expect(live.hello.gatehouse).toBe('welcome');
      expect((await live.call('tools__echo', { text: 'hi' })).result).toBeDefined();
      const stolen = await openSession(gh, 'test-client', token);
      stolen.close();
      expect(stolen.hello.gatehouse).toBe('refused');

      expectOneLineFailure(await gatehouse(['clients', 'revoke'], gh.env), 'clients', /give exactly one client NAME/, 2);
      expectOneLineFailure(await gatehouse(['clients', 'revoke', 'nobody'], gh.env), 'clients', /no client named "nobody" is paired/, 1);

      const revoked = await gatehouse(['clients', 'revoke', 'morning-agent'], gh.env);
      expect(revoked).toMatchObject({ code: 0, stdout: 'revoked "morning-agent"\n' });
      // The live session loses access at once: the daemon says why and closes it; a new one is refused.
      const cut = await live.call('tools__echo', { text: 'after revoke' });
      expect(cut.result).toBeUndefined();
      expect(cut.error?.message).toBe('the credential of client "morning-agent" was revoked');
      const again = await openSession(gh, 'morning-agent', token);
      again.close();
      expect(again.hello).toEqual({ gatehouse: 'refused', version: 1, reason: 'wrong or revoked client credential' });
    } finally {
      live.close();
    }
    expect((JSON.parse((await gatehouse(['clients', 'list', '--json'], gh.env)).stdout) as { name: string }[]).map((c) => c.name)).not.toContain(
      'morning-agent',
    );
    expectOneLineFailure(await gatehouse(['clients', 'revoke', 'morning-agent'], gh.env), 'clients', /no client named "morning-agent" is paired/, 1);
  });
});
