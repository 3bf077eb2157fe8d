import { describe, expect, it, vi } from 'vitest';
import type { GovernedCall } from '../../src/core/chain.js';
import { Gateway, type GatewayDeps } from '../../src/core/gateway.js';
import { ADMIT, NoApprovals, NoQuotas, UnmanagedPolicy, type Admission, type PolicyPort } from '../../src/core/governance.js';
import type { AuditRecord, ForwardOptions, UpstreamConnection, UpstreamLists } from '../../src/core/ports.js';
import type { Principal } from '../../src/core/principal.js';
import { FakeClock } from './fakes/fake-clock.js';

const principal: Principal = {
  user: { id: 'os:alice', source: 'os', displayName: 'alice', groups: [], roles: [] },
  client: { id: 'client:cursor', name: 'cursor', verified: true, transport: 'socket' },
};

class ScriptedConnection implements UpstreamConnection {
  readonly protocolVersion = '2025-11-25';
  readonly serverInfo = { name: 'fake', version: '1' };
  readonly capabilities: Record<string, unknown> = { tools: {}, completions: {} };
  readonly instructions = undefined;
  readonly pid = 1;
  readonly exited = new Promise<never>(() => undefined);
  calls: { method: string; params: Record<string, unknown> }[] = [];
  answer: (method: string, params: Record<string, unknown>, options: ForwardOptions) => Promise<Record<string, unknown>> = async (_m, params) => ({
    content: [{ type: 'text', text: `called ${String(params.name)}` }],
  });
  async listAll(): Promise<UpstreamLists> {
    throw new Error('not used');
  }
  request(method: string, params: Record<string, unknown>, options: ForwardOptions): Promise<Record<string, unknown>> {
    this.calls.push({ method, params });
    return this.answer(method, params, options);
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
  upstreamIdentity?: () => { issuer: string; subject?: string } | undefined;
}

function setup(overrides: Partial<GatewayDeps> = {}, signInNeeded?: (server: string) => string | undefined) {
  const audit: AuditRecord[] = [];
  const connection = new ScriptedConnection();
  const ready = new Map<string, UpstreamLists>([
    [
      'memory',
      {
        tools: [{ name: 'read_graph' }, { name: 'delete_all' }],
        resources: [{ uri: 'mem://readme', name: 'readme' }],
        resourceTemplates: [],
        prompts: [{ name: 'summarize' }],
      },
    ],
  ]);
  const deps: GatewayDeps = {
    directory: {
      readyLists: () => ready,
      connection: (server) => (ready.has(server) ? { connection, timeoutMs: 1000 } : undefined),
      ...(signInNeeded ? { signInNeeded } : {}),
    },
    audit: { append: (record) => void audit.push(record) },
    clock: new FakeClock(),
    logger: { log: () => undefined },
    identity: { verify: () => ADMIT },
    policy: new UnmanagedPolicy(),
    quota: new NoQuotas(),
    approval: new NoApprovals(),
    ...overrides,
  };
  const gateway = new Gateway(deps);
  return { gateway, audit, connection, ready };
}

const ctx = () => ({ signal: new AbortController().signal });

describe('the gateway', () => {
  it('forwards a call to the server that owns the tool, under the server own tool name', async () => {
    const { gateway, connection } = setup();
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', { q: 1 }, undefined, ctx());
    expect(outcome).toEqual({ kind: 'ok', result: { content: [{ type: 'text', text: 'called read_graph' }] } });
    expect(connection.calls).toEqual([{ method: 'tools/call', params: { name: 'read_graph', arguments: { q: 1 } } }]);
  });

  it('writes an attempt before and an outcome after every call, with the argument shape and digest but never the values', async () => {
    const { gateway, audit } = setup();
    await gateway.callTool(principal, {}, 'memory__read_graph', { password: 'hunter2' }, undefined, ctx());
    expect(audit.map((r) => r.type)).toEqual(['call.attempt', 'call.outcome']);
    expect(audit[0]).toMatchObject({
      user: 'os:alice',
      client: 'cursor',
      clientVerified: true,
      server: 'memory',
      name: 'read_graph',
      argsShape: { password: 'string' },
    });
    expect(audit[0]!.argsDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(JSON.stringify(audit)).not.toContain('hunter2');
    expect(audit[1]).toMatchObject({ decision: 'ok', policyMode: 'unmanaged', callId: audit[0]!.callId });
  });

  it('answers an unknown tool and audits the attempt without reaching any server', async () => {
    const { gateway, audit, connection } = setup();
    const outcome = await gateway.callTool(principal, {}, 'memory__nope', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'denied', code: 'unknown_tool', reason: 'Unknown tool: memory__nope' });
    expect(connection.calls).toEqual([]);
    expect(audit.map((r) => r.decision ?? r.type)).toEqual(['call.attempt', 'denied']);
  });

  it('gives a tool hidden by policy exactly the answer an unknown tool gets', async () => {
    const hiding: PolicyPort = {
      mode: 'managed',
      version: '7',
      visible: (_p, _s, _k, name) => name !== 'delete_all',
      decide: () => new UnmanagedPolicy().decide(),
    };
    const { gateway } = setup({ policy: hiding });
    expect(gateway.listTools(principal, {}).map((t) => t.name)).toEqual(['memory__read_graph']);
    const hidden = await gateway.callTool(principal, {}, 'memory__delete_all', {}, undefined, ctx());
    const unknown = await gateway.callTool(principal, {}, 'memory__does_not_exist', {}, undefined, ctx());
    expect(hidden).toMatchObject({ kind: 'denied', code: 'unknown_tool' });
    expect({ ...hidden, reason: '' }).toEqual({ ...unknown, reason: '' });
  });

  // Issue 12, finding 4: the refusal's record says what decided it; the caller still hears "unknown".
  it("records a hidden tool's refusal with its server, the policy mode and version, and the policies that hid it", async () => {
    const hiding: PolicyPort = {
      mode: 'managed',
      version: '7',
      visible: (_p, _s, _k, name) => name !== 'delete_all',
      decide: () => new UnmanagedPolicy().decide(),
      explainHidden: () => ({ reason: 'forbidden by only-admins-delete', policyIds: ['only-admins-delete'] }),
    };
    const { gateway, audit } = setup({ policy: hiding });
    const hidden = await gateway.callTool(principal, {}, 'memory__delete_all', {}, undefined, ctx());
    expect(hidden).toEqual({ kind: 'denied', stage: 'policy', code: 'unknown_tool', reason: 'Unknown tool: memory__delete_all' });
    expect(audit.at(-1)).toMatchObject({
      type: 'call.outcome',
      server: 'memory',
      name: 'delete_all',
      policyMode: 'managed',
      policyVersion: '7',
      policyIds: ['only-admins-delete'],
      code: 'unknown_tool',
      reason: 'hidden from this caller: forbidden by only-admins-delete (answered "Unknown tool: memory__delete_all")',
    });
    await gateway.callTool(principal, {}, 'memory__nope', {}, undefined, ctx());
    expect(audit.at(-1)).toMatchObject({ server: '', name: 'memory__nope', reason: 'Unknown tool: memory__nope' });
  });

  it("lets a caller open a server's own view only when something of it is visible to them", () => {
    const nothing: PolicyPort = { mode: 'managed', version: '1', visible: () => false, decide: () => new UnmanagedPolicy().decide() };
    expect(setup({ policy: nothing }).gateway.serverVisible(principal, 'memory')).toBe(false);
    expect(setup().gateway.serverVisible(principal, 'memory')).toBe(true);
    // A server that lists nothing yet: the policy's word on the server as a whole.
    const starting = setup({ policy: { ...nothing, serverVisible: (_p, server) => server === 'mail' } });
    expect(starting.gateway.serverVisible(principal, 'mail')).toBe(true);
    expect(starting.gateway.serverVisible(principal, 'calendar')).toBe(false);
  });

  it('hides every item when deciding visibility throws (fail closed)', () => {
    const broken: PolicyPort = {
      mode: 'managed',
      version: '1',
      visible: () => {
        throw new Error('bug');
      },
      decide: () => ({ allow: true, reason: '', policyIds: [] }),
    };
    const { gateway } = setup({ policy: broken });
    expect(gateway.listTools(principal, {})).toEqual([]);
  });

  it('refuses a call at the identity stage and never reaches policy or the server', async () => {
    let decided = false;
    const policy: PolicyPort = {
      mode: 'unmanaged',
      version: undefined,
      visible: () => true,
      decide: (_call: GovernedCall) => {
        decided = true;
        return new UnmanagedPolicy().decide();
      },
    };
    const { gateway, connection } = setup({ identity: { verify: () => ({ ok: false, code: 'unauthenticated', reason: 'revoked' }) }, policy });
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'denied', stage: 'identity', code: 'unauthenticated' });
    expect(decided).toBe(false);
    expect(connection.calls).toEqual([]);
  });

