/**
 * Pairing a bridge: `gatehouse connect` under a name Gatehouse does not know asks to pair; the
 * person answers on the question page (its address and code read off the daemon's terminal,
 * answered over HTTP as a browser would) and chooses the client's scope; the bridge keeps its credential in a real Secret
 * Service and presents it from then on. Effective rights are the user's intersected with the
 * client's scope, in lists and calls. Also: declining, nobody answering, the page's defences, and
 * revocation cutting off a live session and a stolen credential.
 */
import { execFile, spawnSync } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { KeychainSecretStore } from '../../src/node/keystore/keychain.js';
import { bridgeCredentialItem } from '../../src/node/identity/bridge-credentials.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { PagePerson } from '../support/screen.js';
import { CANARY_SERVER, answer, connectBridgeWith, startIdentityHome, type IdentityHome } from '../support/identity-home.js';
import { bridgeEnv, closeAll, runGatehouse, textOf } from './support/clients.js';
import { eventually } from './support/gatehouse.js';

let keyring: TestKeyring;
let gh: IdentityHome;
/** Whether this run can act as another local user (root, with runuser). */
const asAnotherUser = process.getuid?.() === 0 && spawnSync('runuser', ['--help']).status === 0;

const env = (extra: Record<string, string> = {}) => bridgeEnv(gh.env, { ...keyring.env, ...extra });
const opened: { close(): Promise<void> }[] = [];
/** A bridge as an IDE launches it, with the keyring the test runs. */
const bridge = async (client: string) => {
  const connected = await connectBridgeWith(env(), client);
  opened.push(connected);
  return connected;
};

beforeAll(async () => {
  if (!keyringAvailable()) throw new Error('gnome-keyring-daemon and dbus are needed (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  gh = await startIdentityHome({
    servers: { canary: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER] } },
    pairingDeadlineMs: 20_000,
    clients: { 'expired-agent': { expiresAt: new Date(Date.now() - 1000) } },
  });
  await eventually(() => gh.daemon.status().servers[0]?.state === 'ready', 20_000, 'the canary server');
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
  await keyring?.stop();
});
afterEach(async () => {
  await closeAll();
  await Promise.allSettled(opened.splice(0).map((c) => c.close()));
});

/** A bridge connects at once while pairing waits; a refusal reaches it on its next request (issue 11). */
async function refused(connecting: ReturnType<typeof bridge>, reason: RegExp): Promise<void> {
  const { client } = await connecting;
  await eventually(
    () =>
      client.listTools().then(
        () => false,
        (e: Error) => reason.test(e.message),
      ),
    10_000,
    `the refusal ${reason}`,
  );
}

const names = async (client: Awaited<ReturnType<typeof bridge>>['client']) => (await client.listTools()).tools.map((t) => t.name).sort();

