/**
 * While a refund waits for the person, every method the daemon actually serves is called, with the
 * most answer-like arguments it takes, and none of them answers the question (issue 12, finding 8;
 * SECURITY.md Q1). "Actually serves" is read from the running daemon, not from a list of names:
 *
 * - MCP: every request handler any downstream SDK server registered (recorded as the daemon builds
 *   its sessions, the SDK's own built-ins included) and every request method of the protocol, on
 *   the socket, over HTTP in the 2025 era, and over HTTP in the 2026-07-28 era; every listed tool,
 *   prompt and resource of the caller; the search view's tools, and `call_tool` on every tool;
 * - the control socket: every method of its contract (and a made-up one is refused), each first
 *   with an answer smuggled into its parameters (refused by the strict schemas), then with valid ones;
 * - the console API: every console method through the console's own entry;
 * - HTTP: every path the MCP port serves, found as a client finds them (the OAuth metadata).
 *
 * After each call the request is still waiting, no approval was recorded and the CRM has not
 * refunded anything. The page (the only way in) is in approval-agent.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, specTypeSchemas } from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_METHODS } from '../../src/common/console-channels.js';
import { ControlRequests, type ControlMethod } from '../../src/common/control-api.js';
import { callControl } from '../../src/node/control/control-client.js';
import { makeKey, sampleFiles, signFiles } from '../support/policy.js';
import { closeAll, connectBridge, type Connected } from './support/clients.js';
import { auditEvents, executed, startApprovalGatehouse, untilCrmReady, type ApprovalGatehouse } from './support/approvals.js';
import { eventually } from './support/gatehouse.js';
import { mcpHeaders, openingRequest, rawRequest, rpcOf, rpcRequest } from './support/raw-http.js';

// Every request handler a downstream SDK server registers, as the daemon builds them.
const served = new Set<string>();
type SetHandler = (this: Server, method: string, ...rest: unknown[]) => unknown;
const proto = Server.prototype as unknown as { setRequestHandler: SetHandler };
const register = proto.setRequestHandler;
proto.setRequestHandler = function (this: Server, method: string, ...rest: unknown[]) {
  served.add(method);
  return register.call(this, method, ...rest);
};

let scratch: string;
let callLog: string;
let gh: ApprovalGatehouse;
let agent: Connected;
let waiting: Promise<unknown>;
let requestId: string;
let digest: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gh-no-answer-'));
  callLog = join(scratch, 'calls.jsonl');
  const root = await makeKey();
  const bundle = await signFiles(sampleFiles({ crmArgs: ['--log', callLog] }), { version: 1, keys: [root] });
  gh = await startApprovalGatehouse({
    roots: [root],
    bundle,
    identity: { user: 'sam@example.com', groups: ['crm-support'] },
    timeoutMs: 120_000,
    clients: ['ide', 'spare'],
  });
  await untilCrmReady(gh);
  agent = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide!, shared: true });
  waiting = agent.client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-3', amount: 9000, currency: 'EUR' } }, { timeout: 240_000 });
  waiting.catch(() => undefined);
  await gh.nextQuestion();
  requestId = gh.status().approvals!.pending[0]!.id;
  // The agent reads the audit log (same user): it knows the exact digest of its waiting request.
  digest = await eventually(() => auditEvents(gh.paths, 'approval.requested')[0]?.argsDigest, 5000, 'the approval request on record');
});
afterAll(async () => {
  proto.setRequestHandler = register;
  await closeAll();
  await agent?.close();
  await gh?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** Everything an agent could put where an answer might be taken. */
const answerish = (): Record<string, unknown> => ({
  id: requestId,
  requestId,
  question: requestId,
  digest,
  answer: 'once',
  choice: `once:${digest}`,
  decision: 'approve',
  approved: true,
});

/** The invariant: the same request still waits, nobody approved anything, and the CRM refunded nothing. */
function stillWaiting(after: string): void {
  const pending = gh.status().approvals!.pending;
  expect(
    pending.map((p) => p.id),
    after,
  ).toContain(requestId);
  expect(
    auditEvents(gh.paths, 'approval.decided').filter((e) => e.approval?.decision === 'approved'),
    after,
  ).toEqual([]);
  expect(
    executed(callLog).filter((c) => c.tool === 'refund'),
    after,
  ).toEqual([]);
}

