/**
 * Which messages the direct `tools/call` path takes from the SDK, and what it writes.
 *
 * The server is a real SDK server (its era codec and identity are what the path checks and encodes
 * results with), with a `callTool` the test settles by hand. The same behaviour against the real
 * daemon, byte for byte against the SDK's path, is test/integration/direct-calls.test.ts (socket) and
 * http-direct-calls.test.ts (HTTP).
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError, SdkError, Server } from '@modelcontextprotocol/server';
import { DirectCalls, wellFormedCall } from '../../src/node/downstream/direct-calls.js';
import type { CallRequest, DownstreamServer, DownstreamSession } from '../../src/node/downstream/mcp-server.js';

interface Call {
  params: Record<string, unknown>;
  request: CallRequest;
  finish: (result: Record<string, unknown>) => void;
  fail: (e: unknown) => void;
}

function setUp(options: { era?: 'legacy' | 'modern'; codec?: boolean } = {}) {
  const session = { era: options.era ?? 'legacy' } as DownstreamSession;
  const written: { message: Record<string, unknown>; related: string | number }[] = [];
  const calls: Call[] = [];
  const server = Object.assign(new Server({ name: 'gatehouse', version: '1.2.3' }, { capabilities: { tools: {} } }), {
    callTool: (params: Record<string, unknown>, request: CallRequest) =>
      new Promise<Record<string, unknown>>((finish, fail) => calls.push({ params, request, finish, fail })),
  }) as DownstreamServer;
  // An SDK that no longer keeps its era codec reachable.
  if (options.codec === false) Object.assign(server, { _wireCodec: undefined });
  const errors: unknown[] = [];
  const direct = new DirectCalls(session, { send: async (message, related) => void written.push({ message, related }) }, (error) => errors.push(error));
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

describe('a well-formed tools/call, by the SDK’s rules in both eras', () => {
  it('is a JSON-RPC request with a string name, object arguments and a string or integer progress token', () => {
    expect(wellFormedCall(call(1))).toEqual({ id: 1, params: { name: 'srv__echo', arguments: { text: 'hi' } } });
    expect(wellFormedCall(call('a', { name: 'x', _meta: { progressToken: 7, 'example.com/k': 1 } }))).toMatchObject({
      id: 'a',
      meta: { progressToken: 7, 'example.com/k': 1 },
    });
    expect(wellFormedCall(call('a', { name: 'x', _meta: { progressToken: 'p' } }))?.meta).toEqual({ progressToken: 'p' });
  });

  it('is none of what the SDK refuses, or serves otherwise', () => {
    const refused: [string, unknown][] = [
      ['no params', { jsonrpc: '2.0', id: 1, method: 'tools/call' }],
      ['another method', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { name: 'x' } }],
      ['no jsonrpc member', { id: 1, method: 'tools/call', params: { name: 'x' } }],
      ['a member the strict schema does not know', { ...call(1), extra: true }],
      ['a null id', call(null as unknown as number)],
      ['a fractional id', call(1.5)],
      ['an id beyond the safe integers', call(2 ** 53)],
      ['params that are not an object', call(1, [])],
      ['a name that is not a string', call(1, { name: 42 })],
      ['arguments that are not an object', call(1, { name: 'x', arguments: [] })],
      ['_meta that is not an object', call(1, { name: 'x', _meta: 'm' })],
      ['an object progress token', call(1, { name: 'x', _meta: { progressToken: {} } })],
      ['a fractional progress token', call(1, { name: 'x', _meta: { progressToken: 0.5 } })],
      ['a related task', call(1, { name: 'x', _meta: { 'io.modelcontextprotocol/related-task': { taskId: 't' } } })],
      ['a task request', call(1, { name: 'x', task: {} })],
      ['a multi-round-trip retry', call(1, { name: 'x', inputResponses: {} })],
      ['a request state', call(1, { name: 'x', requestState: 's' })],
    ];
    for (const [why, message] of refused) expect(wellFormedCall(message), why).toBeUndefined();
  });

  it('lifts the 2026-07-28 envelope out of _meta, as the SDK does before its handler sees the request', () => {
    const envelope = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
      'io.modelcontextprotocol/logLevel': 'info',
    };
    expect(wellFormedCall(call(1, { name: 'x', _meta: { ...envelope, progressToken: 'p' } }))).toMatchObject({ meta: { progressToken: 'p' }, envelope });
    const bare = wellFormedCall(call(1, { name: 'x', _meta: envelope }));
    expect(bare?.envelope).toEqual(envelope);
    expect(bare && 'meta' in bare, 'nothing left of _meta').toBe(false);
  });
});

describe('the direct tools/call path of a 2025-era session', () => {
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

  it('leaves malformed calls and an id already in flight to the SDK', () => {
    const { direct } = setUp();
    direct.take(initialized);
    expect(direct.take(call(1, { name: 42 }))).toBe(false);
    expect(direct.take(call(1.5))).toBe(false);
    expect(direct.take(call('same'))).toBe(true);
    expect(direct.take(call('same'))).toBe(false);
  });

  it('leaves the calls of a session waiting for pairing to the SDK, which tells it where to answer', () => {
    const { direct, session } = setUp();
    direct.take(initialized);
    session.pairing = { state: 'pending', client: 'ide', code: '1234', deadline: 'soon', where: 'the app' };
    expect(direct.take(call(1))).toBe(false);
  });

  it('writes the result as the era codec checked it, and a thrown error as the SDK writes one, each for its call', async () => {
    const { direct, written, calls } = setUp();
    direct.take(initialized);
    for (const id of [1, 2, 3, 4]) direct.take(call(id));
    calls[0]!.finish({ structuredContent: { n: 1 } });
    calls[1]!.fail(new ProtocolError(-32002, 'Resource not found', { uri: 'x://y' }));
    calls[2]!.fail(new Error('boom'));
    calls[3]!.finish({ content: [{ type: 'text', text: 'done' }], isError: false });
    await settle();
    expect(written).toEqual([
      { related: 1, message: { result: { content: [], structuredContent: { n: 1 } }, jsonrpc: '2.0', id: 1 } },
      { related: 2, message: { jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'Resource not found', data: { uri: 'x://y' } } } },
      { related: 3, message: { jsonrpc: '2.0', id: 3, error: { code: -32603, message: 'boom' } } },
      { related: 4, message: { result: { content: [{ type: 'text', text: 'done' }], isError: false }, jsonrpc: '2.0', id: 4 } },
    ]);
    // In the order the SDK writes a response's members.
    expect(Object.keys(written[0]!.message)).toEqual(['result', 'jsonrpc', 'id']);
  });

  it('answers a result the era codec refuses with the error the SDK gives', async () => {
    const { direct, written, calls } = setUp();
    direct.take(initialized);
    direct.take(call(7));
    calls[0]!.finish({ content: 'nope' });
    await settle();
    expect(written).toHaveLength(1);
    expect(written[0]!.message).toMatchObject({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32602, message: expect.stringMatching(/^Invalid tools\/call result: /) },
    });
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

  it('aborts the calls still running when the connection closes, as the SDK aborts its handlers, and takes nothing after', () => {
    const { direct, calls } = setUp();
    direct.take(initialized);
    direct.take(call(1));
    direct.close();
    expect(calls[0]!.request.signal.aborted).toBe(true);
    expect(calls[0]!.request.signal.reason).toBeInstanceOf(SdkError);
    expect(direct.take(call(2))).toBe(false);
  });

  it('sends progress and logs as notifications of the call, and hands the handler the _meta the SDK would', async () => {
    const { direct, written, calls } = setUp();
    direct.take(initialized);
    direct.take(call(1, { name: 'x', _meta: { progressToken: 'p', 'io.modelcontextprotocol/protocolVersion': '2025-11-25' } }));
    expect(calls[0]!.request.meta).toEqual({ progressToken: 'p' });
    await calls[0]!.request.notify('notifications/progress', { progressToken: 'p', progress: 1 });
    expect(written).toEqual([{ related: 1, message: { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p', progress: 1 } } }]);
  });

  it('gives the handler the signal of the HTTP request that carried the call, which tells it the client went away', () => {
    const { direct, calls } = setUp();
    direct.take(initialized);
    const gone = new AbortController();
    direct.take(call(1), () => gone.signal);
    direct.take(call(2));
    expect(calls[0]!.request.gone?.()).toBe(gone.signal);
    expect(calls[1]!.request.gone, 'a socket call').toBeUndefined();
  });
});
