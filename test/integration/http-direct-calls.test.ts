/**
 * The direct `tools/call` paths over HTTP against the SDK's: a 2025-era session's
 * (src/node/downstream/direct-calls.ts, on Gatehouse's own session transport) and a 2026-07-28
 * request's (src/node/downstream/modern-calls.ts, beside the SDK's `createMcpHandler`).
 *
 * A 2025 session's calls go through the SDK until the client ends the handshake with
 * `notifications/initialized`, and through the direct path from then on. A 2026-07-28 call goes
 * through the SDK's handler when its `Mcp-Name` header carries the tool's name encoded (the SDK
 * decodes it; the direct path leaves such a call to it), and through the direct path when it names
 * the tool as it is. So the same calls can be sent both ways, and each answer must be the same: the
 * status, every header but the date, and the body's bytes, with the request id written in a neutral
 * form. Which path served each call is counted where the SDK dispatches a request, so that the
 * comparison cannot pass with both calls on one path.
 */
import { countSdkToolCalls, ERROR_CALLS, nameForSdkPath, PROGRESS_CALL, RESULT_CALLS, SERVERS } from './support/direct-call-cases.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { MODERN_VERSION } from './support/clients.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { mcpHeaders, rawRequest, rpcOf, streamRequest, type StreamedRequest } from './support/raw-http.js';

const CLIENT_INFO = { name: 'http-direct-calls-test', version: '1.0.0' };
/** Clients whose credential a test revokes while their call is in flight: one per era and path. */
const REVOKED = ['revoked-legacy-sdk', 'revoked-legacy-direct', 'revoked-modern-sdk', 'revoked-modern-direct'];
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
  'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
  'io.modelcontextprotocol/clientCapabilities': {},
};

const dispatched = countSdkToolCalls();
const sdkCalls = dispatched.count;

let gh: RunningGatehouse;
beforeAll(async () => {
  gh = await startGatehouse({ servers: SERVERS, clients: ['ide', ...REVOKED] });
  expect((await gh.status()).servers.map((s) => s.state)).toEqual(['ready', 'ready', 'ready']);
  // The everything server asks for roots once, 350 ms after it starts: asked during a call, that call's stream would carry the
  // question on one path and not the other. Outside a call nobody is asked, and the server says so.
  const logs = async (): Promise<string> =>
    ((await callControl(gh.paths.controlSocketPath, 'logs', { name: 'everything', lines: 200 })) as string[]).join('\n');
  await eventually(async () => /Failed to request roots/.test(await logs()), 10_000, 'the everything server to have asked for roots');
});
afterAll(async () => {
  await gh?.stop();
  dispatched.restore();
});

const url = (): string => `${gh.httpUrl}/mcp`;
const auth = (client = 'ide'): Record<string, string> => ({ authorization: `Bearer ${gh.tokens[client]}` });

interface Answer {
  status: number;
  /** `name: value`, in the order sent, without the date. */
  headers: string[];
  body: string;
}

/** Sends one POST and reads its whole answer; `during` runs once the headers are in (to answer what the stream asks). */
async function exchange(headers: Record<string, string>, body: string, during?: (stream: StreamedRequest) => Promise<void>): Promise<Answer> {
  const stream = streamRequest(url(), { headers, body });
  const head = await stream.head;
  if (during) await during(stream);
  return answerOf(head, await stream.done);
}

/** The answer as compared: every header but the date, in the order sent (a session's own id written as SESSION). */
function answerOf(head: { status: number; rawHeaders: string[] }, body: string): Answer {
  const pairs: string[] = [];
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    const name = head.rawHeaders[i]!.toLowerCase();
    if (name !== 'date') pairs.push(`${head.rawHeaders[i]}: ${name === 'mcp-session-id' ? 'SESSION' : head.rawHeaders[i + 1]}`);
  }
  return { status: head.status, headers: pairs, body };
}

/** The answer with these ids (a request's own, a server-to-client request's) written as ID, ID2, ... */
function neutral(answer: Answer, ...ids: (string | number)[]): Answer {
  let body = answer.body;
  ids.forEach((id, i) => (body = body.split(`"id":${JSON.stringify(id)}`).join(`"id":"ID${i || ''}"`)));
  return { ...answer, body };
}

const call = (id: string, params: Record<string, unknown>): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params });

/** Sends `send` once, and checks that the SDK's dispatch saw the call or did not. */
async function through<T>(path: 'sdk' | 'direct', send: () => Promise<T>): Promise<T> {
  const before = sdkCalls();
  const result = await send();
  expect(sdkCalls() - before, `calls the SDK dispatched on the ${path} path`).toBe(path === 'sdk' ? 1 : 0);
  return result;
}

/** Results of every shape real servers give, tool errors, JSON-RPC errors, and a result the server got wrong. */
const CALLS: Record<string, unknown>[] = [...RESULT_CALLS, ...ERROR_CALLS, PROGRESS_CALL];

