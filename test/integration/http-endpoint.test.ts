/**
 * The Streamable HTTP endpoint on 127.0.0.1, in both protocol eras, against real servers from npm:
 * what a client sees at `/mcp` and `/mcp/<server>`, and every door the listener keeps shut before
 * MCP parsing starts (Host, Origin, credential, body size, path), 2025-era session ownership, and
 * revocation taking effect on the next call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EVERYTHING, MEMORY, MEMORY_TOOLS } from '../support/servers.js';
import { startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { bridgeEnv, closeAll, connectHttp, ERAS, runGatehouse, textOf } from './support/clients.js';
import { mcpHeaders, openingRequest, rawRequest, rpcOf, rpcRequest } from './support/raw-http.js';
import { LEGACY_SESSIONS_PER_CLIENT } from '../../src/node/downstream/http-listener.js';

const MAX_MESSAGE_BYTES = 64 * 1024;

let gh: RunningGatehouse;
let data: string;
let memoryTools: string[];

beforeAll(async () => {
  data = mkdtempSync(join(tmpdir(), 'gh-http-data-'));
  gh = await startGatehouse({
    servers: {
      everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] },
      memory: { type: 'stdio', command: process.execPath, args: [MEMORY()], env: { MEMORY_FILE_PATH: join(data, 'memory.jsonl') }, sandbox: { write: [data] } },
    },
    config: { limits: { maxMessageBytes: MAX_MESSAGE_BYTES } },
    clients: ['ide', 'other-ide', 'session-keeper', 'revoked-legacy', 'revoked-modern', 'session-hoarder'],
  });
  const status = await gh.status();
  expect(status.servers.map((s) => [s.name, s.state])).toEqual([
    ['everything', 'ready'],
    ['memory', 'ready'],
  ]);
  // What the memory server itself offers, to compare with what Gatehouse shows.
  memoryTools = MEMORY_TOOLS;
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
  rmSync(data, { recursive: true, force: true });
});
afterEach(closeAll);

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

describe.each(ERAS)('Streamable HTTP, %s era', (era) => {
  it('lists the tools of every ready server under <server>__<tool> names at /mcp', async () => {
    const { client } = await connectHttp(gh.httpUrl, { era, token: gh.tokens.ide });
    expect(client.getProtocolEra()).toBe(era);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['everything__echo', 'everything__get-sum', ...memoryTools.map((t) => `memory__${t}`)]));
    expect(names.every((n) => /^(everything|memory)__/.test(n))).toBe(true);
    const counts = (await gh.status()).servers.reduce((sum, s) => sum + s.counts.tools, 0);
    expect(names).toHaveLength(counts);
  });

  it('calls tools of two servers through the one endpoint', async () => {
    const { client } = await connectHttp(gh.httpUrl, { era, token: gh.tokens.ide });
    expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message: `over http (${era})` } }))).toBe(`Echo: over http (${era})`);
    const entity = `http-${era}`;
    await client.callTool({
      name: 'memory__create_entities',
      arguments: { entities: [{ name: entity, entityType: 'test', observations: ['made over HTTP'] }] },
    });
    const graph = JSON.parse(textOf(await client.callTool({ name: 'memory__read_graph', arguments: {} }))) as { entities: { name: string }[] };
    expect(graph.entities.map((e) => e.name)).toContain(entity);
  });

  it('shows one server alone under its own names at /mcp/<server>', async () => {
    const { client } = await connectHttp(gh.httpUrl, { era, token: gh.tokens.ide, path: '/mcp/memory' });
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(memoryTools);
    const graph = JSON.parse(textOf(await client.callTool({ name: 'read_graph', arguments: {} }))) as { entities: unknown[] };
    expect(Array.isArray(graph.entities)).toBe(true);
    // Another server's tools are not reachable from this view, by either name.
    await expect(client.callTool({ name: 'everything__echo', arguments: { message: 'x' } })).rejects.toThrow(/Unknown tool: everything__echo/);
    await expect(client.callTool({ name: 'echo', arguments: { message: 'x' } })).rejects.toThrow(/Unknown tool: echo/);
  });

  it('answers 401 with a Bearer challenge when no token is sent', async () => {
    const res = await rawRequest(`${gh.httpUrl}/mcp`, { headers: mcpHeaders(era, 'server/discover'), body: openingRequest(era) });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(rpcOf(res).error?.message).toMatch(/a client bearer token is required/);
    // The SDK client gives up too.
    await expect(connectHttp(gh.httpUrl, { era })).rejects.toThrow();
  });

  it('answers 401 to a token it does not know', async () => {
    for (const token of ['ghc_' + 'A'.repeat(43), 'not-even-a-gatehouse-token']) {
      const res = await rawRequest(`${gh.httpUrl}/mcp`, { headers: { ...mcpHeaders(era, 'server/discover'), ...auth(token) }, body: openingRequest(era) });
      expect(res.status).toBe(401);
      expect(rpcOf(res).error?.message).toMatch(/unknown or revoked client token/);
    }
  });

  it('answers 401, not 404, for an unconfigured server without a token, so server names cannot be probed', async () => {
    const unknown = await rawRequest(`${gh.httpUrl}/mcp/no-such-server`, { headers: mcpHeaders(era), body: openingRequest(era) });
    const known = await rawRequest(`${gh.httpUrl}/mcp/memory`, { headers: mcpHeaders(era), body: openingRequest(era) });
    expect([unknown.status, known.status]).toEqual([401, 401]);
  });

  it('answers 403 to a foreign Origin, even with a valid token', async () => {
    for (const origin of ['https://evil.example', 'http://127.0.0.1:1', 'null']) {
      const res = await rawRequest(`${gh.httpUrl}/mcp`, {
        headers: { ...mcpHeaders(era, 'server/discover'), ...auth(gh.tokens.ide!), origin },
        body: openingRequest(era),
      });
      expect(res.status, origin).toBe(403);
      expect(rpcOf(res).error?.message).toMatch(/Origin not allowed/);
    }
    // Its own loopback origin is not foreign.
    const own = await rawRequest(`${gh.httpUrl}/mcp`, {
      headers: { ...mcpHeaders(era, 'server/discover'), ...auth(gh.tokens.ide!), origin: gh.httpUrl },
      body: openingRequest(era),
    });
    expect(own.status).toBe(200);
  });

  it('answers 403 to a foreign Host (DNS rebinding), even with a valid token', async () => {
    const port = new URL(gh.httpUrl).port;
    for (const host of [`evil.example:${port}`, `127.0.0.1.nip.io:${port}`, `127.0.0.1:${Number(port) + 1}`]) {
      const res = await rawRequest(`${gh.httpUrl}/mcp`, {
        headers: { ...mcpHeaders(era, 'server/discover'), ...auth(gh.tokens.ide!), host },
        body: openingRequest(era),
      });
      expect(res.status, host).toBe(403);
      expect(rpcOf(res).error?.message).toMatch(/Host must be 127\.0\.0\.1 or localhost/);
    }
    const localhost = await rawRequest(`${gh.httpUrl}/mcp`, {
      headers: { ...mcpHeaders(era, 'server/discover'), ...auth(gh.tokens.ide!), host: `localhost:${port}` },
      body: openingRequest(era),
    });
    expect(localhost.status).toBe(200);
  });

  it('answers 413 to a body over limits.maxMessageBytes, whether its length is declared or not', async () => {
    const big = rpcRequest(era, 'tools/call', { name: 'everything__echo', arguments: { message: 'x'.repeat(MAX_MESSAGE_BYTES) } });
    for (const chunked of [false, true]) {
      const res = await rawRequest(`${gh.httpUrl}/mcp`, { headers: { ...mcpHeaders(era, 'tools/call'), ...auth(gh.tokens.ide!) }, body: big, chunked });
      expect(res.status, chunked ? 'chunked' : 'content-length').toBe(413);
      expect(rpcOf(res).error?.message).toContain(`the limit is ${MAX_MESSAGE_BYTES} bytes`);
    }
    // A message just under the limit goes through.
    const { client } = await connectHttp(gh.httpUrl, { era, token: gh.tokens.ide });
    const message = 'y'.repeat(MAX_MESSAGE_BYTES - 2048);
    expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message } }))).toBe(`Echo: ${message}`);
  });

  it('answers 404 outside /mcp and /mcp/<server>, and for a server that is not configured', async () => {
    for (const path of ['/', '/mcpx', '/api/mcp', '/mcp/memory/extra', '/mcp/no-such-server', '/mcp/NOT_A_NAME']) {
      const res = await rawRequest(`${gh.httpUrl}${path}`, {
        headers: { ...mcpHeaders(era, 'server/discover'), ...auth(gh.tokens.ide!) },
        body: openingRequest(era),
      });
      expect(res.status, path).toBe(404);
    }
  });

  it('refuses the next call of a client revoked with `gatehouse clients revoke`', async () => {
    const name = `revoked-${era}`;
    const { client } = await connectHttp(gh.httpUrl, { era, token: gh.tokens[name] });
    expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message: 'before' } }))).toBe('Echo: before');
    const revoke = await runGatehouse(['clients', 'revoke', name], bridgeEnv(gh.env));
    expect(revoke.stderr).toBe('');
    expect(revoke).toMatchObject({ code: 0, stdout: `revoked "${name}"\n` });
    await expect(client.callTool({ name: 'everything__echo', arguments: { message: 'after' } })).rejects.toThrow(/401|Unauthorized/i);
    const raw = await rawRequest(`${gh.httpUrl}/mcp`, {
      headers: { ...mcpHeaders(era, 'server/discover'), ...auth(gh.tokens[name]!) },
      body: openingRequest(era),
    });
    expect(raw.status).toBe(401);
  });
});

describe('Streamable HTTP, 2025-era sessions', () => {
  /** A raw `tools/list` on an existing session. */
  const listOnSession = (sessionId: string, token: string, path = '/mcp') =>
    rawRequest(`${gh.httpUrl}${path}`, {
      headers: { ...mcpHeaders('legacy'), 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': sessionId, ...auth(token) },
      body: rpcRequest('legacy', 'tools/list', {}, 99),
    });

  it('keeps one session, named by Mcp-Session-Id, across the requests of a client', async () => {
    const { client, transport } = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.tokens['session-keeper'] });
    const sessionId = transport.sessionId;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    for (const message of ['one', 'two', 'three']) {
      expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message } }))).toBe(`Echo: ${message}`);
    }
    expect(transport.sessionId).toBe(sessionId);
    const sessions = (await gh.status()).clients.filter((c) => c.name === 'session-keeper');
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ transport: 'http', verified: true, calls: 3 });
    // The same session answers a request made outside the SDK, with the same credential.
    const res = await listOnSession(sessionId!, gh.tokens['session-keeper']!);
    expect(res.status).toBe(200);
    expect((rpcOf(res).result?.tools as unknown[]).length).toBeGreaterThan(0);
    // Deleting the session ends it: it leaves status, and its id is no longer honoured.
    await transport.terminateSession();
    expect((await gh.status()).clients.filter((c) => c.name === 'session-keeper')).toEqual([]);
    expect((await listOnSession(sessionId!, gh.tokens['session-keeper']!)).status).toBe(404);
  });

  it("refuses a session id presented with another client's token, and the session lives on", async () => {
    const { client, transport } = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.tokens.ide });
    const res = await listOnSession(transport.sessionId!, gh.tokens['other-ide']!);
    expect(res.status).toBe(404);
    expect(rpcOf(res).error?.message).toBe('Session not found');
    expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message: 'still mine' } }))).toBe('Echo: still mine');
  });

  it('refuses a session id on another view than the one that opened it', async () => {
    const { transport } = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.tokens.ide });
    const res = await listOnSession(transport.sessionId!, gh.tokens.ide!, '/mcp/memory');
    expect(res.status).toBe(404);
  });

  it('keeps at most LEGACY_SESSIONS_PER_CLIENT sessions per client, closing the least recently used first', async () => {
    const opened: string[] = [];
    for (let i = 0; i <= LEGACY_SESSIONS_PER_CLIENT; i++) {
      const res = await rawRequest(`${gh.httpUrl}/mcp`, {
        headers: { ...mcpHeaders('legacy'), ...auth(gh.tokens['session-hoarder']!) },
        body: openingRequest('legacy'),
      });
      expect(res.status).toBe(200);
      opened.push(res.headers['mcp-session-id'] as string);
    }
    expect((await gh.status()).clients.filter((c) => c.name === 'session-hoarder')).toHaveLength(LEGACY_SESSIONS_PER_CLIENT);
    // The first session was the least recently used: it is gone, the newest still answers.
    expect((await listOnSession(opened[0]!, gh.tokens['session-hoarder']!)).status).toBe(404);
    expect((await listOnSession(opened.at(-1)!, gh.tokens['session-hoarder']!)).status).toBe(200);
  });

  it('answers 404 to a session id it never issued', async () => {
    const res = await listOnSession('00000000-0000-4000-8000-000000000000', gh.tokens.ide!);
    expect(res.status).toBe(404);
    expect(rpcOf(res).error?.message).toBe('Session not found');
  });
});
