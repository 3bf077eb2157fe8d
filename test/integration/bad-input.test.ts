/**
 * Clients that send bad input, on the local socket (a raw `net` connection: the hello line, then
 * JSON-RPC lines) and on Streamable HTTP (raw `node:http` requests): malformed JSON, oversized
 * messages, unknown methods and tools, bad hellos, clients that vanish mid-call, and many clients
 * at once. One daemon serves the whole file; each test also checks that it is still serving.
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/common/config.js';
import { callControl } from '../../src/node/control/control-client.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { LineSocket, opened, type RpcMessage } from './support/line-socket.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/misbehaving-server.mjs', import.meta.url));
const MAX_MESSAGE_BYTES = 64 * 1024;
const HELLO_TIMEOUT_MS = 10_000;
/** Clients for the many-at-once tests. */
const BULK_CLIENTS = ['bulk-0', 'bulk-1', 'bulk-2', 'bulk-3', 'bulk-4'];

type ServerInput = NonNullable<ConfigInput['servers']>[string];
const srv: ServerInput = {
  type: 'stdio',
  command: process.execPath,
  args: [FIXTURE, '--name', 'srv'],
  requestTimeoutMs: 60_000,
  health: { intervalMs: 600_000, timeoutMs: 5_000, failuresBeforeRestart: 2 },
  stopGraceMs: 1000,
};

/** Sends a hello line (or any first line) and returns the daemon's one-line answer, with the connection's fate. */
async function greet(
  gh: RunningGatehouse,
  firstLine: string | Buffer,
): Promise<{ reply: { gatehouse: string; reason?: string; session?: string }; closed: boolean }> {
  const s = await LineSocket.connect(gh.socketPath);
  s.socket.write(firstLine);
  if (typeof firstLine === 'string') s.socket.write('\n');
  const reply = JSON.parse(await s.nextLine()) as { gatehouse: string; reason?: string };
  const closed = await Promise.race([s.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2_000))]);
  s.destroy();
  return { reply, closed };
}

function hello(fields: Record<string, unknown>): string {
  return JSON.stringify({ gatehouse: 'hello', version: 1, client: 'test-client', ...fields });
}

// ---- HTTP, raw ---------------------------------------------------------------------------------

interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

/** One keep-alive connection for a test, so that "the connection stays usable" is literal. */
function keepAliveAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1 });
}

function post(
  gh: RunningGatehouse,
  body: string | Buffer,
  options: { agent?: Agent; session?: string; token?: string; signal?: AbortSignal } = {},
): Promise<HttpReply> {
  const url = new URL('/mcp', gh.httpUrl);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization: `Bearer ${options.token ?? gh.token}`,
    'content-length': String(Buffer.byteLength(body)),
  };
  if (options.session) {
    headers['mcp-session-id'] = options.session;
    headers['mcp-protocol-version'] = '2025-06-18';
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers,
        agent: options.agent ?? false,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, reusedSocket: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON-RPC message in a body sent as JSON or as SSE `data:` lines. */
function rpc(reply: HttpReply): RpcMessage {
  const text = reply.body.trim();
  if (text.startsWith('{')) return JSON.parse(text) as RpcMessage;
  const data = text
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).trim())
    .find((line) => line.startsWith('{'));
  if (!data) throw new Error(`no JSON-RPC message in: ${text.slice(0, 300)}`);
  return JSON.parse(data) as RpcMessage;
}

/** A 2025-era HTTP session: initialize, then the initialized notification. */
async function httpSession(gh: RunningGatehouse, agent?: Agent, token?: string): Promise<string> {
  const common = { ...(agent ? { agent } : {}), ...(token ? { token } : {}) };
  const init = await post(
    gh,
    JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bad-input-http', version: '1.0.0' } },
    }),
    common,
  );
  expect(init.status).toBe(200);
  const session = init.headers['mcp-session-id'];
  expect(typeof session).toBe('string');
  const initialized = await post(gh, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), { session: session as string, ...common });
  expect(initialized.status).toBe(202);
  return session as string;
}

