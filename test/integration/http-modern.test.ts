/**
 * 2026-07-28 requests over HTTP, served by SDK servers kept between requests (kept-servers.ts): what
 * reuse must not change. Each client keeps its own view under interleaved requests, every refusal of
 * the era still holds on a warm endpoint, each request's session ends with it (a `subscriptions/listen`
 * stream's too), and a short answer is one JSON body with its length.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { EVERYTHING } from '../support/servers.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { mcpHeaders, rawRequest, rpcOf, rpcRequest } from './support/raw-http.js';

let gh: RunningGatehouse;

beforeAll(async () => {
  gh = await startGatehouse({
    servers: { everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] } },
    // The agent's own setting puts it in the search view: the same endpoint, scope and `?view=` as the IDE, another view.
    config: { clients: { agent: { view: 'search' } } },
    clients: ['ide', 'agent'],
  });
});
afterAll(async () => {
  await gh?.stop();
});

const headersOf = (client: 'ide' | 'agent', method: string, name?: string): Record<string, string> => ({
  ...mcpHeaders('modern', method),
  ...(name ? { 'mcp-name': name } : {}),
  authorization: `Bearer ${gh.tokens[client]}`,
});

async function toolNames(client: 'ide' | 'agent', id: number): Promise<string[]> {
  const res = await rawRequest(`${gh.httpUrl}/mcp`, { headers: headersOf(client, 'tools/list'), body: rpcRequest('modern', 'tools/list', {}, id) });
  expect(res.status).toBe(200);
  return ((rpcOf(res).result?.tools ?? []) as { name: string }[]).map((t) => t.name).sort();
}

describe('2026-07-28 requests on kept servers', () => {
  it("never shows one client another's view, however their requests interleave", async () => {
    const ide = await toolNames('ide', 1);
    const agent = await toolNames('agent', 2);
    expect(ide).toContain('everything__echo');
    expect(agent).toEqual(['call_tool', 'find_tools']);
    // Many at once, alternating: each request may be served by a server another request of its client left idle.
    const rounds = await Promise.all(Array.from({ length: 24 }, (_, i) => toolNames(i % 2 === 0 ? 'ide' : 'agent', 10 + i)));
    rounds.forEach((names, i) => expect(names).toEqual(i % 2 === 0 ? ide : agent));
  });

  it('still refuses, on a warm endpoint, a request whose headers disagree with its body or leave out what the era requires', async () => {
    const call = rpcRequest('modern', 'tools/call', { name: 'everything__echo', arguments: { message: 'warm' } }, 40);
    const ok = await rawRequest(`${gh.httpUrl}/mcp`, { headers: headersOf('ide', 'tools/call', 'everything__echo'), body: call });
    expect(rpcOf(ok)).toMatchObject({ id: 40, result: { content: [{ type: 'text', text: 'Echo: warm' }] } });

    const wrongMethod = await rawRequest(`${gh.httpUrl}/mcp`, { headers: headersOf('ide', 'tools/list', 'everything__echo'), body: call });
    expect(wrongMethod.status).toBe(400);
    expect(rpcOf(wrongMethod).error?.message).toMatch(/Mcp-Method header names tools\/list/);

    const wrongName = await rawRequest(`${gh.httpUrl}/mcp`, { headers: headersOf('ide', 'tools/call', 'everything__other'), body: call });
    expect(wrongName.status).toBe(400);
    expect(rpcOf(wrongName).error?.message).toMatch(/Mcp-Name header names "everything__other"/);

    const withoutVersion: Record<string, string> = { ...headersOf('ide', 'tools/call', 'everything__echo') };
    delete withoutVersion['mcp-protocol-version'];
    const noVersion = await rawRequest(`${gh.httpUrl}/mcp`, { headers: withoutVersion, body: call });
    expect(noVersion.status).toBe(400);
    expect(rpcOf(noVersion).error?.message).toMatch(/MCP-Protocol-Version header is absent/);

    const unsupported = JSON.stringify({
      jsonrpc: '2.0',
      id: 41,
      method: 'tools/list',
      params: {
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2099-01-01',
          'io.modelcontextprotocol/clientInfo': { name: 'x', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    });
    const future = await rawRequest(`${gh.httpUrl}/mcp`, {
      headers: { ...headersOf('ide', 'tools/list'), 'mcp-protocol-version': '2099-01-01' },
      body: unsupported,
    });
    expect(future.status).toBe(400);
    expect(rpcOf(future)).toMatchObject({ id: 41, error: { message: expect.stringMatching(/[Uu]nsupported protocol version/) } });
  });

  it('answers a short call as one JSON body with its length, not a chunked stream', async () => {
    const res = await rawRequest(`${gh.httpUrl}/mcp`, {
      headers: headersOf('ide', 'tools/call', 'everything__echo'),
      body: rpcRequest('modern', 'tools/call', { name: 'everything__echo', arguments: { message: 'short' } }, 50),
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
    expect(rpcOf(res)).toMatchObject({ id: 50, result: { content: [{ type: 'text', text: 'Echo: short' }] } });
  });

  it("ends each request's session with it, a subscriptions/listen stream's too, while the stream stays open", async () => {
    const url = new URL(`${gh.httpUrl}/mcp`);
    const body = rpcRequest('modern', 'subscriptions/listen', { notifications: { toolsListChanged: true } }, 60);
    const stream = await new Promise<{ status: number; first: Promise<string>; close: () => void }>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: '/mcp',
          method: 'POST',
          headers: { ...headersOf('ide', 'subscriptions/listen'), 'content-length': Buffer.byteLength(body) },
          agent: false,
        },
        (res) => {
          res.setEncoding('utf8');
          const first = new Promise<string>((got) => res.once('data', (chunk: string) => got(chunk)));
          resolve({ status: res.statusCode ?? 0, first, close: () => req.destroy() });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    try {
      expect(stream.status).toBe(200);
      expect(await stream.first).toMatch(/data: /);
      await toolNames('ide', 61);
      // Nothing of either request is still shown as connected (the listen stream's session used to stay for good).
      await eventually(async () => (await gh.status()).clients.length === 0, 5_000, 'no session left behind');
    } finally {
      stream.close();
    }
  });
});