  it('refuses a call the policy denies, with the policy stage and reason, and records the deciding policies', async () => {
    const policy: PolicyPort = {
      mode: 'managed',
      version: '3',
      visible: () => true,
      decide: () => ({ allow: false, reason: 'analysts may not delete', policyIds: ['p7'] }),
    };
    const { gateway, audit } = setup({ policy });
    const outcome = await gateway.callTool(principal, {}, 'memory__delete_all', {}, undefined, ctx());
    expect(outcome).toEqual({ kind: 'denied', stage: 'policy', code: 'policy_denied', reason: 'analysts may not delete' });
    expect(audit[1]).toMatchObject({ policyMode: 'managed', policyVersion: '3', decision: 'denied', stage: 'policy' });
  });

  it('spends no quota on a call the policy refuses, and asks for no approval on a call the quota refuses', async () => {
    let quotaAsked = 0;
    let approvalAsked = 0;
    const quota = {
      admit: async (): Promise<Admission> => {
        quotaAsked++;
        return { ok: false, code: 'quota_exceeded', reason: 'daily writes used up' };
      },
    };
    const approval = {
      review: async (): Promise<Admission> => {
        approvalAsked++;
        return ADMIT;
      },
    };
    const denyAll: PolicyPort = { mode: 'managed', version: '1', visible: () => true, decide: () => ({ allow: false, reason: 'no', policyIds: [] }) };
    const refused = setup({ policy: denyAll, quota, approval });
    await refused.gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(quotaAsked).toBe(0);
    const limited = setup({ quota, approval });
    const outcome = await limited.gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'denied', stage: 'quota', code: 'quota_exceeded' });
    expect(approvalAsked).toBe(0);
  });

  it('refuses at the approval stage when the person says no', async () => {
    const { gateway, connection } = setup({ approval: { review: async () => ({ ok: false, code: 'approval_required', reason: 'denied by the user' }) } });
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'denied', stage: 'approval', code: 'approval_required' });
    expect(connection.calls).toEqual([]);
  });

  it('fails a call closed, and audits it, when a stage throws', async () => {
    const { gateway, audit, connection } = setup({
      quota: {
        admit: async () => {
          throw new Error('counter store broken');
        },
      },
    });
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'failed', error: 'internal error: counter store broken' });
    expect(connection.calls).toEqual([]);
    expect(audit[1]).toMatchObject({ decision: 'failed' });
  });

  it('refuses a call when the audit log cannot record its attempt', async () => {
    const { gateway, connection } = setup({
      audit: {
        append: () => {
          throw new Error('disk full');
        },
      },
    });
    await expect(gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx())).rejects.toThrow(/disk full/);
    expect(connection.calls).toEqual([]);
  });

  it('returns the upstream error message once, without the prefixes SDKs stack on it, and keeps its code', async () => {
    const { gateway, connection } = setup();
    connection.answer = async () => {
      throw Object.assign(new Error('MCP error -32602: MCP error -32602: bad path'), { code: -32602 });
    };
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(outcome).toEqual({ kind: 'failed', stage: 'upstream', error: 'bad path', rpcCode: -32602 });
  });

  it('says a server is not ready rather than guessing', async () => {
    const { gateway, ready } = setup();
    const routes = gateway.listTools(principal, {}).length;
    expect(routes).toBe(2);
    ready.clear();
    // The view still names the tool until refresh; the upstream stage finds no connection.
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'denied', stage: 'upstream', code: 'server_unavailable' });
  });

  it('tells listeners which lists changed when a server comes or goes, for the aggregate and the single-server view', () => {
    const { gateway, ready } = setup();
    const changes: string[] = [];
    gateway.onChange((kind, scope) => changes.push(`${scope.server ?? '*'}:${kind}`));
    ready.set('files', { tools: [{ name: 'read_file' }], resources: [], resourceTemplates: [], prompts: [] });
    gateway.refresh();
    expect(changes).toEqual(['*:tools', 'files:tools']);
    changes.length = 0;
    gateway.refresh();
    expect(changes).toEqual([]);
  });

  it('relays a server request to the session of the one call in flight to that server', async () => {
    const { gateway, connection } = setup();
    let release!: () => void;
    connection.answer = () => new Promise((resolve) => (release = () => resolve({ content: [] })));
    const asked: string[] = [];
    const call = gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, {
      signal: new AbortController().signal,
      sendRequest: async (method) => {
        asked.push(method);
        return { action: 'accept' };
      },
    });
    await Promise.resolve();
    await expect(gateway.routeServerRequest('memory', 'elicitation/create', {}, new AbortController().signal)).resolves.toEqual({ action: 'accept' });
    expect(asked).toEqual(['elicitation/create']);
    release();
    await call;
  });

  it('refuses to relay a server request when it cannot tell which call caused it', async () => {
    const { gateway, connection } = setup();
    const releases: (() => void)[] = [];
    connection.answer = () => new Promise((resolve) => releases.push(() => resolve({ content: [] })));
    await expect(gateway.routeServerRequest('memory', 'roots/list', undefined, new AbortController().signal)).rejects.toThrow(/no client call/);
    const calls = [1, 2].map(() =>
      gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, { signal: new AbortController().signal, sendRequest: async () => ({}) }),
    );
    await Promise.resolve();
    await expect(gateway.routeServerRequest('memory', 'sampling/createMessage', {}, new AbortController().signal)).rejects.toThrow(/2 client calls/);
    releases.forEach((r) => r());
    await Promise.all(calls);
  });

  it('routes a resource read and a prompt to their server', async () => {
    const { gateway, connection } = setup();
    await gateway.readResource(principal, {}, 'mem://readme', undefined, ctx());
    await gateway.getPrompt(principal, {}, 'memory__summarize', { topic: 'x' }, undefined, ctx());
    expect(connection.calls).toEqual([
      { method: 'resources/read', params: { uri: 'mem://readme' } },
      { method: 'prompts/get', params: { name: 'summarize', arguments: { topic: 'x' } } },
    ]);
  });

  it('completes a prompt argument through the server that owns the prompt, and nothing for an unknown prompt', async () => {
    const { gateway, connection } = setup();
    connection.answer = async () => ({ completion: { values: ['a'] } });
    await expect(
      gateway.complete(principal, {}, { ref: { type: 'ref/prompt', name: 'memory__summarize' }, argument: { name: 'topic', value: '' } }, undefined, ctx()),
    ).resolves.toEqual({
      kind: 'ok',
      result: { completion: { values: ['a'] } },
    });
    expect(connection.calls[0]).toEqual({
      method: 'completion/complete',
      params: { ref: { type: 'ref/prompt', name: 'summarize' }, argument: { name: 'topic', value: '' } },
    });
    await expect(
      gateway.complete(principal, {}, { ref: { type: 'ref/prompt', name: 'memory__nope' }, argument: { name: 'x', value: '' } }, undefined, ctx()),
    ).resolves.toMatchObject({
      kind: 'denied',
      code: 'unknown_prompt',
    });
    expect(connection.calls).toHaveLength(1);
  });

  // Issue 12, finding 3: completions carry argument text upstream, so they pass the chain like calls.
  it('audits a completion, attempt and outcome, with the digest of the text sent', async () => {
    const { gateway, audit } = setup();
    await gateway.complete(
      principal,
      {},
      { ref: { type: 'ref/prompt', name: 'memory__summarize' }, argument: { name: 'topic', value: 'sec' } },
      undefined,
      ctx(),
    );
    expect(audit.map((r) => [r.type, r.kind, r.server, r.name, r.detail])).toEqual([
      ['call.attempt', 'prompt', 'memory', 'summarize', { operation: 'complete' }],
      ['call.outcome', 'prompt', 'memory', 'summarize', { operation: 'complete' }],
    ]);
    expect(audit[0]!.argsDigest).toMatch(/^sha256:/);
    expect(audit[1]).toMatchObject({ decision: 'ok', policyMode: 'unmanaged' });
  });

  it('refuses a completion from a revoked client or a signed-out user at the identity stage, and sends nothing upstream', async () => {
    const refused: Admission = { ok: false, code: 'unauthenticated', reason: 'the credential of client "cursor" was revoked' };
    const { gateway, connection, audit } = setup({ identity: { verify: () => refused } });
    const outcome = await gateway.complete(
      principal,
      {},
      { ref: { type: 'ref/prompt', name: 'memory__summarize' }, argument: { name: 'topic', value: 'secret text' } },
      undefined,
      ctx(),
    );
    expect(outcome).toMatchObject({ kind: 'denied', stage: 'identity', code: 'unauthenticated' });
    expect(connection.calls).toEqual([]);
    expect(audit.at(-1)).toMatchObject({ type: 'call.outcome', decision: 'denied', stage: 'identity' });
  });

  it('limits completions per client session, saying when to retry', async () => {
    const { gateway, connection } = setup();
    connection.answer = async () => ({ completion: { values: [] } });
    const complete = () =>
      gateway.complete(principal, {}, { ref: { type: 'ref/prompt', name: 'memory__summarize' }, argument: { name: 'topic', value: 'x' } }, undefined, ctx());
    const outcomes = [];
    for (let i = 0; i < 45; i++) outcomes.push(await complete());
    expect(outcomes.filter((o) => o.kind === 'ok')).toHaveLength(40);
    expect(outcomes.at(-1)).toMatchObject({ kind: 'denied', stage: 'quota', code: 'rate_limited', data: { retryAfterMs: expect.any(Number) } });
    expect(connection.calls).toHaveLength(40);
    // Another session is not held back by this one.
    const other: Principal = { ...principal, client: { ...principal.client } };
    await expect(
      gateway.complete(other, {}, { ref: { type: 'ref/prompt', name: 'memory__summarize' }, argument: { name: 'topic', value: 'x' } }, undefined, ctx()),
    ).resolves.toMatchObject({ kind: 'ok' });
  });

  it('decides a completion as the visibility of its item: no argument is judged, nothing is asked', async () => {
    const seen: string[] = [];
    const policy: PolicyPort = {
      mode: 'managed',
      version: '3',
      visible: (_p, _s, kind, name) => (seen.push(`${kind}:${name}`), true),
      decide: () => ({ allow: false, reason: 'decide must not be asked about a completion', policyIds: [] }),
    };
    const { gateway } = setup({ policy });
    await expect(
      gateway.complete(principal, {}, { ref: { type: 'ref/prompt', name: 'memory__summarize' }, argument: { name: 'topic', value: 'x' } }, undefined, ctx()),
    ).resolves.toMatchObject({ kind: 'ok' });
    expect(seen).toContain('prompt:summarize');
  });
});

