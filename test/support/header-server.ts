/**
 * A remote MCP server over Streamable HTTP for the secrets tests, small enough to read: it answers
 * JSON-RPC with plain JSON responses (2025 era), requires `authorization: Bearer <expected>`, and
 * records every header value it was sent, so a test can check where a secret went.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HeaderServer {
  url: string;
  /** Authorization headers received, in order. */
  seen: string[];
  expected: string;
  stop(): Promise<void>;
}

export async function startHeaderServer(expected: string): Promise<HeaderServer> {
  const seen: string[] = [];
  const state: HeaderServer = { url: '', seen, expected, stop: async () => undefined };
  const server: Server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seen.push(auth);
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' });
      return res.end();
    }
    if (auth !== `Bearer ${state.expected}`) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: 'unauthorized' }));
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const msg = JSON.parse(body) as { id?: number | string; method: string; params?: Record<string, unknown> };
      if (msg.id === undefined) {
        res.writeHead(202);
        return res.end();
      }
      const reply = (result: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      };
      switch (msg.method) {
        case 'initialize':
          return reply({
            protocolVersion: (msg.params?.protocolVersion as string) ?? '2025-11-25',
            capabilities: { tools: {} },
            serverInfo: { name: 'header-server', version: '1.0.0' },
          });
        case 'tools/list':
          return reply({ tools: [{ name: 'whoami', description: 'Says the server saw a valid key', inputSchema: { type: 'object' } }] });
        case 'tools/call':
          return reply({ content: [{ type: 'text', text: 'the key was accepted' }] });
        case 'ping':
          return reply({});
        default:
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  state.stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}