async function httpEcho(gh: RunningGatehouse, session: string, text: string, agent?: Agent, token?: string): Promise<HttpReply> {
  const reply = await post(gh, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'srv__echo', arguments: { text } } }), {
    session,
    ...(agent ? { agent } : {}),
    ...(token ? { token } : {}),
  });
  expect(reply.status).toBe(200);
  expect((rpc(reply).result!.content as { text: string }[])[0]!.text).toBe(text);
  return reply;
}

// ---- the daemon for the file ---------------------------------------------------------------------

let gh: RunningGatehouse;
/** A connection that never says hello, opened first so that its refusal is due by the last test. */
let silent: { refused: Promise<{ line: string; afterMs: number }> };
/** A connection that sends its hello one byte every 200 ms: each byte must not extend the deadline. */
let trickle: { refused: Promise<{ line: string; afterMs: number }> };
let silentSocket: Socket | undefined;
let trickleSocket: Socket | undefined;
let trickleTimer: NodeJS.Timeout | undefined;

beforeAll(async () => {
  gh = await startGatehouse({
    servers: { srv },
    config: { limits: { maxMessageBytes: MAX_MESSAGE_BYTES } },
    clients: ['test-client', 'other-client', ...BULK_CLIENTS],
  });
  const s = await LineSocket.connect(gh.socketPath);
  silentSocket = s.socket;
  const openedAt = Date.now();
  silent = { refused: s.nextLine(HELLO_TIMEOUT_MS + 15_000).then((line) => ({ line, afterMs: Date.now() - openedAt })) };
  silent.refused.catch(() => undefined);

  const t = await LineSocket.connect(gh.socketPath);
  trickleSocket = t.socket;
  const trickleOpenedAt = Date.now();
  const bytes = Buffer.from(hello({ token: gh.token }));
  let at = 0;
  trickleTimer = setInterval(() => {
    if (at < bytes.length && !t.socket.destroyed) t.socket.write(bytes.subarray(at, ++at));
  }, 200);
  trickle = { refused: t.nextLine(HELLO_TIMEOUT_MS + 15_000).then((line) => ({ line, afterMs: Date.now() - trickleOpenedAt })) };
  trickle.refused.catch(() => undefined);
});

afterEach(() => {
  for (const socket of opened) if (socket !== silentSocket && socket !== trickleSocket) socket.destroy();
  opened.clear();
});

afterAll(async () => {
  clearInterval(trickleTimer);
  silentSocket?.destroy();
  trickleSocket?.destroy();
  await gh?.stop();
});

async function upstreamLogs(): Promise<string[]> {
  return (await callControl(gh.paths.controlSocketPath, 'logs', { name: 'srv', lines: 100_000 })) as string[];
}

