/**
 * The HTTP endpoint's limits on connections (issue 12, finding 5): any local process can open
 * connections to 127.0.0.1, token or not, so the listener bounds how many it keeps, how long a
 * request's headers and body may take, and closes what it refused. A client already served keeps
 * working while others misbehave. No timing asserts: the test waits for what must happen and checks
 * that nothing else broke meanwhile.
 */
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeResponse } from '../../src/node/downstream/http-listener.js';
import { EVERYTHING } from '../support/servers.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { mcpHeaders, openingRequest, rawRequest } from './support/raw-http.js';

const LIMITS = { maxConnections: 48, headersTimeoutMs: 1000, requestTimeoutMs: 2000 };

let gh: RunningGatehouse;
let port: number;

beforeAll(async () => {
  gh = await startGatehouse({
    servers: { everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] } },
    config: { listen: { http: { enabled: true, port: 0, ...LIMITS } } },
    clients: ['ide', 'trickler'],
  });
  port = Number(new URL(gh.httpUrl).port);
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
});

const errorLines = () => gh.logs.filter((line) => (JSON.parse(line) as { level: string }).level === 'error');

/** A raw connection that records when it is closed (by either side) and what it received. */
function rawConnection(): { socket: Socket; closed: Promise<void>; received: () => string } {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, closed, received: () => received };
}

/** Writes `text` one small piece at a time, for as long as the socket stays open. */
function trickle(socket: Socket, text: string, everyMs: number): void {
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable) return clearInterval(timer);
    socket.write(text[at % text.length]!);
    at++;
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

describe('a server name that is not valid percent-encoding', () => {
  it('answers /mcp/%E0 without a token with 401, and with one with 404, writing nothing to the error log', async () => {
    const errorsBefore = errorLines().length;
    const anonymous = await rawRequest(`${gh.httpUrl}/mcp/%E0`, { headers: mcpHeaders('legacy'), body: openingRequest('legacy') });
    expect(anonymous.status).toBe(401);
    const withToken = await rawRequest(`${gh.httpUrl}/mcp/%E0`, {
      headers: { ...mcpHeaders('legacy'), authorization: `Bearer ${gh.tokens.ide}` },
      body: openingRequest('legacy'),
    });
    expect(withToken.status).toBe(404);
    expect(JSON.parse(withToken.body).error.message).toMatch(/no server named "%E0" is configured/);
    expect(errorLines().slice(errorsBefore)).toEqual([]);
  });
});

describe('connections that hold the endpoint without finishing a request', () => {
  it('closes slowloris, silent and body-trickling connections, over the cap too, while a served client keeps calling', async () => {
    const errorsBefore = errorLines().length;
    const { client } = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.tokens.ide });
    expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message: 'before' } }))).toBe('Echo: before');

    // The served client calls in a loop for the whole attack.
    let calls = 0;
    const failures: unknown[] = [];
    let attacking = true;
    const caller = (async () => {
      while (attacking) {
        try {
          const text = textOf(await client.callTool({ name: 'everything__echo', arguments: { message: `call ${calls}` } }));
          if (text !== `Echo: call ${calls}`) failures.push(text);
          calls++;
        } catch (error) {
          failures.push(error);
          return;
        }
      }
    })();

    const bad: ReturnType<typeof rawConnection>[] = [];
    // Slowloris: headers that never end, one byte at a time; more of them than the cap.
    for (let i = 0; i < LIMITS.maxConnections * 2; i++) {
      const c = rawConnection();
      c.socket.once('connect', () => {
        c.socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
        trickle(c.socket, 'X-Slow: yes\r\n', 100);
      });
      bad.push(c);
    }
    // Silent: connect and never send a byte.
    for (let i = 0; i < 8; i++) bad.push(rawConnection());
    // Body tricklers without a token: refused at once, and the refusal closes the connection.
    const refused: ReturnType<typeof rawConnection>[] = [];
    for (let i = 0; i < 8; i++) {
      const c = rawConnection();
      c.socket.once('connect', () => {
        c.socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`);
        trickle(c.socket, ' ', 100);
      });
      refused.push(c);
    }
    // Body tricklers with a valid token: their request deadline closes them.
    const authenticated: ReturnType<typeof rawConnection>[] = [];
    for (let i = 0; i < 4; i++) {
      const c = rawConnection();
      c.socket.once('connect', () => {
        c.socket.write(
          `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${gh.tokens.trickler}\r\nContent-Type: application/json\r\n` +
            `Accept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{`,
        );
        trickle(c.socket, ' ', 100);
      });
      authenticated.push(c);
    }

    // Every bad connection is closed by the daemon, not by the test.
    await Promise.all([...bad, ...refused, ...authenticated].map((c) => c.closed));
    attacking = false;
    await caller;

    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(0);
    for (const c of refused) expect(c.received()).toMatch(/^HTTP\/1\.1 401 [\s\S]*connection: close/i);
    for (const c of authenticated) expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(gh.logs.some((line) => line.includes('"http.connection_limit"'))).toBe(true);
    expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message: 'after' } }))).toBe('Echo: after');
    expect(errorLines().slice(errorsBefore)).toEqual([]);
  });

  it('serves a new client that arrives while the cap is full of connections that never sent a request', async () => {
    const silent = Array.from({ length: LIMITS.maxConnections + 4 }, () => rawConnection());
    await Promise.all(silent.map((c) => new Promise((resolve) => c.socket.once('connect', resolve))));
    const { client } = await connectHttp(gh.httpUrl, { era: 'modern', token: gh.tokens.ide });
    expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message: 'newcomer' } }))).toBe('Echo: newcomer');
    await Promise.all(silent.map((c) => c.closed));
  });
});

describe('a response whose client stops reading and then disconnects', () => {
  let server: Server;
  let settled: Promise<void> | undefined;
  let cancelled = false;
  let pulls = 0;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      // An endless event stream, produced as fast as it is read.
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      const body = new ReadableStream<Uint8Array>({
        pull: (controller) => {
          pulls++;
          controller.enqueue(chunk);
        },
        cancel: () => {
          cancelled = true;
        },
      });
      settled = writeResponse(res, new Response(body, { headers: { 'content-type': 'text/event-stream' } }), { flushHeaders: true });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("settles the writer and cancels the stream instead of waiting for 'drain' forever", async () => {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    // Read nothing: the server's socket buffer fills and its writer waits for 'drain'.
    socket.pause();
    let last = -1;
    await eventually(
      async () => {
        await new Promise((r) => setTimeout(r, 200));
        const stalled = pulls > 1 && pulls === last;
        last = pulls;
        return stalled;
      },
      20_000,
      'the writer to stall on a full socket',
    );
    socket.destroy();
    await settled;
    expect(cancelled).toBe(true);
  });
});