/** The request methods of the protocol, from the SDK's own schema of client requests. */
function specMethods(): string[] {
  const union = specTypeSchemas.ClientRequest as unknown as { options: { shape: { method: { value: string } } }[] };
  return union.options.map((o) => o.shape.method.value);
}

/** Methods to probe on MCP: what the daemon's SDK servers registered, what the protocol defines, and names an agent would try. */
function mcpMethods(): string[] {
  return [
    ...new Set([...served, ...specMethods(), 'approvals/answer', 'approvals/approve', 'gatehouse/approve', 'human/answer', 'questions/answer', 'tasks/cancel']),
  ].sort();
}

interface Item {
  tools: string[];
  prompts: string[];
  resources: string[];
  templates: string[];
}

/** Params for one MCP method: whatever it needs to reach its handler, plus the answer an agent would smuggle in. */
function paramsFor(method: string, items: Item): Record<string, unknown>[] {
  const extra = answerish();
  const asStrings = Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, String(v)]));
  switch (method) {
    case 'tools/call':
      return items.tools.map((name) => ({ name, arguments: extra, _meta: { 'gatehouse/approval': `once:${digest}`, approved: true } }));
    case 'prompts/get':
      return [...items.prompts, 'crm__follow_up', 'gatehouse__approve'].map((name) => ({ name, arguments: asStrings }));
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return [...items.resources, 'crm://pipeline', `gatehouse://approvals/${requestId}`].map((uri) => ({ uri, ...extra }));
    case 'completion/complete':
      return [
        ...[...items.prompts, 'crm__follow_up'].map((name) => ({ type: 'ref/prompt', name })),
        ...[...items.templates, 'crm://contacts/{id}'].map((uri) => ({ type: 'ref/resource', uri })),
      ].map((ref) => ({ ref, argument: { name: 'answer', value: 'once' }, ...extra }));
    case 'logging/setLevel':
      return [{ level: 'debug', ...extra }];
    default:
      return [extra];
  }
}

/** A socket session spoken by hand: hello, initialize, then one request at a time. */
class SocketSession {
  private buffer = '';
  private next = 10;
  private waiters = new Map<number, (reply: Record<string, unknown>) => void>();
  private constructor(private readonly socket: Socket) {}

  static async open(path: string, token: string, view?: 'search'): Promise<SocketSession> {
    const socket = createConnection(path);
    socket.setEncoding('utf8');
    const session = new SocketSession(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => socket.write(JSON.stringify({ gatehouse: 'hello', version: 1, client: 'ide', token, ...(view ? { view } : {}) }) + '\n'));
      socket.on('data', (chunk: string) => {
        session.buffer += chunk;
        for (let nl = session.buffer.indexOf('\n'); nl >= 0; nl = session.buffer.indexOf('\n')) {
          const line = JSON.parse(session.buffer.slice(0, nl)) as Record<string, unknown>;
          session.buffer = session.buffer.slice(nl + 1);
          if (line.gatehouse === 'welcome') resolve();
          else if (line.gatehouse) reject(new Error(JSON.stringify(line)));
          else if (typeof line.id === 'number') session.waiters.get(line.id)?.(line);
        }
      });
    });
    await session.request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'agent', version: '1' } });
    socket.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
    return session;
  }

  /** The reply, or undefined when none came within `timeoutMs` (the request is then cancelled). */
  request(method: string, params: Record<string, unknown>, timeoutMs = 3000): Promise<Record<string, unknown> | undefined> {
    const id = this.next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        this.socket.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } }) + '\n');
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(id, (reply) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(reply);
      });
      this.socket.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** What the caller may see, listed through the bridge. */
async function visibleItems(): Promise<Item> {
  const { client } = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
  const resources = (await client.listResources()).resources.map((r) => r.uri);
  const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
  return { tools, prompts, resources, templates };
}