describe('bad input on the local socket', () => {
  it('a line that is not JSON gets a -32700 parse error, and the connection stays usable', async () => {
    const s = await LineSocket.session(gh);
    s.write('{"jsonrpc": "2.0", "id": 1, "method": ');
    const error = await s.next((m) => m.id === null);
    expect(error.error?.code).toBe(-32700);
    expect(error.error?.message).toMatch(/Parse error/);
    s.write('not json at all');
    expect((await s.next((m) => m.id === null)).error?.code).toBe(-32700);
    expect(await s.echo('after the garbage')).toBe('after the garbage');
    s.destroy();
  });

  it('JSON that is not JSON-RPC gets a -32600 invalid request, and the connection stays usable', async () => {
    const s = await LineSocket.session(gh);
    s.write('{"hello": "world"}');
    expect((await s.next((m) => m.id === null)).error?.code).toBe(-32600);
    s.write('[1, 2, 3]');
    expect((await s.next((m) => m.id === null)).error?.code).toBe(-32600);
    expect(await s.echo('still here')).toBe('still here');
    s.destroy();
  });

  it('a line over limits.maxMessageBytes is refused with an error naming the limit, and the connection stays usable', async () => {
    const s = await LineSocket.session(gh);
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 'big-one',
      method: 'tools/call',
      params: { name: 'srv__echo', arguments: { text: 'x'.repeat(MAX_MESSAGE_BYTES * 2) } },
    });
    s.write(big);
    const refused = await s.next((m) => m.id === 'big-one');
    expect(refused.error?.code).toBe(-32004);
    expect(refused.error?.message).toMatch(new RegExp(`over the ${MAX_MESSAGE_BYTES}-byte limit`));
    // Nothing of the oversized line reached the server.
    expect((await upstreamLogs()).some((l) => l.includes('xxxxxxxx'))).toBe(false);
    expect(await s.echo('small again')).toBe('small again');
    s.destroy();
  });

  it('an unknown method gets -32601 method not found', async () => {
    const s = await LineSocket.session(gh);
    const response = await s.request('tools/explode', {});
    expect(response.error?.code).toBe(-32601);
    expect(await s.echo('fine')).toBe('fine');
    s.destroy();
  });

  it('an unknown tool gets an error saying "Unknown tool", hidden or absent alike', async () => {
    const s = await LineSocket.session(gh);
    for (const name of ['srv__nope', 'nope', 'ghost__echo']) {
      const response = await s.request('tools/call', { name, arguments: {} });
      expect(response.error?.message).toBe(`Unknown tool: ${name}`);
      expect(response.error?.code).toBe(-32602);
    }
    const missing = await s.request('tools/call', { arguments: {} });
    expect(missing.error?.code).toBe(-32602);
    expect(missing.error?.message).toMatch(/"name"/);
    s.destroy();
  });

  it('a request sent with the hello in one write, before initialize, is answered, and so is a second initialize', async () => {
    const s = await LineSocket.connect(gh.socketPath);
    s.write(
      hello({ token: gh.token }) +
        '\n' +
        JSON.stringify({ jsonrpc: '2.0', id: 'early', method: 'tools/call', params: { name: 'srv__echo', arguments: { text: 'too early' } } }),
    );
    expect(JSON.parse(await s.nextLine())).toMatchObject({ gatehouse: 'welcome' });
    const early = await s.next((m) => m.id === 'early');
    expect(early.error ?? early.result, 'every request gets an answer').toBeDefined();
    const params = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bad-input-test', version: '1.0.0' } };
    expect((await s.request('initialize', params)).result?.protocolVersion).toBe('2025-06-18');
    const second = await s.request('initialize', params);
    expect(second.error ?? second.result).toBeDefined();
    expect(await s.echo('ok')).toBe('ok');
    s.destroy();
  });

  describe('the hello line', () => {
    it('a wrong credential is refused with a clear reason, and the connection closed', async () => {
      const { reply, closed } = await greet(gh, hello({ token: 'ghc_' + 'A'.repeat(43) }));
      expect(reply).toMatchObject({ gatehouse: 'refused', reason: 'wrong or revoked client credential' });
      expect(closed).toBe(true);
    });

    it("another client's credential is refused", async () => {
      const { reply } = await greet(gh, hello({ client: 'test-client', token: gh.tokens['other-client'] }));
      expect(reply).toMatchObject({ gatehouse: 'refused' });
      expect(reply.reason).toMatch(/belongs to another client/);
    });

    it('a client that has a credential must present it', async () => {
      const { reply } = await greet(gh, hello({}));
      expect(reply.gatehouse).toBe('refused');
      expect(reply.reason).toMatch(/client "test-client" has a credential/);
    });

    it('bad fields are refused, naming the field', async () => {
      const cases: [string, RegExp][] = [
        [hello({ version: 2 }), /^bad hello: version: /],
        [hello({ client: '../../etc/passwd' }), /^bad hello: client: not a valid client name/],
        [hello({ server: 'Not A Server!' }), /^bad hello: server: not a valid server name/],
        [hello({ surprise: true }), /^bad hello: \(root\): /],
        [hello({ token: 42 }), /^bad hello: token: /],
        [JSON.stringify({ gatehouse: 'hi' }), /^bad hello: /],
        ['GET / HTTP/1.1', /the first line must be a Gatehouse hello/],
        ['{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}', /^bad hello: /],
      ];
      for (const [line, reason] of cases) {
        const { reply, closed } = await greet(gh, line);
        expect(reply.gatehouse, line).toBe('refused');
        expect(reply.reason, line).toMatch(reason);
        expect(closed, line).toBe(true);
      }
    });

    it('a hello naming a server that is not configured is refused', async () => {
      const { reply } = await greet(gh, hello({ token: gh.token, server: 'nowhere' }));
      expect(reply).toMatchObject({ gatehouse: 'refused', reason: 'no server named "nowhere" is configured' });
    });

    it('a hello over 4 KiB is refused before its end arrives', async () => {
      const { reply, closed } = await greet(gh, Buffer.from(hello({ token: gh.token, pad: 'p'.repeat(5000) }).slice(0, 4500)));
      expect(reply).toMatchObject({ gatehouse: 'refused', reason: 'the hello line is over 4096 bytes' });
      expect(closed).toBe(true);
    });

    it('a hello over 4 KiB is refused even when its end arrives in the same write', async () => {
      // Valid but for its size: whitespace padding inside the JSON.
      const padded = `{"gatehouse":"hello",${' '.repeat(5000)}"version":1,"client":"test-client","token":"${gh.token}"}`;
      const { reply, closed } = await greet(gh, padded);
      expect(reply).toMatchObject({ gatehouse: 'refused', reason: 'the hello line is over 4096 bytes' });
      expect(closed).toBe(true);
    });
  });

  it('a client that disconnects mid-call leaves the daemon and every other client working, and the upstream call is cancelled', async () => {
    const bystander = await LineSocket.session(gh, { client: 'other-client', token: gh.tokens['other-client'] });
    const leaver = await LineSocket.session(gh);
    const before = (await upstreamLogs()).filter((l) => l.startsWith('cancelled request')).length;
    leaver.write(JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'srv__hang', arguments: {} } }));
    await eventually(async () => (await upstreamLogs()).some((l) => l.startsWith('hanging on request')), 5_000, 'the call to reach the server');
    leaver.destroy();

    await eventually(
      async () => (await upstreamLogs()).filter((l) => l.startsWith('cancelled request')).length > before,
      5_000,
      'the upstream call to be cancelled',
    );
    expect(await bystander.echo('unbothered')).toBe('unbothered');
    await eventually(async () => (await gh.status()).clients.every((c) => c.name !== 'test-client'), 5_000, 'the session to be gone');
    const s = (await gh.status()).servers.find((v) => v.name === 'srv')!;
    expect(s.state).toBe('ready');
    expect(s.restarts).toBe(0);
    bystander.destroy();
  });

  it('many connections at once are all served', async () => {
    const count = 60;
    const sessions = await Promise.all(Array.from({ length: count }, () => LineSocket.session(gh)));
    const answers = await Promise.all(sessions.map((s, i) => s.echo(`client ${i}`)));
    expect(answers).toEqual(Array.from({ length: count }, (_, i) => `client ${i}`));
    expect((await gh.status()).clients.length).toBeGreaterThanOrEqual(count);
    for (const s of sessions) s.destroy();
    await eventually(async () => (await gh.status()).clients.length === 0, 10_000, 'every session to close');
  });
});