/** What each call's answer says, so that the comparison cannot pass with both paths failing alike. */
function checkMeaning(answers: Answer[]): void {
  const last = answers.map(
    (a) => rpcOf({ status: a.status, headers: {}, body: a.body }) as { result?: Record<string, unknown>; error?: { code: number; message: string } },
  );
  expect(JSON.stringify(last[1]!.result)).toContain('42');
  expect(last[2]!.result?.structuredContent).toBeTruthy();
  expect((last[6]!.result?.content as { text: string }[])[0]!.text).toBe((CALLS[6]!.arguments as { text: string }).text);
  expect(last[8]!.error?.code, 'a tool the server does not list').toBe(-32602);
  expect(last[9]!.error?.code, 'a server that does not exist').toBe(-32602);
  expect(last[10]!.result?.isError, "the server's own refusal of bad arguments").toBe(true);
  expect(last[11]!.error?.message, 'a result that is not a tools/call result').toMatch(/Invalid result for tools\/call/);
  const progress = answers[12]!.body.split('\n').filter((line) => line.includes('notifications/progress'));
  expect(progress, 'progress before the result').toHaveLength(3);
}

/** A 2025 session, initialized but without `notifications/initialized` yet: its calls go through the SDK. */
async function openSession(client = 'ide'): Promise<Record<string, string>> {
  const opened = await rawRequest(url(), {
    headers: { ...mcpHeaders('legacy'), ...auth(client) },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: { elicitation: {} }, clientInfo: CLIENT_INFO },
    }),
  });
  expect(opened.status).toBe(200);
  return { ...mcpHeaders('legacy'), 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': String(opened.headers['mcp-session-id']), ...auth(client) };
}

/** The session's calls go through the direct path from now on. */
async function endHandshake(session: Record<string, string>): Promise<void> {
  const sent = await rawRequest(url(), { headers: session, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  expect(sent.status).toBe(202);
}

/** The headers of a 2026-07-28 call of `name`, through the SDK's handler or the direct path. */
const headers = (name: string, path: 'sdk' | 'direct', client = 'ide'): Record<string, string> => ({
  ...mcpHeaders('modern', 'tools/call'),
  'mcp-name': path === 'sdk' ? nameForSdkPath(name) : name,
  ...auth(client),
});
const modern = (id: string, params: Record<string, unknown>): string =>
  call(id, { ...params, _meta: { ...(params._meta as Record<string, unknown> | undefined), ...ENVELOPE } });

/** What the lab server has seen (asked on a 2026-07-28 request of the `ide` client). */
async function labStats(): Promise<{ cancelled: number }> {
  const answer = await exchange(headers('lab__stats', 'sdk'), modern(`stats-${Date.now()}`, { name: 'lab__stats', arguments: {} }));
  return JSON.parse((rpcOf({ status: 200, headers: {}, body: answer.body }).result!.content as { text: string }[])[0]!.text) as { cancelled: number };
}

describe('a 2025-era HTTP session', () => {
  it('answers results of every shape, errors and progress byte for byte as the SDK path does', async () => {
    const session = await openSession();
    const sdk: Answer[] = [];
    for (const [i, params] of CALLS.entries()) sdk.push(neutral(await through('sdk', () => exchange(session, call(`s-${i}`, params))), `s-${i}`));
    await endHandshake(session);
    const direct: Answer[] = [];
    for (const [i, params] of CALLS.entries()) direct.push(neutral(await through('direct', () => exchange(session, call(`d-${i}`, params))), `d-${i}`));
    expect(direct).toEqual(sdk);
    checkMeaning(direct);
    expect(direct[0]!.headers).toContain('content-type: text/event-stream');
  });

  it('relays a question the server asks during the call on the call’s stream, and its answer back, as the SDK path does', async () => {
    const session = await openSession();
    const ask = async (id: string): Promise<Answer> => {
      let asked: string | number | undefined;
      const answer = await exchange(session, call(id, { name: 'lab__ask', arguments: { question: 'Proceed?' } }), async (stream) => {
        const question = await stream.next((m) => m.method === 'elicitation/create');
        asked = question.id as string | number;
        const reply = JSON.stringify({ jsonrpc: '2.0', id: asked, result: { action: 'accept', content: { answer: 'yes' } } });
        expect((await rawRequest(url(), { headers: session, body: reply })).status).toBe(202);
      });
      return neutral(answer, id, asked!);
    };
    const sdk = await through('sdk', () => ask('s-ask'));
    await endHandshake(session);
    const direct = await through('direct', () => ask('direct-ask'));
    expect(direct).toEqual(sdk);
    expect(direct.body).toContain('action=accept answer=yes');
  });

  it('stops a direct call cancelled on another POST: cancelled upstream, never answered, and the session goes on', async () => {
    const session = await openSession();
    await endHandshake(session);
    const before = await labStats();
    const waiting = streamRequest(url(), { headers: session, body: call('long', { name: 'lab__wait', arguments: {}, _meta: { progressToken: 'w' } }) });
    try {
      // Progress 0 says the call is running upstream.
      await waiting.next((m) => m.method === 'notifications/progress');
      const cancel = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'long', reason: 'the user pressed stop' } });
      expect((await rawRequest(url(), { headers: session, body: cancel })).status).toBe(202);
      await eventually(async () => (await labStats()).cancelled === before.cancelled + 1, 10_000, 'the lab server saw the cancellation');
      expect(waiting.body()).not.toContain('"result"');
    } finally {
      waiting.destroy();
    }
  });
});

