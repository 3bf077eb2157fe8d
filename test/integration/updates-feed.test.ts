/**
 * The desktop app's updates (issue 17), against an update feed served on loopback exactly as
 * electron-builder lays one out (`latest-linux.yml`, the installer) plus the organisation's
 * detached signature (`latest-linux.yml.sig`, made with the openssl command docs/deploy.md gives).
 * The gate (main/updates.ts) decides; electron-updater itself (its DebUpdater, with the verified
 * provider of main/update-provider.ts) then downloads and checks the file. Electron's own network
 * client cannot run here, so electron-updater downloads through Node's http client instead.
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type ClientRequest, type IncomingMessage, type RequestOptions, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpExecutor, configureRequestOptions, configureRequestUrl, type DownloadOptions } from 'builder-util-runtime';
import { DebUpdater } from 'electron-updater';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifiedFeedProvider } from '../../main/update-provider.js';
import { UpdateGate, compareVersions, fetchFeed, readUpdateSettings, type UpdateSettings } from '../../main/updates.js';

const DAY = 86_400_000;
let dir: string;
let server: Server;
let base: string;
const files = new Map<string, Buffer>();
let orgKey: { privateKey: KeyObject; publicKey: KeyObject };
let strangerKey: { privateKey: KeyObject; publicKey: KeyObject };
const installer = Buffer.from('a .deb standing for Gatehouse 1.3.0: real bytes, a real digest\n'.repeat(400));
const sha512 = (data: Buffer) => createHash('sha512').update(data).digest('base64');

function manifest(version: string, releaseDate: string, digest = sha512(installer)): string {
  return [
    `version: ${version}`,
    'files:',
    `  - url: gatehouse_${version}_amd64.deb`,
    `    sha512: ${digest}`,
    `    size: ${installer.length}`,
    `path: gatehouse_${version}_amd64.deb`,
    `sha512: ${digest}`,
    `releaseDate: '${releaseDate}'`,
    '',
  ].join('\n');
}

/** Publishes a channel file and its signature on the feed, as the release job does. */
function publish(feed: string, yml: string, key: KeyObject | null = orgKey.privateKey): void {
  files.set(`/${feed}/latest-linux.yml`, Buffer.from(yml));
  if (key) files.set(`/${feed}/latest-linux.yml.sig`, Buffer.from(sign(null, Buffer.from(yml), key).toString('base64') + '\n'));
  else files.delete(`/${feed}/latest-linux.yml.sig`);
  files.set(`/${feed}/gatehouse_1.3.0_amd64.deb`, installer);
}

function settings(feed: string, extra: Partial<UpdateSettings> = {}): UpdateSettings {
  return { url: new URL(`${base}/${feed}/`), keys: [orgKey.publicKey], channel: 'latest', deferDays: 0, checkMs: 3_600_000, ...extra };
}

const gate = (feed: string, extra: Partial<UpdateSettings> = {}, current = '1.2.0', now = Date.now()) =>
  new UpdateGate(settings(feed, extra), { current, platform: 'linux', arch: 'x64', feed: fetchFeed(), now: () => now });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-updates-'));
  orgKey = generateKeyPairSync('ed25519');
  strangerKey = generateKeyPairSync('ed25519');
  server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('versions', () => {
  it('orders versions as semantic versions, pre-releases before their release', () => {
    expect(compareVersions('1.10.0', '1.9.9')).toBe(1);
    expect(compareVersions('1.2.0', '1.2.0')).toBe(0);
    expect(compareVersions('1.3.0-beta.2', '1.3.0')).toBe(-1);
    expect(compareVersions('1.3.0-beta.10', '1.3.0-beta.2')).toBe(1);
    expect(compareVersions('2.0.0-rc.1', '1.99.99')).toBe(1);
    expect(() => compareVersions('1.2', '1.2.0')).toThrow(/not a version/);
  });
});