describe('bad input on Streamable HTTP', () => {
  it('a body that is not JSON gets 400 with a -32700 parse error, and the connection stays usable', async () => {
    const agent = keepAliveAgent();
    try {
      const session = await httpSession(gh, agent);
      const bad = await post(gh, '{"jsonrpc": "2.0", "id": 1, "method": ', { agent, session });
      expect(bad.status).toBe(400);
      expect(rpc(bad).error?.code).toBe(-32700);
      const good = await httpEcho(gh, session, 'after the garbage', agent);
      expect(good.reusedSocket, 'the same TCP connection serves the next request').toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('a body over limits.maxMessageBytes gets 413 with an error naming the limit, its connection is closed, and the session stays usable', async () => {
    const agent = keepAliveAgent();
    try {
      const session = await httpSession(gh, agent);
      const big = JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'srv__echo', arguments: { text: 'x'.repeat(MAX_MESSAGE_BYTES * 2) } },
      });
      const refused = await post(gh, big, { agent, session });
      expect(refused.status).toBe(413);
      expect(rpc(refused).error?.code).toBe(-32004);
      expect(rpc(refused).error?.message).toMatch(new RegExp(`the limit is ${MAX_MESSAGE_BYTES} bytes`));
      // A refused body is not read to its end: the connection closes (issue 12, finding 5), the session does not.
      const good = await httpEcho(gh, session, 'small again', agent);
      expect(good.reusedSocket).toBe(false);
    } finally {
      agent.destroy();
    }
  });

  it('an unknown method gets -32601 and an unknown tool an "Unknown tool" error', async () => {
    const session = await httpSession(gh);
    const method = await post(gh, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/explode', params: {} }), { session });
    expect(rpc(method).error?.code).toBe(-32601);
    const tool = await post(gh, JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'srv__nope', arguments: {} } }), { session });
    expect(rpc(tool).error?.message).toBe('Unknown tool: srv__nope');
    await httpEcho(gh, session, 'fine');
  });

  it('a wrong or missing bearer token gets 401 with a clear reason', async () => {
    const wrong = await post(gh, '{}', { token: 'ghc_' + 'B'.repeat(43) });
    expect(wrong.status).toBe(401);
    expect(rpc(wrong).error?.message).toMatch(/unknown or revoked client token/);
    expect(wrong.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('a client that disconnects mid-call leaves the daemon working, and its cancellation reaches the server', async () => {
    // Streamable HTTP says a dropped connection is not a cancellation (the client may resume);
    // the client cancels with notifications/cancelled, on the same session.
    const session = await httpSession(gh);
    const cancelled = async () => (await upstreamLogs()).filter((l) => l.startsWith('cancelled request')).length;
    const hanging = async () => (await upstreamLogs()).filter((l) => l.startsWith('hanging on request')).length;
    const [cancelledBefore, hangingBefore] = [await cancelled(), await hanging()];
    const abort = new AbortController();
    const call = post(gh, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'srv__hang', arguments: {} } }), {
      session,
      signal: abort.signal,
    });
    call.catch(() => undefined);
    await eventually(async () => (await hanging()) > hangingBefore, 5_000, 'the call to reach the server');
    abort.abort();
    await expect(call).rejects.toThrow();
    await httpEcho(gh, await httpSession(gh), 'unbothered');
    await httpEcho(gh, session, 'the same session still works');

    const cancel = await post(gh, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 5, reason: 'the user gave up' } }), {
      session,
    });
    expect(cancel.status).toBe(202);
    await eventually(async () => (await cancelled()) > cancelledBefore, 5_000, 'the upstream call to be cancelled');
  });

  it('many HTTP clients at once are all served', async () => {
    // Five clients with six sessions each: a client may hold only so many 2025-era sessions.
    const sessions = await Promise.all(
      BULK_CLIENTS.flatMap((client) => Array.from({ length: 6 }, async () => ({ client, session: await httpSession(gh, undefined, gh.tokens[client]) }))),
    );
    expect(sessions).toHaveLength(30);
    await Promise.all(sessions.map(({ client, session }, i) => httpEcho(gh, session, `http client ${i}`, undefined, gh.tokens[client])));
  });
});

describe('the hello timeout', () => {
  it(`a connection that sends no hello is refused after ${HELLO_TIMEOUT_MS / 1000} seconds`, async () => {
    const { line, afterMs } = await silent.refused;
    expect(JSON.parse(line)).toMatchObject({ gatehouse: 'refused', reason: 'no hello within 10 seconds' });
    expect(afterMs).toBeGreaterThanOrEqual(HELLO_TIMEOUT_MS - 100);
  });

  it('a hello trickled a byte at a time is refused when the same deadline is up, however busy the line', async () => {
    const { line, afterMs } = await trickle.refused;
    expect(JSON.parse(line)).toMatchObject({ gatehouse: 'refused', reason: 'no hello within 10 seconds' });
    expect(afterMs).toBeGreaterThanOrEqual(HELLO_TIMEOUT_MS - 100);
    expect(afterMs).toBeLessThan(HELLO_TIMEOUT_MS + 5_000);
    // And the daemon still serves.
    const s = await LineSocket.session(gh);
    expect(await s.echo('the end')).toBe('the end');
    s.destroy();
  });
});