describe('every MCP method the daemon serves, called while a refund waits for the person', () => {
  it('on the socket: none answers the question', { timeout: 180_000 }, async () => {
    const items = await visibleItems();
    expect(items.tools).toContain('crm__refund');
    const session = await SocketSession.open(gh.paths.socketPath, gh.tokens.ide!);
    try {
      // The daemon's sessions are built by now: the recorded handlers are the ones it serves.
      expect([...served]).toEqual(expect.arrayContaining(['initialize', 'ping', 'tools/call', 'tools/list', 'completion/complete']));
      const reached = new Set<string>();
      for (const method of mcpMethods()) {
        for (const params of paramsFor(method, items)) {
          const reply = await session.request(method, params);
          if (!reply || (reply.error as { code?: number } | undefined)?.code !== -32601) reached.add(method);
          if (!served.has(method) && reply) expect(reply, method).toMatchObject({ error: { code: -32601 } });
          stillWaiting(`socket ${method} ${JSON.stringify(params).slice(0, 80)}`);
        }
      }
      // Every registered handler was reached, except the 2026-07-28 ones, which a 2025-era session does not serve.
      expect([...served].filter((m) => !reached.has(m)).sort()).toEqual(['server/discover', 'subscriptions/listen'].filter((m) => served.has(m)));
    } finally {
      session.close();
    }
  });

  it('in the search view: none of its tools answers the question, and call_tool reaches nothing that does', { timeout: 60_000 }, async () => {
    const items = await visibleItems();
    const session = await SocketSession.open(gh.paths.socketPath, gh.tokens.ide!, 'search');
    try {
      const listed = (await session.request('tools/list', {}))?.result as { tools: { name: string }[] };
      const searchTools = listed.tools.map((t) => t.name).sort();
      expect(searchTools).toEqual(['call_tool', 'find_tools']);
      for (const name of searchTools) {
        await session.request('tools/call', { name, arguments: answerish() });
        stillWaiting(`search view ${name}`);
      }
      for (const tool of [...items.tools, 'gatehouse__approve']) {
        await session.request('tools/call', { name: 'call_tool', arguments: { name: tool, arguments: answerish() } });
        stillWaiting(`search view call_tool ${tool}`);
      }
    } finally {
      session.close();
    }
  });

  it('over HTTP, in both protocol eras: none answers the question', { timeout: 180_000 }, async () => {
    const items = await visibleItems();
    const url = `${gh.daemon.httpUrl!}/mcp`;
    const auth = { authorization: `Bearer ${gh.tokens.ide!}` };
    // 2025 era: a session, then each request in it.
    const opened = await rawRequest(url, { headers: { ...mcpHeaders('legacy'), ...auth }, body: openingRequest('legacy') });
    const sessionId = String(opened.headers['mcp-session-id']);
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    for (const era of ['legacy', 'modern'] as const) {
      for (const method of mcpMethods()) {
        // A listen request opens a stream that stays open; it is answered on the socket above and skipped here.
        if (method === 'subscriptions/listen') continue;
        for (const params of paramsFor(method, items)) {
          const headers = { ...mcpHeaders(era, method), ...auth, ...(era === 'legacy' ? { 'mcp-session-id': sessionId } : {}) };
          const response = await Promise.race([
            rawRequest(url, { headers, body: rpcRequest(era, method, params, 7) }),
            new Promise<undefined>((resolve) => setTimeout(resolve, 3000, undefined)),
          ]);
          if (response && response.status === 200 && !served.has(method)) {
            expect(rpcOf(response), `${era} ${method}`).toMatchObject({ error: { code: -32601 } });
          }
          stillWaiting(`HTTP ${era} ${method}`);
        }
      }
    }
  });
});

/** Valid params for every control method: the harmless target where there is one. */
const CONTROL_CASES: Record<ControlMethod, Record<string, unknown>> = {
  status: {},
  'servers.restart': { name: 'crm' },
  'servers.start': { name: 'crm' },
  'servers.stop': { name: 'nope' },
  logs: { name: 'crm', lines: 10 },
  'config.reload': {},
  'clients.reload': {},
  'clients.pair': { name: 'probe-client' },
  'identity.status': {},
  'identity.reload': {},
  'identity.logout': {},
  'secrets.changed': { names: ['probe'] },
  'servers.list': {},
  'servers.tools': { name: 'crm' },
  'servers.add': { name: 'extra', config: { type: 'stdio', command: 'node', args: ['--version'] } },
  'servers.update': { name: 'extra', config: { type: 'stdio', command: 'node', args: ['--help'] } },
  'servers.remove': { name: 'extra' },
  'tools.list': {},
  'audit.query': { limit: 5 },
  'audit.timeline': { from: new Date(Date.now() - 3_600_000).toISOString(), by: 'tool' },
  'audit.verify': {},
  'policy.status': {},
  'clients.list': {},
  'clients.setView': { name: 'spare', view: 'search' },
  'clients.revoke': { name: 'spare' },
  'secrets.list': {},
  'secrets.set': { name: 'probe', value: 'not-a-secret' },
  'secrets.delete': { name: 'probe' },
  'console.link': {},
  'identity.login': {},
  'tools.cost': {},
  'questions.list': {},
  'policy.servers': {},
  'clients.apps': {},
  // A dry run writes nothing; the check launches nothing.
  'clients.setup': { client: 'cursor', dryRun: true },
  // The test's home has no Zed config with servers: nothing to move.
  'clients.import': { client: 'zed' },
  // The CRM is a local server: there is nothing to sign in to, and nothing is asked.
  'servers.login': { name: 'crm' },
  'servers.logout': { name: 'crm' },
  // The sample bundle's catalogue has launch specs only: nothing to install, so nothing is fetched.
  'catalog.list': {},
  'catalog.show': { name: 'crm' },
  'servers.install': { name: 'crm', as: 'crm-copy' },
  'servers.pin': { name: 'crm' },
  'catalog.shadows': {},
};

