/**
 * The socket's direct `tools/call` path (src/node/downstream/direct-calls.ts) against the SDK's.
 *
 * A 2025-era socket session's calls are served by the SDK's request pipeline until the client ends
 * the handshake with `notifications/initialized`, and by the direct path from then on. So one raw
 * connection can send the same call through both, and what it reads back must be the same, byte
 * for byte (only the request id differs): results of every shape real servers give, tool errors,
 * JSON-RPC errors, progress before the result, a result the upstream got wrong, a malformed call.
 * Which path served each call is counted where the SDK dispatches a request, so that the
 * comparison cannot pass with both calls on one path.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { countSdkToolCalls, ERROR_CALLS, PROGRESS_CALL, RESULT_CALLS, SERVERS } from './support/direct-call-cases.js';
import { LineSocket, opened, type RpcMessage } from './support/line-socket.js';

const dispatched = countSdkToolCalls();
const sdkCalls = dispatched.count;

let gh: RunningGatehouse;
beforeAll(async () => {
  gh = await startGatehouse({ servers: SERVERS });
  expect((await gh.status()).servers.map((s) => s.state)).toEqual(['ready', 'ready', 'ready']);
});
afterAll(async () => {
  await gh?.stop();
  dispatched.restore();
});
afterEach(() => {
  for (const socket of opened) socket.destroy();
  opened.clear();
});

/** A welcomed, initialized session that has not yet said `notifications/initialized`: its calls go through the SDK. */
async function beforeHandshakeEnds(): Promise<LineSocket> {
  const s = await LineSocket.connect(gh.socketPath);
  s.write(JSON.stringify({ gatehouse: 'hello', version: 1, client: 'test-client', token: gh.token }));
  expect(JSON.parse(await s.nextLine())).toMatchObject({ gatehouse: 'welcome' });
  const init = await s.request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'direct-calls-test', version: '1.0.0' } });
  expect(init.result?.protocolVersion).toBe('2025-06-18');
  return s;
}

function endHandshake(s: LineSocket): void {
  s.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
}

/**
 * Sends one request line with this id and collects every line up to and including its answer. The
 * daemon's own requests to the client (it asks for roots once the handshake ends) belong to no call,
 * and arrive whenever they do: they are left out.
 */
async function exchange(s: LineSocket, id: string, params: Record<string, unknown>): Promise<string[]> {
  s.write(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params }));
  const lines: string[] = [];
  for (;;) {
    const line = await s.nextLine();
    const message = JSON.parse(line) as RpcMessage;
    if (message.method !== undefined && message.id !== undefined) continue;
    lines.push(line);
    if (message.id === id) return lines;
  }
}

/** Runs `send` (one call, up to its answer), and checks that the SDK's dispatch saw the call or did not. */
async function through<T>(path: 'sdk' | 'direct', send: () => Promise<T>): Promise<T> {
  const before = sdkCalls();
  const result = await send();
  expect(sdkCalls() - before, `calls the SDK dispatched on the ${path} path`).toBe(path === 'sdk' ? 1 : 0);
  return result;
}

/** The lines as read, with the request id written in a neutral form, so that two paths' lines can be compared as text. */
const neutral = (lines: string[], id: string): string[] => lines.map((line) => line.split(JSON.stringify(id)).join('"ID"'));

/** Each call once through the SDK (before the handshake ends), then once through the direct path, on one connection. */
async function bothPaths(calls: Record<string, unknown>[]): Promise<{ sdk: string[][]; direct: string[][] }> {
  const s = await beforeHandshakeEnds();
  const sdk: string[][] = [];
  for (const [i, params] of calls.entries()) sdk.push(neutral(await through('sdk', () => exchange(s, `sdk-${i}`, params)), `sdk-${i}`));
  endHandshake(s);
  const direct: string[][] = [];
  for (const [i, params] of calls.entries()) direct.push(neutral(await through('direct', () => exchange(s, `direct-${i}`, params)), `direct-${i}`));
  return { sdk, direct };
}

