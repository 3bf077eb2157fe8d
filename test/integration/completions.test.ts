/**
 * `completion/complete` through the chain, against the real server-everything (issue 12, finding 3):
 * completions of a visible prompt and of a visible resource template reach their server on every
 * endpoint, era and view, and each is on the audit record; a revoked client and a signed-out user
 * are refused at the identity stage, and their text never reaches the server.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { CLIENT_ID, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { startIdentityHome, type IdentityHome } from '../support/identity-home.js';
import { EVERYTHING } from '../support/servers.js';
import { auditEvents, errorOf } from './support/approvals.js';
import { closeAll, connectBridge, connectHttp, ERAS, type Connected } from './support/clients.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const EVERYTHING_SERVER = { everything: { type: 'stdio' as const, command: process.execPath, args: [EVERYTHING(), 'stdio'] } };
const DEPARTMENT = { argument: { name: 'department', value: 'S' } };
const TEMPLATE = { ref: { type: 'ref/resource' as const, uri: 'demo://resource/dynamic/text/{resourceId}' }, argument: { name: 'resourceId', value: '4' } };

let gh: RunningGatehouse;
beforeAll(async () => {
  gh = await startGatehouse({ servers: EVERYTHING_SERVER, clients: ['ide', 'doomed'] });
  await eventually(async () => (await gh.status()).servers.every((s) => s.state === 'ready'), 30_000, 'server-everything');
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
});
afterEach(closeAll);

const completions = () => auditEvents(gh.paths, 'call.outcome').filter((e) => (e.detail as { operation?: string } | undefined)?.operation === 'complete');

describe('completions of visible items', () => {
  for (const via of ['bridge', 'http'] as const) {
    for (const era of ERAS) {
      for (const server of [undefined, 'everything']) {
        it(`reach server-everything and are audited (${via}, ${era}, ${server ? 'one server' : 'aggregate'})`, async () => {
          const options = { era, token: gh.tokens.ide! };
          const connected: Connected =
            via === 'bridge'
              ? await connectBridge(gh.env, { ...options, client: 'ide', ...(server ? { server } : {}) })
              : await connectHttp(gh.httpUrl, { ...options, ...(server ? { path: `/mcp/${server}` } : {}) });
          const before = completions().length;
          const prompt = server ? 'completable-prompt' : 'everything__completable-prompt';
          const departments = await connected.client.complete({ ref: { type: 'ref/prompt', name: prompt }, ...DEPARTMENT });
          expect(departments.completion.values.sort()).toEqual(['Sales', 'Support']);
          const ids = await connected.client.complete(TEMPLATE);
          expect(ids.completion.values).toEqual(['4']);
          const audited = completions().slice(before);
          expect(audited.map((e) => [e.kind, e.server, e.name, e.decision])).toEqual([
            ['prompt', 'everything', 'completable-prompt', 'ok'],
            ['resource', 'everything', 'demo://resource/dynamic/text/{resourceId}', 'ok'],
          ]);
        });
      }
    }
  }
});

describe('completions from someone who may not act', () => {
  it('sends nothing upstream for a revoked client: its live session ends at once, and its credential is refused after', async () => {
    const { client } = await connectBridge(gh.env, { era: 'legacy', client: 'doomed', token: gh.tokens.doomed! });
    await client.complete({ ref: { type: 'ref/prompt', name: 'everything__completable-prompt' }, ...DEPARTMENT });
    const before = completions().length;
    new ClientRegistry(join(gh.paths.stateDir, 'clients.json')).revoke('doomed');
    await callControl(gh.paths.controlSocketPath, 'clients.reload', {});
    const refused = await errorOf(
      client.complete(
        { ref: { type: 'ref/prompt', name: 'everything__completable-prompt' }, argument: { name: 'department', value: 'typed after revocation' } },
        { timeout: 10_000 },
      ),
    );
    expect(refused.message).not.toBe('no error');
    // Nothing reached the chain, let alone the server: the session was gone before the request.
    expect(
      completions()
        .slice(before)
        .filter((e) => e.decision !== 'denied'),
    ).toEqual([]);
    await expect(connectBridge(gh.env, { era: 'legacy', client: 'doomed', token: gh.tokens.doomed! })).rejects.toThrow(/wrong or revoked client credential/);
  });
});

describe('completions while nobody is signed in', () => {
  let idp: TestProvider;
  let home: IdentityHome;
  beforeAll(async () => {
    idp = await startProvider();
    home = await startIdentityHome({
      servers: EVERYTHING_SERVER,
      identity: { issuer: idp.issuer, clientId: CLIENT_ID },
      clients: { ide: {} },
    });
    await eventually(() => home.daemon.status().servers.every((s) => s.state === 'ready'), 30_000, 'server-everything');
  });
  afterAll(async () => {
    await home?.stop();
    await idp?.stop();
    if (home) rmSync(home.home, { recursive: true, force: true });
  });

  it('refuses them with the reason and the command, and sends nothing upstream', async () => {
    const { client } = await connectHttp(home.daemon.httpUrl!, { era: 'legacy', token: home.tokens.ide! });
    const refused = await errorOf(client.complete({ ref: { type: 'ref/prompt', name: 'everything__completable-prompt' }, ...DEPARTMENT }));
    expect(refused.message).toMatch(/you are not signed in to .*gatehouse login/);
    expect(auditEvents(home.paths, 'call.outcome').at(-1)).toMatchObject({
      kind: 'prompt',
      decision: 'denied',
      stage: 'identity',
      detail: { operation: 'complete' },
    });
  });
});