describe('the update gate against a feed on loopback', () => {
  it('offers a newer signed version, and nothing when the feed offers the running one or an older one (no downgrade, no replay)', async () => {
    publish('newer', manifest('1.3.0', new Date(Date.now() - 3 * DAY).toISOString()));
    expect(await gate('newer').check()).toMatchObject({ kind: 'available', version: '1.3.0' });
    expect(await gate('newer', {}, '1.3.0').check()).toEqual({ kind: 'current', latest: '1.3.0' });
    expect(await gate('newer', {}, '1.4.0-beta.1').check()).toEqual({ kind: 'current', latest: '1.3.0' });
  });

  it('refuses a feed signed by a key the organisation does not trust, altered after signing, or not signed at all', async () => {
    publish('stranger', manifest('1.3.0', new Date(Date.now() - 3 * DAY).toISOString()), strangerKey.privateKey);
    expect(await gate('stranger').check()).toMatchObject({ kind: 'refused', code: 'bad_signature' });

    const yml = manifest('1.3.0', new Date(Date.now() - 3 * DAY).toISOString());
    publish('altered', yml);
    // The installer's digest swapped for another file's after signing.
    files.set('/altered/latest-linux.yml', Buffer.from(yml.replaceAll(sha512(installer), sha512(Buffer.from('another installer')))));
    const altered = gate('altered');
    expect(await altered.check()).toMatchObject({ kind: 'refused', code: 'bad_signature' });
    expect(altered.verifiedInfo()).toBeUndefined();

    publish('unsigned', manifest('1.3.0', new Date(Date.now() - 3 * DAY).toISOString()), null);
    expect(await gate('unsigned').check()).toMatchObject({ kind: 'refused', code: 'unsigned' });

    files.set('/huge/latest-linux.yml', Buffer.alloc(200_000, 0x61));
    files.set('/huge/latest-linux.yml.sig', Buffer.from('x'));
    expect(await gate('huge').check()).toMatchObject({ kind: 'refused', code: 'too_large' });

    publish('garbage', 'version: [not, a, version]\n');
    expect(await gate('garbage').check()).toMatchObject({ kind: 'refused', code: 'malformed' });
  });

  it('honours a deferral: a release younger than the deferral waits, and is offered once it is old enough', async () => {
    const released = Date.now() - 2 * DAY;
    publish('deferred', manifest('1.3.0', new Date(released).toISOString()));
    const held = await gate('deferred', { deferDays: 7 }).check();
    expect(held).toEqual({
      kind: 'held',
      version: '1.3.0',
      reason: 'your organisation defers updates by 7 days',
      until: new Date(released + 7 * DAY).toISOString(),
    });
    expect(await gate('deferred', { deferDays: 7 }, '1.2.0', released + 7 * DAY + 1000).check()).toMatchObject({ kind: 'available', version: '1.3.0' });
    expect(await gate('deferred', { deferDays: 1 }).check()).toMatchObject({ kind: 'available' });
  });

  it('honours a pin: only the pinned version is offered', async () => {
    publish('pinned', manifest('1.3.0', new Date(Date.now() - 30 * DAY).toISOString()));
    expect(await gate('pinned', { pin: '1.2.5' }).check()).toEqual({ kind: 'held', version: '1.3.0', reason: 'your organisation pins Gatehouse to 1.2.5' });
    expect(await gate('pinned', { pin: '1.3.0' }).check()).toMatchObject({ kind: 'available', version: '1.3.0' });
  });

  it('accepts a feed signed with the openssl command of docs/deploy.md, with the key `gatehouse policy keygen` makes', async () => {
    const keys = join(dir, 'keys');
    mkdirSync(keys);
    writeFileSync(join(keys, 'updates.key'), orgKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    const yml = manifest('1.3.0', new Date(Date.now() - 3 * DAY).toISOString());
    writeFileSync(join(keys, 'latest-linux.yml'), yml);
    // As in docs/deploy.md, "Signing the update feed".
    execFileSync('sh', ['-c', 'openssl pkeyutl -sign -rawin -inkey updates.key -in latest-linux.yml | base64 -w0 > latest-linux.yml.sig'], { cwd: keys });
    files.set('/openssl/latest-linux.yml', Buffer.from(yml));
    files.set('/openssl/latest-linux.yml.sig', readFileSync(join(keys, 'latest-linux.yml.sig')));
    expect(await gate('openssl').check()).toMatchObject({ kind: 'available', version: '1.3.0' });
  });
});

describe('the managed update settings', () => {
  it('reads updates.json with its trusted keys, and refuses a plain-http feed, a path for a key and a file a user could have written', () => {
    const managed = join(dir, 'managed');
    mkdirSync(managed);
    writeFileSync(join(managed, 'updates.pub'), orgKey.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const write = (value: unknown) => writeFileSync(join(managed, 'updates.json'), JSON.stringify(value));
    write({ url: 'https://updates.example.com/gatehouse', trust: ['updates.pub'], deferDays: 7, pin: '1.3.0' });
    const ok = readUpdateSettings(managed, 'linux', { trustOwner: true });
    expect(ok).toMatchObject({ kind: 'ok', settings: { channel: 'latest', deferDays: 7, pin: '1.3.0', checkMs: 6 * 3_600_000 } });
    expect(ok.kind === 'ok' && ok.settings.url.href).toBe('https://updates.example.com/gatehouse/');
    write({ url: 'http://updates.example.com/', trust: ['updates.pub'] });
    expect(readUpdateSettings(managed, 'linux', { trustOwner: true })).toMatchObject({ kind: 'invalid', error: expect.stringContaining('https://') });
    write({ url: 'https://updates.example.com/', trust: ['../home/me/my.pub'] });
    expect(readUpdateSettings(managed, 'linux', { trustOwner: true })).toMatchObject({ kind: 'invalid', error: expect.stringContaining('no path') });
    write({ url: 'https://updates.example.com/', trust: ['updates.pub'], pin: 'latest' });
    expect(readUpdateSettings(managed, 'linux', { trustOwner: true })).toMatchObject({ kind: 'invalid', error: expect.stringContaining('pin') });
    expect(readUpdateSettings(join(dir, 'nowhere'), 'linux')).toEqual({ kind: 'absent' });
    if (process.getuid?.() === 0) {
      execFileSync('chown', ['nobody', join(managed, 'updates.json')]);
      expect(readUpdateSettings(managed, 'linux')).toMatchObject({ kind: 'invalid', error: expect.stringContaining('not root') });
    }
  });
});

/** Node's http client in the place of Electron's net, which cannot run here (the same shape as electron-updater's own executor). */
class NodeHttpExecutor extends HttpExecutor<ClientRequest> {
  createRequest(options: RequestOptions, callback: (response: IncomingMessage) => void): ClientRequest {
    return request(options, callback);
  }
  download(url: URL, destination: string, options: DownloadOptions): Promise<string> {
    return options.cancellationToken.createPromise((resolve, reject, onCancel) => {
      const requestOptions = { headers: options.headers || undefined };
      configureRequestUrl(url, requestOptions);
      configureRequestOptions(requestOptions);
      this.doDownload(
        requestOptions,
        { destination, options, onCancel, callback: (error) => (error ? reject(error) : resolve(destination)), responseHandler: null },
        0,
      );
    });
  }
}

function debUpdater(cache: string): DebUpdater {
  const app = {
    version: '1.2.0',
    name: 'Gatehouse',
    isPackaged: true,
    appUpdateConfigPath: join(cache, 'app-update.yml'),
    userDataPath: cache,
    baseCachePath: cache,
    whenReady: async () => undefined,
    relaunch: () => undefined,
    quit: () => undefined,
    onQuit: () => undefined,
  };
  // What electron-builder writes into the packaged app (electron-builder.yml's publish): where the updater keeps its downloads.
  writeFileSync(app.appUpdateConfigPath, 'provider: generic\nurl: https://updates.invalid/gatehouse\nupdaterCacheDirName: gatehouse-updater\n');
  const updater = new DebUpdater(null, app);
  (updater as unknown as { httpExecutor: HttpExecutor<ClientRequest> }).httpExecutor = new NodeHttpExecutor();
  updater.logger = null;
  updater.autoDownload = false;
  updater.autoInstallOnAppQuit = false;
  return updater;
}

describe('electron-updater, fed only what the gate verified', () => {
  it('downloads the signed version through the verified provider, and the file matches the signed digest', async () => {
    publish('real', manifest('1.3.0', new Date(Date.now() - 3 * DAY).toISOString()));
    const checked = gate('real');
    expect(await checked.check()).toMatchObject({ kind: 'available' });
    const cache = mkdtempSync(join(dir, 'cache-'));
    const updater = debUpdater(cache);
    updater.setFeedURL({ provider: 'custom', updateProvider: VerifiedFeedProvider, gate: checked } as never);
    const result = await updater.checkForUpdates();
    expect(result?.isUpdateAvailable).toBe(true);
    expect(result?.updateInfo.version).toBe('1.3.0');
    const [downloaded] = await updater.downloadUpdate();
    expect(readFileSync(downloaded!)).toEqual(installer);
    expect(await checked.verifyDownload(downloaded!)).toBe(true);
    writeFileSync(downloaded!, Buffer.from('tampered on disk'));
    expect(await checked.verifyDownload(downloaded!)).toBe(false);
  });

  it('offers nothing to electron-updater when the gate refused the feed', async () => {
    publish('refused', manifest('1.3.0', new Date(Date.now() - 3 * DAY).toISOString()), strangerKey.privateKey);
    const refused = gate('refused');
    expect(await refused.check()).toMatchObject({ kind: 'refused' });
    const updater = debUpdater(mkdtempSync(join(dir, 'cache-')));
    updater.setFeedURL({ provider: 'custom', updateProvider: VerifiedFeedProvider, gate: refused } as never);
    await expect(updater.checkForUpdates()).rejects.toThrow(/no verified update/);
  });

  it('refuses a download whose bytes are not the ones the signed manifest names', async () => {
    publish('swapped', manifest('1.3.0', new Date(Date.now() - 3 * DAY).toISOString()));
    const checked = gate('swapped');
    expect(await checked.check()).toMatchObject({ kind: 'available' });
    // The server swaps the installer after the manifest was signed: electron-updater's own sha512 check refuses it.
    files.set('/swapped/gatehouse_1.3.0_amd64.deb', Buffer.from('a different installer'));
    const updater = debUpdater(mkdtempSync(join(dir, 'cache-')));
    updater.setFeedURL({ provider: 'custom', updateProvider: VerifiedFeedProvider, gate: checked } as never);
    await updater.checkForUpdates();
    await expect(updater.downloadUpdate()).rejects.toThrow(/sha512|checksum|size/i);
  });
});