describe("the socket's direct tools/call path", () => {
  it('answers results of every shape byte for byte as the SDK path does', async () => {
    const calls = RESULT_CALLS;
    const { sdk, direct } = await bothPaths(calls);
    expect(direct).toEqual(sdk);
    // The calls did what they say (the comparison alone would pass if both paths failed alike).
    expect(direct[1]!.at(-1)).toContain('42');
    expect(JSON.parse(direct[2]!.at(-1)!).result.structuredContent).toBeTruthy();
    expect(JSON.parse(direct[6]!.at(-1)!).result.content[0].text).toBe(calls[6]!.arguments.text);
  });

  it('answers tool errors, unknown tools, bad arguments and a result the server got wrong as the SDK path does', async () => {
    const calls = ERROR_CALLS;
    const { sdk, direct } = await bothPaths(calls);
    expect(direct).toEqual(sdk);
    const last = direct.map((lines) => JSON.parse(lines.at(-1)!) as RpcMessage);
    expect(last[0]!.error?.code, 'a tool the server does not list').toBe(-32602);
    expect(last[1]!.error?.code, 'a server that does not exist').toBe(-32602);
    expect(last[2]!.result?.isError, "the server's own refusal of bad arguments").toBe(true);
    expect(last[3]!.error?.message, 'a result that is not a tools/call result').toMatch(/Invalid result for tools\/call/);
  });

  it('sends progress before the result, as the SDK path does', async () => {
    const calls = [PROGRESS_CALL];
    const { sdk, direct } = await bothPaths(calls);
    expect(direct).toEqual(sdk);
    expect(direct[0]!.map((line) => (JSON.parse(line) as RpcMessage).method ?? 'result')).toEqual([
      'notifications/progress',
      'notifications/progress',
      'notifications/progress',
      'result',
    ]);
  });

  it('leaves a malformed call to the SDK, which words the error', async () => {
    const s = await beforeHandshakeEnds();
    endHandshake(s);
    const answer = JSON.parse((await through('sdk', () => exchange(s, 'bad', { name: 42, arguments: [] }))).at(-1)!) as RpcMessage;
    expect(answer.error?.code).toBe(-32602);
    expect(answer.error?.message).toMatch(/Invalid tools\/call request/);
    // The connection still serves calls.
    expect(
      JSON.parse((await through('direct', () => exchange(s, 'next', { name: 'srv__echo', arguments: { text: 'still here' } }))).at(-1)!).result.content[0].text,
    ).toBe('still here');
  });

  it('stops a cancelled call: it is cancelled upstream and never answered, and the connection goes on', async () => {
    const s = await beforeHandshakeEnds();
    endHandshake(s);
    const stats = async (): Promise<{ cancelled: number; started: number }> =>
      JSON.parse(JSON.parse((await exchange(s, `stats-${Date.now()}`, { name: 'lab__stats', arguments: {} })).at(-1)!).result.content[0].text) as never;
    const before = await stats();
    const dispatchedBefore = sdkCalls();
    s.write(JSON.stringify({ jsonrpc: '2.0', id: 'long', method: 'tools/call', params: { name: 'lab__wait', arguments: {}, _meta: { progressToken: 'w' } } }));
    // Progress 0 says the call is running upstream.
    await s.next((m) => m.method === 'notifications/progress');
    s.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'long', reason: 'the user pressed stop' } }));
    await eventually(async () => (await stats()).cancelled === before.cancelled + 1, 10_000, 'the lab server saw the cancellation');
    expect(s.lines.map((line) => (JSON.parse(line) as RpcMessage).id)).not.toContain('long');
    // The call, its cancellation and the calls that watched it took the direct path.
    expect(sdkCalls(), 'calls the SDK dispatched').toBe(dispatchedBefore);
  });
});
