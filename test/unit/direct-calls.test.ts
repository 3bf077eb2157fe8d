/**
 * Which messages the socket's direct `tools/call` path takes from the SDK, and what it writes.
 * The server here is a stand-in with the three members the path uses; the same behaviour against
 * the real daemon, byte for byte against the SDK's path, is test/integration/direct-calls.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DirectCalls } from '../../src/node/downstream/direct-calls.js';
import type { CallRequest, DownstreamServer, DownstreamSession } from '../../src/node/downstream/mcp-server.js';
import { ProtocolError } from '@modelcontextprotocol/server';

type Validation = { ok: true; value: unknown } | { ok: false; reason: string; message?: string };

function setUp(options: { era?: 'legacy' | 'modern'; validate?: (raw: unknown) => Validation; codec?: boolean } = {}) {
  const session = { era: options.era ?? 'legacy' } as DownstreamSession;
  const written: Record<string, unknown>[] = [];
  const calls: { params: Record<string, unknown>; request: CallRequest; finish: (result: Record<string, unknown>) => void; fail: (e: unknown) => void }[] = [];
  const server = {
    callTool: (params: Record<string, unknown>, request: CallRequest) =>
      new Promise<Record<string, unknown>>((finish, fail) => calls.push({ params, request, finish, fail })),
    request: () => Promise.resolve({}),
    ...(options.codec === false
      ? {}
      : { _wireCodec: () => ({ validateResult: (_method: string, raw: unknown) => options.validate?.(raw) ?? { ok: true, value: raw } }) }),
  } as unknown as DownstreamServer;
  const errors: unknown[] = [];
  const direct = new DirectCalls(session, { send: async (message) => void written.push(message) }, (error) => errors.push(error));
  direct.pinned(server);
  return { session, direct, written, calls, errors };
}

const call = (id: string | number, params: unknown = { name: 'srv__echo', arguments: { text: 'hi' } }) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params,
});
const initialized = { jsonrpc: '2.0', method: 'notifications/initialized' };
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('the direct tools/call path', () => {
  it('leaves calls to the SDK until the client ends the handshake, and passes the handshake on', () => {
    const { direct, calls } = setUp();
    expect(direct.take(call(1))).toBe(false);
    expect(direct.take(initialized)).toBe(false);
    expect(direct.take(call(2))).toBe(true);
    expect(calls.map((c) => c.params.name)).toEqual(['srv__echo']);
  });

  it('leaves every call of a 2026-07-28 session to the SDK', () => {
    const { direct } = setUp({ era: 'modern' });
    direct.take(initialized);
    expect(direct.take(call(1))).toBe(false);
  });

  it('leaves every call to the SDK when the era codec cannot be reached to check results', () => {
    const { direct } = setUp({ codec: false });
    direct.take(initialized);
    expect(direct.take(call(1))).toBe(false);
  });

  it('leaves malformed calls, task requests, a null id and an id already in flight to the SDK', () => {
    const { direct } = setUp();
    direct.take(initialized);
    expect(direct.take({ jsonrpc: '2.0', id: 1, method: 'tools/call' }), 'no params').toBe(false);
    for (const params of [
      null,
      [],
      { name: 42 },
      { name: 'x', arguments: [] },
      { name: 'x', _meta: 'm' },
      { name: 'x', _meta: { progressToken: {} } },
      { name: 'x', task: {} },
    ]) {
      expect(direct.take(call(1, params)), JSON.stringify(params)).toBe(false);
    }
    expect(direct.take({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'x' } })).toBe(false);
    expect(direct.take(call('same'))).toBe(true);
    expect(direct.take(call('same'))).toBe(false);
  });

  it('leaves the calls of a session waiting for pairing to the SDK, which tells it where to answer', () => {
    const { direct, session } = setUp();
    direct.take(initialized);
    session.pairing = { state: 'pending', client: 'ide', code: '1234', deadline: 'soon', where: 'the app' };
    expect(direct.take(call(1))).toBe(false);
  });

  it('writes the result as the era codec checked it, and a thrown error as the SDK writes one', async () => {
    const { direct, written, calls } = setUp({ validate: (raw) => ({ ok: true, value: { ...(raw as object), checked: true } }) });
    direct.take(initialized);
    direct.take(call(1));
    direct.take(call(2));
    direct.take(call(3));
    direct.take(call(4));
    calls[0]!.finish({ structuredContent: { n: 1 } });
    calls[1]!.fail(new ProtocolError(-32002, 'Resource not found', { uri: 'x://y' }));
    calls[2]!.fail(new Error('boom'));
    calls[3]!.finish({ content: [] });
    await settle();
    expect(written).toEqual([
      { result: { structuredContent: { n: 1 }, content: [], checked: true }, jsonrpc: '2.0', id: 1 },
      { jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'Resource not found', data: { uri: 'x://y' } } },
      { jsonrpc: '2.0', id: 3, error: { code: -32603, message: 'boom' } },
      { result: { content: [], checked: true }, jsonrpc: '2.0', id: 4 },
    ]);
  });

  it('answers a result the era codec refuses with the error the SDK gives', async () => {
    const { direct, written, calls } = setUp({ validate: () => ({ ok: false, reason: 'invalid', message: 'content: expected array' }) });
    direct.take(initialized);
    direct.take(call(7));
    calls[0]!.finish({ content: 'nope' });
    await settle();
    expect(written).toEqual([{ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Invalid tools/call result: content: expected array' } }]);
  });

  it('aborts a cancelled call and never answers it; a cancellation of anything else is the SDK’s', async () => {
    const { direct, written, calls } = setUp();
    direct.take(initialized);
    direct.take(call('c'));
    expect(direct.take({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'other' } })).toBe(false);
    expect(direct.take({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'c', reason: 'stop' } })).toBe(true);
    expect(calls[0]!.request.signal.aborted).toBe(true);
    expect(calls[0]!.request.signal.reason).toBe('stop');
    calls[0]!.finish({ content: [] });
    await settle();
    expect(written).toEqual([]);
    // The id is free again once the call has ended.
    expect(direct.take(call('c'))).toBe(true);
  });

  it('aborts the calls still running when the connection closes, and takes nothing after', () => {
    const { direct, calls } = setUp();
    direct.take(initialized);
    direct.take(call(1));
    direct.close();
    expect(calls[0]!.request.signal.aborted).toBe(true);
    expect(direct.take(call(2))).toBe(false);
  });

  it('sends progress and logs as notifications of the connection', async () => {
    const { direct, written, calls } = setUp();
    direct.take(initialized);
    direct.take(call(1, { name: 'x', _meta: { progressToken: 'p' } }));
    expect(calls[0]!.request.meta).toEqual({ progressToken: 'p' });
    await calls[0]!.request.notify('notifications/progress', { progressToken: 'p', progress: 1 });
    expect(written).toEqual([{ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p', progress: 1 } }]);
  });
});
