/**
 * The 2026-07-28 direct `tools/call` path (src/node/downstream/modern-calls.ts): which requests it
 * takes from the SDK's handler, and its answers written on a real HTTP server against the SDK's own
 * per-request transport's, as the listener writes those (`writeResponse`), byte for byte. The same
 * against the whole daemon: test/integration/http-direct-calls.test.ts.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PerRequestHTTPServerTransport, SdkError, SdkErrorCode, type JSONRPCMessage, type JSONRPCRequest } from '@modelcontextprotocol/server';
import { writeResponse } from '../../src/node/downstream/http-listener.js';
import { ModernAnswer, modernCall } from '../../src/node/downstream/modern-calls.js';

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const body = (params: Record<string, unknown> = {}, meta: Record<string, unknown> = ENVELOPE) => ({
  jsonrpc: '2.0',
  id: 9,
  method: 'tools/call',
  params: { name: 'srv__echo', arguments: { text: 'hi' }, ...params, _meta: meta },
});
const headers = (extra: Record<string, string | undefined> = {}): IncomingHttpHeaders => {
  const all: Record<string, string | undefined> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/call',
    'mcp-name': 'srv__echo',
    ...extra,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as IncomingHttpHeaders;
};

describe('which 2026-07-28 requests the direct path takes', () => {
  it('takes a well-formed tools/call with a valid envelope and the standard headers, with its envelope lifted', () => {
    const taken = modernCall(headers(), body({}, { ...ENVELOPE, progressToken: 3 }));
    expect(taken).toMatchObject({ id: 9, revision: '2026-07-28', envelope: ENVELOPE, meta: { progressToken: 3 } });
    // Spaces and tabs around a header value are not part of it, for the SDK either.
    expect(modernCall(headers({ 'mcp-name': ' srv__echo\t' }), body())).toBeDefined();
  });

  it('leaves to the SDK’s handler every request it would refuse, or serve some other way', () => {
    const declined: [string, IncomingHttpHeaders, unknown][] = [
      ['another method', headers({ 'mcp-method': 'tools/list' }), { ...body(), method: 'tools/list' }],
      ['a batch', headers(), [body()]],
      ['no envelope (2025-era)', headers({ 'mcp-protocol-version': undefined }), body({}, {})],
      ['a malformed envelope', headers(), body({}, { ...ENVELOPE, 'io.modelcontextprotocol/clientCapabilities': 'none' })],
      ['a body that is not JSON', headers({ 'content-type': 'text/plain' }), body()],
      ['no MCP-Protocol-Version header', headers({ 'mcp-protocol-version': undefined }), body()],
      ['a protocol version header that disagrees with the envelope', headers({ 'mcp-protocol-version': '2099-01-01' }), body()],
      ['no Mcp-Method header', headers({ 'mcp-method': undefined }), body()],
      ['an Mcp-Method header naming another method', headers({ 'mcp-method': 'tools/list' }), body()],
      ['no Mcp-Name header', headers({ 'mcp-name': undefined }), body()],
      ['an Mcp-Name header naming another tool', headers({ 'mcp-name': 'srv__pid' }), body()],
      ['an encoded Mcp-Name (the SDK decodes it)', headers({ 'mcp-name': `=?base64?${Buffer.from('srv__echo').toString('base64')}?=` }), body()],
      ['a call that is not well-formed', headers(), body({ arguments: 'text' })],
      ['a multi-round-trip retry', headers(), body({ requestState: 'opaque' })],
    ];
    for (const [why, h, b] of declined) expect(modernCall(h, b), why).toBeUndefined();
  });

  it('says which revision the request names, for the listener to match with the server’s era', () => {
    const later = { ...ENVELOPE, 'io.modelcontextprotocol/protocolVersion': '2027-01-01' };
    expect(modernCall(headers({ 'mcp-protocol-version': '2027-01-01' }), body({}, later))?.revision).toBe('2027-01-01');
  });
});

/** A server on 127.0.0.1 that answers every request with `answer`; the raw bytes of one exchange with it, without the date. */
const servers: ReturnType<typeof createServer>[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});
async function rawAnswer(answer: (res: ServerResponse) => Promise<void>): Promise<string> {
  const server = createServer((_req, res) => void answer(res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text.replace(/^Date: .*\r\n/m, '')));
    socket.on('error', reject);
    socket.end('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
}

/**
 * The SDK's answer for a call that sends `messages` (notifications, then the answer), as the listener
 * writes it; `closed`: the exchange's transport closes after them instead (its server was closed),
 * which the SDK's handler answers with 499 when no response was under way yet.
 */
async function sdkAnswer(messages: Record<string, unknown>[], closed = false): Promise<string> {
  return rawAnswer(async (res) => {
    const transport = new PerRequestHTTPServerTransport({ classification: { era: 'modern', revision: '2026-07-28' } });
    transport.onmessage = () => undefined;
    await transport.start();
    const response = transport.handleMessage(body() as JSONRPCRequest).catch((error: unknown) => {
      if (error instanceof SdkError && error.code === SdkErrorCode.ConnectionClosed) return new Response(null, { status: 499 });
      throw error;
    });
    for (const message of messages) await transport.send(message as JSONRPCMessage, { relatedRequestId: 9 });
    if (closed) await transport.close();
    await writeResponse(res, await response);
  });
}

async function directAnswer(messages: Record<string, unknown>[], abandoned = false): Promise<string> {
  return rawAnswer(async (res) => {
    const answer = new ModernAnswer(res);
    for (const message of messages) await answer.send(message);
    if (abandoned) answer.abandon();
  });
}

describe('the direct path’s answer on the wire', () => {
  const result = { result: { content: [{ type: 'text', text: 'hi ✓' }], resultType: 'complete' }, jsonrpc: '2.0', id: 9 };
  const progress = { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 3, progress: 1, total: 2 } };
  const log = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', logger: 'srv', data: 'working' } };
  const error = (code: number) => ({ jsonrpc: '2.0', id: 9, error: { code, message: 'no', data: { reason: 'x' } } });

  it.each([
    ['a result alone: one JSON body with its length', [result]],
    ['an error alone', [error(-32602)]],
    ['a missing client capability: 400, as the protocol says', [error(-32021)]],
    ['progress, then the result: an event stream', [progress, result]],
    ['a log and progress, then an error', [log, progress, error(-32603)]],
  ])('is the SDK’s, byte for byte, for %s', async (_what, messages) => {
    const direct = await directAnswer(messages);
    expect(direct).toBe(await sdkAnswer(messages));
    expect(direct).toMatch(/^HTTP\/1\.1 (200|400) /);
  });

  it.each([
    ['before anything was written: 499 with no body', []],
    ['after progress: the stream just ends', [progress]],
  ])('ends an exchange abandoned without an answer as the SDK does when its server is closed, %s', async (_what, messages) => {
    const direct = await directAnswer(messages, true);
    expect(direct).toBe(await sdkAnswer(messages, true));
    expect(direct).not.toContain('"result"');
  });

  it('writes nothing after the answer, nor once the client has gone', async () => {
    const after = await directAnswer([result, progress, error(-32603)]);
    expect(after).toBe(await directAnswer([result]));
    const gone = await rawAnswer(async (res) => {
      const answer = new ModernAnswer(res);
      answer.close();
      await answer.send(result);
      res.end();
    });
    expect(gone).not.toContain('"result"');
  });
});