describe('2026-07-28 requests', () => {
  it('answers results of every shape, errors and progress byte for byte as the SDK’s handler does', async () => {
    // The first call on a kept server goes through the SDK's handler, which binds the server to the era.
    await through('sdk', () => exchange(headers('srv__echo', 'sdk'), modern('warm', { name: 'srv__echo', arguments: { text: 'warm' } })));
    const sdk: Answer[] = [];
    const direct: Answer[] = [];
    for (const [i, params] of CALLS.entries()) {
      const name = params.name as string;
      sdk.push(neutral(await through('sdk', () => exchange(headers(name, 'sdk'), modern(`s-${i}`, params))), `s-${i}`));
      direct.push(neutral(await through('direct', () => exchange(headers(name, 'direct'), modern(`d-${i}`, params))), `d-${i}`));
    }
    expect(direct).toEqual(sdk);
    checkMeaning(direct);
    // A short answer is one JSON body with its length; progress before it makes it an event stream.
    expect(direct[0]!.headers).toContain('content-type: application/json');
    expect(direct[0]!.headers.some((h) => h.startsWith('content-length: '))).toBe(true);
    expect(direct[12]!.headers).toContain('content-type: text/event-stream');
    // The era's encoding: the result type and the server's identity.
    const result = rpcOf({ status: 200, headers: {}, body: direct[0]!.body }).result!;
    expect(result.resultType).toBe('complete');
    expect(result._meta).toMatchObject({ 'io.modelcontextprotocol/serverInfo': { name: 'gatehouse' } });
  });

  it('answers a question the server asks during the call with the error the SDK’s handler gives (the era has no server-to-client requests)', async () => {
    const params = { name: 'lab__ask', arguments: { question: 'Proceed?' } };
    const sdk = neutral(await through('sdk', () => exchange(headers('lab__ask', 'sdk'), modern('s-ask', params))), 's-ask');
    const direct = neutral(await through('direct', () => exchange(headers('lab__ask', 'direct'), modern('d-ask', params))), 'd-ask');
    expect(direct).toEqual(sdk);
    expect(direct.body).toContain('could not ask');
  });

  it('cancels the call upstream when its client goes away before the answer, on either path', async () => {
    for (const path of ['sdk', 'direct'] as const) {
      const before = await labStats();
      await through(path, async () => {
        const waiting = streamRequest(url(), {
          headers: headers('lab__wait', path),
          body: modern(`wait-${path}`, { name: 'lab__wait', arguments: {}, _meta: { progressToken: 'w' } }),
        });
        await waiting.next((m) => m.method === 'notifications/progress');
        waiting.destroy();
      });
      await eventually(async () => (await labStats()).cancelled === before.cancelled + 1, 10_000, `the lab server saw the ${path} call cancelled`);
    }
  });

  it('leaves to the SDK’s handler a call whose headers disagree with its body, which it refuses', async () => {
    const body = modern('mismatch', { name: 'srv__echo', arguments: { text: 'x' } });
    const refused = await rawRequest(url(), { headers: { ...headers('srv__echo', 'direct'), 'mcp-name': 'srv__pid' }, body });
    expect(refused.status).toBe(400);
    expect(rpcOf(refused).error?.message).toMatch(/Mcp-Name header names "srv__pid"/);
  });
});

describe('a call in flight when its client is revoked', () => {
  it.each(['legacy', 'modern'] as const)('%s era: ends at once on either path, cancelled upstream, the exchange ended alike', async (era) => {
    const ended: Answer[] = [];
    for (const path of ['sdk', 'direct'] as const) {
      const client = `revoked-${era}-${path}`;
      let send: () => StreamedRequest;
      const wait = { name: 'lab__wait', arguments: {}, _meta: { progressToken: 'w' } };
      if (era === 'legacy') {
        const session = await openSession(client);
        if (path === 'direct') await endHandshake(session);
        send = () => streamRequest(url(), { headers: session, body: call('w-call', wait) });
      } else {
        // The direct path serves a kept server the SDK's handler has bound: one call through the handler first.
        if (path === 'direct') await exchange(headers('srv__echo', 'sdk', client), modern('warm', { name: 'srv__echo', arguments: { text: 'warm' } }));
        send = () => streamRequest(url(), { headers: headers('lab__wait', path, client), body: modern('w-call', wait) });
      }
      const before = await labStats();
      const waiting = await through(path, async () => {
        const stream = send();
        await stream.next((m) => m.method === 'notifications/progress');
        return stream;
      });
      new ClientRegistry(join(gh.paths.stateDir, 'clients.json')).revoke(client);
      await callControl(gh.paths.controlSocketPath, 'clients.reload', {});
      ended.push(answerOf(await waiting.head, await waiting.done));
      await eventually(async () => (await labStats()).cancelled === before.cancelled + 1, 10_000, `the lab server saw the ${path} call cancelled`);
    }
    expect(ended[1]).toEqual(ended[0]);
    expect(ended[1]!.body).not.toContain('"result"');
  });
});