describe('every control method, called while a refund waits for the person', () => {
  it('covers the whole contract, and the daemon refuses what is not in it', async () => {
    expect(Object.keys(CONTROL_CASES).sort()).toEqual(Object.keys(ControlRequests).sort());
    for (const method of ['approvals.answer', 'approvals.approve', 'questions.answer', 'human.answer']) {
      await expect(callControl(gh.paths.controlSocketPath, method as never, answerish() as never)).rejects.toThrow(/unknown method/);
    }
  });

  it("refuses an answer smuggled into any method's parameters, and no method answers with valid ones", { timeout: 60_000 }, async () => {
    for (const [method, params] of Object.entries(CONTROL_CASES) as [ControlMethod, Record<string, unknown>][]) {
      await expect(callControl(gh.paths.controlSocketPath, method, { ...params, ...answerish() } as never), method).rejects.toMatchObject({
        code: 'invalid_params',
      });
      // clients.pair waits for the person; what matters is that it answers nothing meanwhile.
      await callControl(gh.paths.controlSocketPath, method, params as never, method === 'clients.pair' ? 1000 : 30_000).catch(() => undefined);
      if (method === 'servers.restart' || method === 'servers.start') await untilCrmReady(gh);
      stillWaiting(`control ${method}`);
    }
  });

  it("the console API: every console method through the console's entry, and nothing else", async () => {
    expect((await gh.daemon.console.call('clients.pair', { name: 'x' })).ok).toBe(false);
    for (const method of CONSOLE_METHODS) {
      expect((await gh.daemon.console.call(method, { ...CONTROL_CASES[method], ...answerish() })).ok, method).toBe(false);
      await gh.daemon.console.call(method, CONTROL_CASES[method]);
      if (method === 'servers.restart' || method === 'servers.start') await untilCrmReady(gh);
      stillWaiting(`console ${method}`);
    }
  });
});

describe('every HTTP path of the MCP port, called while a refund waits for the person', () => {
  it('none answers the question', async () => {
    const origin = gh.daemon.httpUrl!;
    const metadata = (await (await fetch(`${origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, string>;
    const resource = (await (await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`)).json()) as { resource: string };
    const paths = new Set([
      '/.well-known/oauth-authorization-server',
      '/.well-known/openid-configuration',
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resource/mcp',
      new URL(resource.resource).pathname,
      '/mcp/crm',
      ...['authorization_endpoint', 'token_endpoint', 'registration_endpoint'].map((k) => new URL(metadata[k]!).pathname),
    ]);
    expect(paths.size).toBeGreaterThanOrEqual(8);
    const form = new URLSearchParams(Object.entries(answerish()).map(([k, v]): [string, string] => [k, String(v)])).toString();
    for (const path of paths) {
      for (const [method, type, body] of [
        ['GET', undefined, undefined],
        ['POST', 'application/x-www-form-urlencoded', form],
        ['POST', 'application/json', JSON.stringify(answerish())],
      ] as const) {
        const headers: Record<string, string> = {
          authorization: `Bearer ${gh.tokens.ide!}`,
          ...(type ? { 'content-type': type, accept: 'application/json, text/event-stream' } : {}),
        };
        await Promise.race([
          rawRequest(`${origin}${path}?${form}`, { method, headers, ...(body !== undefined ? { body } : {}) }),
          new Promise((r) => setTimeout(r, 3000)),
        ]);
        stillWaiting(`HTTP ${method} ${path}`);
      }
    }
  });
});
