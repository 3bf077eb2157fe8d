/**
 * 2025-era HTTP sessions as Gatehouse's own transport serves them (src/node/downstream/http-session.ts):
 * the doors a session keeps (Accept, Content-Type, one GET stream), answers as SSE streams whose
 * first packet carries the headers, and a session ended while a call is in flight.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { EVERYTHING } from '../support/servers.js';
import { startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { mcpHeaders, openingRequest, rawRequest, rpcOf, rpcRequest } from './support/raw-http.js';

let gh: RunningGatehouse;
let sessionId: string;

beforeAll(async () => {
  gh = await startGatehouse({ servers: { everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] } }, clients: ['ide'] });
});
afterAll(async () => {
  await gh?.stop();
});

const auth = () => ({ authorization: `Bearer ${gh.tokens.ide}` });
const onSession = (id: string) => ({ ...mcpHeaders('legacy'), 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': id, ...auth() });

async function openSession(): Promise<string> {
  const res = await rawRequest(`${gh.httpUrl}/mcp`, { headers: { ...mcpHeaders('legacy'), ...auth() }, body: openingRequest('legacy') });
  expect(res.status).toBe(200);
  return res.headers['mcp-session-id'] as string;
}

/** A GET stream held open; resolves with its status once the headers arrive. */
function holdGetStream(id: string): Promise<{ status: number; close: () => void }> {
  const url = new URL(`${gh.httpUrl}/mcp`);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: '/mcp', method: 'GET', headers: { ...onSession(id), accept: 'text/event-stream' }, agent: false },
      (res) => {
        resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('a 2025-era HTTP session', () => {
  beforeAll(async () => {
    sessionId = await openSession();
  });

  it('answers a request as an SSE stream carrying the session id', async () => {
    const res = await rawRequest(`${gh.httpUrl}/mcp`, {
      headers: onSession(sessionId),
      body: rpcRequest('legacy', 'tools/call', { name: 'everything__echo', arguments: { message: 'hi' } }, 5),
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(res.headers['mcp-session-id']).toBe(sessionId);
    expect(res.body).toMatch(/^event: message\ndata: /);
    expect(rpcOf(res)).toMatchObject({ id: 5, result: { content: [{ type: 'text', text: 'Echo: hi' }] } });
  });

  it('refuses a request whose Accept leaves out SSE (406) and a body that is not declared JSON (415)', async () => {
    const body = rpcRequest('legacy', 'tools/list', {}, 6);
    const accept = await rawRequest(`${gh.httpUrl}/mcp`, { headers: { ...onSession(sessionId), accept: 'application/json' }, body });
    expect(accept.status).toBe(406);
    const type = await rawRequest(`${gh.httpUrl}/mcp`, { headers: { ...onSession(sessionId), 'content-type': 'text/plain' }, body });
    expect(type.status).toBe(415);
  });

  it('accepts a notification with 202 and no body', async () => {
    const res = await rawRequest(`${gh.httpUrl}/mcp`, {
      headers: onSession(sessionId),
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    expect(res).toMatchObject({ status: 202, body: '' });
  });

  it('keeps one GET stream per session: a second one gets 409 while the first is open', async () => {
    const first = await holdGetStream(sessionId);
    try {
      expect(first.status).toBe(200);
      const second = await rawRequest(`${gh.httpUrl}/mcp`, { method: 'GET', headers: { ...onSession(sessionId), accept: 'text/event-stream' } });
      expect(second.status).toBe(409);
    } finally {
      first.close();
    }
  });

  it('ends the stream of a call in flight when the session is deleted, and forgets the session', async () => {
    const id = await openSession();
    const call = rawRequest(`${gh.httpUrl}/mcp`, {
      headers: onSession(id),
      body: rpcRequest(
        'legacy',
        'tools/call',
        { name: 'everything__trigger-long-running-operation', arguments: { duration: 5, steps: 5 }, _meta: { progressToken: 1 } },
        9,
      ),
    });
    // The call is under way (a 5-second operation) when the session goes.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const deleted = await rawRequest(`${gh.httpUrl}/mcp`, { method: 'DELETE', headers: onSession(id) });
    expect(deleted.status).toBe(200);
    const ended = await call;
    expect(ended.status).toBe(200);
    expect(ended.body).not.toContain('"result"');
    const after = await rawRequest(`${gh.httpUrl}/mcp`, { headers: onSession(id), body: rpcRequest('legacy', 'tools/list', {}, 10) });
    expect(after.status).toBe(404);
  });
});