describe('pairing a bridge', () => {
  it('asks the person, who pairs it read-only; the bridge keeps its credential in the keychain and is narrowed to read-only tools', async () => {
    const connecting = bridge('morning-briefing');
    const question = await gh.nextQuestion(/Pair the client "morning-briefing"/);
    const answered = await answer(question, { decision: 'approve', scope: 'read-only', expiry: '30' });
    expect(answered.status).toBe(200);
    // The page named the client and how it connects, offered its tools, and showed the code the bridge also shows.
    expect(answered.page).toContain('Pair the client &quot;morning-briefing&quot;?');
    expect(answered.page).toContain('gatehouse connect (the local socket)');
    expect(answered.page).toContain('value="canary__write"');
    expect(answered.page).toContain(question.clientCode!);
    const { client, stderr } = await connecting;
    expect(stderr()).toContain(`check that it shows the code ${question.clientCode}`);
    await eventually(
      () => stderr().includes('paired as "morning-briefing"; the credential is kept in the OS keychain (Secret Service'),
      10_000,
      'the bridge keeping its credential',
    );

    // Read-only: the unannotated and writing tools are neither listed nor callable.
    expect(await names(client)).toEqual(['canary__read']);
    expect(textOf(await client.callTool({ name: 'canary__read', arguments: {} }))).toBe('read ok');
    await expect(client.callTool({ name: 'canary__write', arguments: {} })).rejects.toThrow(/Unknown tool: canary__write/);

    // The credential is in the keychain (not in any file), and the registry keeps only its hash, scope and expiry.
    const kept = await new KeychainSecretStore().get(bridgeCredentialItem(gh.paths.socketPath, 'morning-briefing'));
    expect(kept?.unwrap()).toMatch(/^ghc_/);
    const record = new ClientRegistry(join(gh.paths.stateDir, 'clients.json')).list().find((r) => r.name === 'morning-briefing')!;
    expect(record).toMatchObject({ scope: { kind: 'read-only' }, via: 'socket' });
    expect(JSON.stringify(record)).not.toContain(kept!.unwrap());
    expect(Date.parse(record.expiresAt!) - Date.now()).toBeGreaterThan(29 * 86_400_000);

    // The next launch presents the kept credential: no question.
    const before = gh.questions.length;
    const again = await bridge('morning-briefing');
    expect(await names(again.client)).toEqual(['canary__read']);
    expect(gh.questions.length).toBe(before);
  });

  it('pairs for listed tools only', async () => {
    const connecting = bridge('echo-agent');
    const question = await gh.nextQuestion(/"echo-agent"/);
    expect((await answer(question, { decision: 'approve', scope: 'listed', tool: 'canary__echo', expiry: '1' })).status).toBe(200);
    const { client, stderr } = await connecting;
    await eventually(() => stderr().includes('paired as "echo-agent"'), 10_000, 'pairing to complete');
    expect(await names(client)).toEqual(['canary__echo']);
    expect(textOf(await client.callTool({ name: 'canary__echo', arguments: { message: 'hi' } }))).toBe('hi');
  });

  it('refuses the bridge when the person declines, with the reason on its stderr and on the next request', async () => {
    const connecting = bridge('unwanted');
    await answer(await gh.nextQuestion(/"unwanted"/), { decision: 'decline' });
    const { client, stderr } = await connecting;
    await eventually(() => stderr().includes('gatehouse connect: the person at this computer declined to pair "unwanted"'), 10_000, 'the refusal on stderr');
    await expect(client.listTools()).rejects.toThrow('the person at this computer declined to pair "unwanted"');
  });

  it('refuses a form that names a server or tool that was not offered', async () => {
    const connecting = bridge('greedy');
    const person = new PagePerson(await gh.nextQuestion(/"greedy"/));
    expect(await person.open()).toBe(200);
    const result = await person.post({ decision: 'approve', scope: 'listed', tool: 'other__secret_tool', expiry: '1' });
    expect(result.status).toBe(400);
    expect(result.body).toContain('the answer names a server or tool that was not offered');
    // Still waiting: the person answers properly on the same page.
    expect((await person.decline()).status).toBe(200);
    await refused(connecting, /declined to pair "greedy"/);
  });

  it('refuses a client name that has a credential but comes without it, and an expired credential', async () => {
    // Without the keyring (a bus that is not there) the bridge finds no kept credential, and the daemon will not pair a paired name again.
    const run = await runGatehouse(
      ['connect', '--client', 'morning-briefing'],
      bridgeEnv(gh.env, { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' }),
      15_000,
    );
    expect(run.stderr).toMatch(/client "morning-briefing" has a credential, but this bridge did not present it/);
    const expired = new ClientRegistry(join(gh.paths.stateDir, 'clients.json')).list().find((r) => r.name === 'expired-agent')!;
    expect(expired.expiresAt).toBeDefined();
    expect(gh.tokens['expired-agent']).toMatch(/^ghc_/);
    const stale = await runGatehouse(['connect', '--client', 'expired-agent'], env({ GATEHOUSE_CLIENT_TOKEN: gh.tokens['expired-agent']! }));
    expect(stale.stderr).toMatch(/the credential of client "expired-agent" expired at .*; revoke it/);
  });

  it('revocation cuts off the live session at its next call, and the stolen credential is refused from then on', async () => {
    const connecting = bridge('soon-revoked');
    await answer(await gh.nextQuestion(/"soon-revoked"/), { decision: 'approve', scope: 'all', expiry: '1' });
    const { client } = await connecting;
    expect(textOf(await client.callTool({ name: 'canary__echo', arguments: { message: 'before' } }))).toBe('before');
    const stolen = (await new KeychainSecretStore().get(bridgeCredentialItem(gh.paths.socketPath, 'soon-revoked')))!.unwrap();

    const revoke = await runGatehouse(['clients', 'revoke', 'soon-revoked'], env());
    expect(revoke).toMatchObject({ code: 0, stdout: 'revoked "soon-revoked"\n' });
    // Revocation ends the live session at once (issue 17): the daemon closes its line, so the next call fails.
    await expect(client.callTool({ name: 'canary__echo', arguments: { message: 'after' } })).rejects.toThrow();

    const reuse = await runGatehouse(['connect', '--client', 'soon-revoked'], env({ GATEHOUSE_CLIENT_TOKEN: stolen }));
    expect(reuse.code).toBe(1);
    expect(reuse.stderr).toMatch(/Gatehouse refused the connection: wrong or revoked client credential/);
    const elsewhere = await fetch(`${gh.daemon.httpUrl}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stolen}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(elsewhere.status).toBe(401);
  });

  it('lists paired clients with their scope, expiry and last use', async () => {
    const run = await runGatehouse(['clients', 'list', '--json'], env());
    const list = JSON.parse(run.stdout) as { name: string; scope: string; expiresAt: string | null; lastSeen: string | null; expired: boolean }[];
    expect(list.find((c) => c.name === 'morning-briefing')).toMatchObject({ scope: 'read-only', expired: false, lastSeen: expect.any(String) });
    expect(list.find((c) => c.name === 'echo-agent')).toMatchObject({ scope: 'canary__echo' });
    expect(list.find((c) => c.name === 'expired-agent')).toMatchObject({ expired: true });
  });
});

describe('consent only in the human channel', () => {
  it('offers no command and no control request that grants a credential', async () => {
    const add = await runGatehouse(['clients', 'add', 'sneaky'], env());
    expect(add.code).toBe(2);
    expect(add.stderr).toMatch(/^gatehouse clients: `gatehouse clients add` is gone: clients are paired with your consent on the pairing page/);
    await expect(callControl(gh.paths.controlSocketPath, 'pairing.answer' as 'status', {})).rejects.toThrow(/unknown|method/i);
  });

  it('a question page refuses: the question without the code, wrong codes, a form without its token, a foreign Origin, a foreign Host', async () => {
    const connecting = bridge('page-test');
    const question = await gh.nextQuestion(/"page-test"/);
    const url = new URL(question.url!);
    // Opened without the code, the page asks for it and shows nothing of the question.
    const bare = await fetch(url);
    expect(bare.status).toBe(200);
    expect(bare.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const bareText = await bare.text();
    expect(bareText).toContain('name="code"');
    expect(bareText).not.toContain('page-test');
    // A DNS-rebinding page reaches 127.0.0.1 under its own host name.
    const rebinding = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: Number(url.port), path: url.pathname, headers: { host: `evil.example:${url.port}` } }, (res) =>
          resolve(res.statusCode ?? 0),
        )
        .on('error', reject);
    });
    expect(rebinding).toBe(403);
    const post = (fields: Record<string, string>, origin = url.origin) =>
      fetch(url, { method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded', origin } });
    expect((await post({ code: '0000-0000' })).status).toBe(403);
    expect((await post({ code: question.pageCode! }, 'https://evil.example')).status).toBe(403);
    expect((await post({ form: 'A'.repeat(32), decision: 'approve', scope: 'all', expiry: '1' })).status).toBe(403);
    // Nothing was approved by any of that; the person types the code and declines.
    expect((await answer(question, { decision: 'decline' })).status).toBe(200);
    await refused(connecting, /declined/);
  });

  it("locks a question's page after five wrong codes, says so on the terminal, and the terminal still answers", async () => {
    const connecting = bridge('guessed-at');
    const question = await gh.nextQuestion(/"guessed-at"/);
    for (let i = 0; i < 5; i++) {
      const wrong = await fetch(question.url!, { method: 'POST', body: `code=0000-000${i}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(wrong.status).toBe(403);
    }
    // The right code no longer opens it.
    expect((await answer(question, { decision: 'approve', scope: 'all', expiry: '1' })).status).toBe(403);
    expect(gh.screen.text).toMatch(new RegExp(`too many wrong codes were typed on the page of question \\[${question.number}\\]`));
    gh.screen.type(`${question.number} d`);
    await refused(connecting, /declined to pair "guessed-at"/);
  });

  // Needs root and runuser to act as another local user; CI names it as skipped (not passed) elsewhere.
  it.skipIf(!asAnotherUser)('refuses another local user who has the address and the code', async () => {
    const connecting = bridge('other-user-test');
    const question = await gh.nextQuestion(/"other-user-test"/);
    const script = `fetch(${JSON.stringify(question.url)}, { method: 'POST', body: 'code=${question.pageCode}', headers: { 'content-type': 'application/x-www-form-urlencoded' } }).then((r) => console.log(r.status))`;
    // Asynchronously: the daemon under test answers from this same process.
    const asNobody = await new Promise<string>((resolve, reject) => {
      execFile('runuser', ['-u', 'nobody', '--', process.execPath, '-e', script], { timeout: 15_000 }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
    });
    expect(asNobody.trim()).toBe('403');
    // Nothing was spent: the person can still answer.
    expect((await answer(question, { decision: 'decline' })).status).toBe(200);
    const { stderr } = await connecting;
    await eventually(() => stderr().includes('declined'), 10_000, 'the refusal');
  });

  it('refuses when nobody answers before the deadline', async () => {
    const short = await startIdentityHome({ pairingDeadlineMs: 1500 });
    try {
      const { client, stderr } = await connectBridgeWith(bridgeEnv(short.env, keyring.env), 'patient');
      opened.push({ close: () => client.close() });
      await eventually(() => stderr().includes('nobody answered the pairing request for "patient" within 2 s'), 10_000, 'the expiry on stderr');
      await expect(client.listTools()).rejects.toThrow(/nobody answered the pairing request for "patient" within 2 s/);
      // The question is gone from the page once it expired.
      const gone = await fetch(short.questions[0]!.url!, { redirect: 'manual' });
      expect(gone.status).toBe(404);
    } finally {
      await short.stop();
    }
  });
});