describe('the gateway when Gatehouse stops', () => {
  it('cancels a call in flight upstream and answers it, audited, as a server that is unavailable, saying why', async () => {
    const { gateway, connection, audit } = setup();
    // The connection gives up when its stop signal is aborted, as a real one does (it also tells the server).
    connection.answer = (_m, _p, options) =>
      new Promise((_resolve, reject) => options.stop?.addEventListener('abort', () => reject(new Error('cancelled upstream')), { once: true }));
    const call = gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    await new Promise((resolve) => setImmediate(resolve));
    await gateway.stop('Gatehouse is stopping', 5_000);
    const outcome = await call;
    expect(outcome).toEqual({
      kind: 'denied',
      stage: 'upstream',
      code: 'server_unavailable',
      reason: 'Gatehouse is stopping: the call was cancelled before "memory" answered',
    });
    expect(audit.at(-1)).toMatchObject({
      type: 'call.outcome',
      decision: 'denied',
      code: 'server_unavailable',
      reason: outcome.kind === 'denied' ? outcome.reason : '',
    });
  });

  it('sends nothing upstream once stopped, and answers why', async () => {
    const { gateway, connection } = setup();
    await gateway.stop('Gatehouse is stopping', 5_000);
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'denied', code: 'server_unavailable', reason: 'Gatehouse is stopping: the call was not sent to "memory"' });
    expect(connection.calls).toEqual([]);
  });

  it('waits for calls in flight to be answered, and no longer than it is given for one that never ends', async () => {
    const { gateway, connection } = setup();
    // A connection that ignores the stop signal (a call held by something other than its server).
    connection.answer = () => new Promise(() => undefined);
    void gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    await new Promise((resolve) => setImmediate(resolve));
    vi.useFakeTimers();
    try {
      let stopped = false;
      void gateway.stop('Gatehouse is stopping', 2_000).then(() => (stopped = true));
      await vi.advanceTimersByTimeAsync(1_999);
      expect(stopped).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(stopped).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a remote server waiting for the user to sign in', () => {
  const waiting = (server: string) => (server === 'notes' ? 'server "notes" needs you to sign in: run `gatehouse servers login notes`' : undefined);

  it('tells a caller of one of its tools to sign in, naming the command, and audits the call', async () => {
    const offered: string[] = [];
    const { gateway, audit, connection } = setup({ onSignInNeeded: (server, p) => offered.push(`${server} for ${p.client.name}`) }, waiting);
    const outcome = await gateway.callTool(principal, {}, 'notes__read_notes', {}, undefined, ctx());
    expect(outcome).toEqual({
      kind: 'denied',
      stage: 'upstream',
      code: 'sign_in_required',
      reason: 'server "notes" needs you to sign in: run `gatehouse servers login notes`',
    });
    expect(connection.calls).toEqual([]);
    expect(audit.map((r) => [r.type, r.server, r.name, r.code])).toEqual([
      ['call.attempt', 'notes', 'read_notes', undefined],
      ['call.outcome', 'notes', 'read_notes', 'sign_in_required'],
    ]);
    // The human channel may offer the sign-in to the person.
    expect(offered).toEqual(['notes for cursor']);
  });

  it("answers the same in the server's own view, and for prompts", async () => {
    const { gateway } = setup({}, waiting);
    expect(await gateway.callTool(principal, { server: 'notes' }, 'read_notes', {}, undefined, ctx())).toMatchObject({ code: 'sign_in_required' });
    expect(await gateway.getPrompt(principal, {}, 'notes__summary', {}, undefined, ctx())).toMatchObject({ code: 'sign_in_required' });
  });

  it('gives a tool the policy hides the unknown-tool answer, waiting server or not', async () => {
    const hiding: PolicyPort = {
      mode: 'managed',
      version: '1',
      visible: (_p, server, _k, name, options) => !(server === 'notes' && name === 'secret_tool' && options?.unlisted),
      decide: () => new UnmanagedPolicy().decide(),
    };
    const { gateway } = setup({ policy: hiding }, waiting);
    expect(await gateway.callTool(principal, {}, 'notes__secret_tool', {}, undefined, ctx())).toMatchObject({ code: 'unknown_tool' });
    expect(await gateway.callTool(principal, {}, 'notes__read_notes', {}, undefined, ctx())).toMatchObject({ code: 'sign_in_required' });
  });

  it('lets the identity stage refuse first a caller who may not call at all', async () => {
    const { gateway } = setup({ identity: { verify: () => ({ ok: false, code: 'unauthenticated', reason: 'not paired' }) } }, waiting);
    expect(await gateway.callTool(principal, {}, 'notes__read_notes', {}, undefined, ctx())).toMatchObject({ stage: 'identity', code: 'unauthenticated' });
  });

  it('turns a sign-in refused during a call into the same denial, and records whose sign-in the call carried', async () => {
    const offered: string[] = [];
    const { gateway, audit, connection } = setup({ onSignInNeeded: (server) => offered.push(server) });
    connection.upstreamIdentity = () => ({ issuer: 'https://auth.example.com', subject: 'alice' });
    connection.answer = async () => {
      throw Object.assign(new Error('server "memory" needs you to sign in: run `gatehouse servers login memory`'), { code: 'sign_in_required' });
    };
    const outcome = await gateway.callTool(principal, {}, 'memory__read_graph', {}, undefined, ctx());
    expect(outcome).toMatchObject({ kind: 'denied', stage: 'upstream', code: 'sign_in_required' });
    expect(offered).toEqual(['memory']);
    expect(audit[1]).toMatchObject({ upstream: { issuer: 'https://auth.example.com', subject: 'alice' } });
  });
});
