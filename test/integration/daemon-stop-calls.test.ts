/**
 * A call in flight when the daemon stops (the person quits it, a service manager sends SIGTERM):
 * its client is answered at once, on every endpoint and in both protocol eras, with why, and the
 * audit log holds its outcome. (That the server is told to cancel it: test/unit/direct-requests.test.ts
 * and gateway.test.ts.) Before, over HTTP, a call with nothing
 * written yet had its connection cut without an answer, and one whose event stream had started
 * waited for the client's own timeout (60 s by default).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RpcErrorCode } from '../../src/common/errors.js';
import { auditEvents, errorOf } from './support/approvals.js';
import { closeAll, connectBridge, connectHttp, newClient, textOf, type Era } from './support/clients.js';
import { countSdkToolCalls, nameForSdkPath, SERVERS } from './support/direct-call-cases.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { startRemoteFixture } from './support/remote-server.js';

type Endpoint = 'bridge' | 'http' | 'http, the SDK path';

const running: RunningGatehouse[] = [];
const children: ChildProcessWithoutNullStreams[] = [];
afterEach(async () => {
  await closeAll();
  for (const gh of running.splice(0)) await gh.stop().catch(() => undefined);
  for (const child of children.splice(0)) child.kill();
});

/** A 2026-07-28 HTTP client whose tools/call requests go through the SDK's handler (`nameForSdkPath`). */
async function modernClientOnSdkPath(gh: RunningGatehouse): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${gh.httpUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${gh.tokens.ide}` } },
    fetch: (url, init) => {
      const headers = new Headers(init?.headers);
      const name = headers.get('mcp-name');
      if (name) headers.set('mcp-name', nameForSdkPath(name));
      return fetch(url, { ...init, headers });
    },
  });
  const client = newClient({ era: 'modern' });
  await client.connect(transport, { timeout: 15_000 });
  return client;
}

async function clientFor(gh: RunningGatehouse, endpoint: Endpoint, era: Era): Promise<Client> {
  if (endpoint === 'bridge') return (await connectBridge(gh.env, { era, client: 'ide', token: gh.tokens.ide! })).client;
  if (endpoint === 'http') return (await connectHttp(gh.httpUrl, { era, token: gh.tokens.ide! })).client;
  return modernClientOnSdkPath(gh);
}

const CASES: [Endpoint, Era, 'before anything was written' | 'with its progress under way'][] = [];
for (const [endpoint, era] of [
  ['bridge', 'legacy'],
  ['bridge', 'modern'],
  ['http', 'legacy'],
  ['http', 'modern'],
  ['http, the SDK path', 'modern'],
] as const) {
  for (const when of ['before anything was written', 'with its progress under way'] as const) CASES.push([endpoint, era, when]);
}

describe('a call in flight when the daemon stops', () => {
  it.each(CASES)('is answered over the %s (%s era) %s, with why, and its outcome is audited', async (endpoint, era, when) => {
    const gh = await startGatehouse({ servers: { lab: SERVERS.lab! }, clients: ['ide', 'watcher'] });
    running.push(gh);
    const client = await clientFor(gh, endpoint, era);
    // Another client asks the lab server what it has seen: the waiting call's own client would hold the server kept for it.
    const watcher = (await connectBridge(gh.env, { era: 'legacy', client: 'watcher', token: gh.tokens.watcher! })).client;
    const stats = async () => JSON.parse(textOf(await watcher.callTool({ name: 'lab__stats', arguments: {} }))) as { started: number; cancelled: number };
    // On the 2026-07-28 direct path, a server the SDK's handler has bound serves the call: one call binds it.
    await client.callTool({ name: 'lab__stats', arguments: {} });

    const progress = when === 'with its progress under way';
    let progressed!: () => void;
    const underWay = new Promise<void>((resolve) => (progressed = resolve));
    const sdkCalls = countSdkToolCalls();
    try {
      const call = client.callTool({ name: 'lab__wait', arguments: {} }, { timeout: 60_000, ...(progress ? { onprogress: () => progressed() } : {}) });
      const answer = errorOf(call);
      if (progress) {
        await underWay;
        // Which HTTP path served the call, now that nothing else has called a tool.
        if (endpoint === 'http, the SDK path') expect(sdkCalls.count()).toBe(1);
        if (endpoint === 'http' && era === 'modern') expect(sdkCalls.count()).toBe(0);
      } else {
        await eventually(async () => (await stats()).started === 1, 10_000, 'the call to run upstream');
      }
      const cancelledBefore = (await stats()).cancelled;

      // Kept for the audit log, which stop() would remove with the home.
      const home = gh.home;
      running.splice(running.indexOf(gh), 1);
      const stopped = gh.stop({ keepHome: true });
      const error = await answer;
      await stopped;
      try {
        expect(error.code).toBe(RpcErrorCode.ServerUnavailable);
        expect(error.message).toContain('Gatehouse is stopping: the call was cancelled before "lab" answered');
        expect(cancelledBefore).toBe(0);
        const outcome = auditEvents(gh.paths, 'call.outcome').find((e) => e.name === 'wait');
        expect(outcome).toMatchObject({ client: 'ide', server: 'lab', decision: 'denied', stage: 'upstream', code: 'server_unavailable' });
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    } finally {
      sdkCalls.restore();
    }
  });

  it('to a remote server (Streamable HTTP) is ended there, and answered with why', async () => {
    const remote = await startRemoteFixture(0);
    children.push(remote.child);
    const url = remote.url;
    const gh = await startGatehouse({ servers: { remote: { type: 'http', url } }, clients: ['ide'] });
    running.push(gh);
    const { client } = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
    const answer = errorOf(client.callTool({ name: 'remote__wait', arguments: {} }, { timeout: 60_000 }));
    await eventually(() => remote.stderr().includes('wait started'), 10_000, 'the call to run on the remote server');
    running.splice(running.indexOf(gh), 1);
    await gh.stop();
    const error = await answer;
    expect(error.code).toBe(RpcErrorCode.ServerUnavailable);
    expect(error.message).toContain('Gatehouse is stopping: the call was cancelled before "remote" answered');
    // Its request there is cancelled: by the cancellation Gatehouse sends, or by its closed stream if that comes first.
    await eventually(() => remote.stderr().includes('wait cancelled: '), 10_000, `the remote server to end the call:\n${remote.stderr()}`);
  });
});
