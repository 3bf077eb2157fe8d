/**
 * The bundle file as a desktop checks it: signatures, keys and key rotation, versions, expiry,
 * every file against the signed manifest, and the content. Each refusal has its own reason code
 * and names what is wrong. Bundles are signed here with keys made for the test.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyBundle, type TrustState } from '../../src/node/policy/bundle-file.js';
import { CedarEngine } from '../../src/node/policy/cedar.js';
import type { PublicKeyInfo } from '../../src/node/policy/keys.js';
import { bundleJson, keyListOf, makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';

const cedar = new CedarEngine();
let root: TestKey;
let other: TestKey;

beforeAll(async () => {
  root = await makeKey();
  other = await makeKey();
});

function check(bytes: Buffer, options: { roots?: PublicKeyInfo[]; state?: TrustState; now?: number } = {}) {
  return verifyBundle(bytes, {
    roots: options.roots ?? [root.public],
    state: options.state ?? {},
    now: options.now ?? Date.now(),
    cedar,
    dataDir: '/tmp/gh-data',
  });
}

function reencode(bytes: Buffer, edit: (doc: ReturnType<typeof bundleJson>) => void): Buffer {
  const doc = bundleJson(bytes);
  edit(doc);
  return Buffer.from(JSON.stringify(doc));
}

describe('a signed bundle', () => {
  it('is accepted with its version, times, signer and compiled policies', async () => {
    const result = await check(await signFiles(sampleFiles(), { version: 3, keys: [root] }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.bundle.manifest.version).toBe(3);
    expect(result.bundle.signedBy).toEqual([root.public.kid]);
    expect([...result.bundle.policies.keys()]).toContain('support-refund-large');
    expect(result.bundle.content.catalog.servers.get('crm')!.tools.get('refund')!.scale).toEqual({ amount: 2 });
  });

  it('refuses a file changed after signing (tampered_file)', async () => {
    const bytes = reencode(await signFiles(sampleFiles(), { version: 1, keys: [root] }), (doc) => {
      doc.files['policies.cedar'] = Buffer.from('permit (principal, action, resource);').toString('base64');
    });
    expect(await check(bytes)).toMatchObject({
      ok: false,
      code: 'tampered_file',
      reason: expect.stringContaining('policies.cedar does not match its signed hash'),
    });
  });

  it('refuses an extra file that the manifest does not sign (extra_file)', async () => {
    const bytes = reencode(await signFiles(sampleFiles(), { version: 1, keys: [root] }), (doc) => {
      doc.files['zz-allow-all.cedar'] = Buffer.from('permit (principal, action, resource);').toString('base64');
    });
    expect(await check(bytes)).toMatchObject({
      ok: false,
      code: 'extra_file',
      reason: expect.stringContaining('zz-allow-all.cedar is in the bundle but not in the signed manifest'),
    });
  });

  it('refuses a bundle with a signed file missing (missing_file)', async () => {
    const bytes = reencode(await signFiles(sampleFiles(), { version: 1, keys: [root] }), (doc) => {
      delete doc.files['roles.json'];
    });
    expect(await check(bytes)).toMatchObject({ ok: false, code: 'missing_file', reason: expect.stringContaining('roles.json') });
  });

  it('refuses a manifest altered after signing (bad_signature)', async () => {
    const signed = await signFiles(sampleFiles(), { version: 1, keys: [root] });
    const bytes = reencode(signed, (doc) => {
      const manifest = JSON.parse(Buffer.from(doc.manifest.payload, 'base64url').toString('utf8')) as { version: number };
      manifest.version = 99;
      doc.manifest.payload = Buffer.from(JSON.stringify(manifest)).toString('base64url');
    });
    expect(await check(bytes)).toMatchObject({
      ok: false,
      code: 'bad_signature',
      reason: expect.stringContaining(`signature by key ${root.public.kid} does not verify`),
    });
  });

  it('refuses a bundle signed by a key the desktop does not trust (untrusted_key)', async () => {
    const result = await check(await signFiles(sampleFiles(), { version: 1, keys: [other] }));
    expect(result).toMatchObject({ ok: false, code: 'untrusted_key', reason: expect.stringContaining(other.public.kid) });
  });

  it('refuses a bundle whose version is lower than the installed one (rollback)', async () => {
    const result = await check(await signFiles(sampleFiles(), { version: 4, keys: [root] }), { state: { version: 5, digest: 'x' } });
    expect(result).toMatchObject({ ok: false, code: 'rollback', reason: expect.stringContaining('v4 is older than v5') });
  });

  it('refuses a different bundle under the version already installed (rollback)', async () => {
    const result = await check(await signFiles(sampleFiles(), { version: 5, keys: [root] }), { state: { version: 5, digest: 'not-this-one' } });
    expect(result).toMatchObject({ ok: false, code: 'rollback', reason: expect.stringContaining('needs a higher version') });
  });

  it('accepts the installed bundle again (a restart re-reads it)', async () => {
    const bytes = await signFiles(sampleFiles(), { version: 5, keys: [root] });
    const first = await check(bytes);
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect((await check(bytes, { state: { version: 5, digest: first.bundle.digest } })).ok).toBe(true);
  });

  it('refuses an expired bundle (expired)', async () => {
    const issuedAt = new Date(Date.now() - 10 * 86_400_000);
    const bytes = await signFiles(sampleFiles(), { version: 1, keys: [root], issuedAt, expiresAt: new Date(Date.now() - 86_400_000) });
    expect(await check(bytes)).toMatchObject({ ok: false, code: 'expired', reason: expect.stringContaining('bundle v1 expired at') });
  });

  it('refuses a bundle issued in the future beyond clock skew (not_yet_valid)', async () => {
    const issuedAt = new Date(Date.now() + 3_600_000);
    const bytes = await signFiles(sampleFiles(), { version: 1, keys: [root], issuedAt });
    expect(await check(bytes)).toMatchObject({ ok: false, code: 'not_yet_valid' });
  });

  it('refuses invalid Cedar with the file and line (invalid_cedar)', async () => {
    const files = sampleFiles({ files: { 'policies.cedar': 'permit (principal, action, resource) when { resource.read_onyl };' } });
    const result = await check(await signFiles(files, { version: 1, keys: [root] }));
    expect(result).toMatchObject({ ok: false, code: 'invalid_cedar', reason: expect.stringContaining('read_onyl') });
    const syntax = await check(
      await signFiles(sampleFiles({ files: { 'policies.cedar': 'permit (principal, action, resource) when {' } }), { version: 1, keys: [root] }),
    );
    expect(syntax).toMatchObject({ ok: false, code: 'invalid_cedar', reason: expect.stringMatching(/policies\.cedar: line 1:\d+/) });
  });

  it('refuses a catalog without pinned hashes (invalid_content)', async () => {
    const files = sampleFiles({ catalog: (c) => void (c.servers.crm!.tools.refund!.sha256 = 'abc') });
    expect(await check(await signFiles(files, { version: 1, keys: [root] }))).toMatchObject({
      ok: false,
      code: 'invalid_content',
      reason: expect.stringContaining('catalog.json: servers.crm.tools.refund.sha256'),
    });
  });

  it('refuses a file that is not a bundle (malformed)', async () => {
    expect(await check(Buffer.from('{"hello": 1}'))).toMatchObject({ ok: false, code: 'malformed' });
    expect(await check(Buffer.from('not json'))).toMatchObject({ ok: false, code: 'malformed' });
  });

  it('accepts a bundle signed by several keys when one of them is trusted', async () => {
    const result = await check(await signFiles(sampleFiles(), { version: 1, keys: [other, root] }));
    expect(result).toMatchObject({ ok: true });
    if (result.ok) expect(result.bundle.signedBy).toEqual([root.public.kid]);
  });
});

describe('key rotation through a signed key list', () => {
  it('accepts a bundle signed by a key that a root key lists, and records the key list version', async () => {
    const signer = await makeKey();
    const bytes = await signFiles(sampleFiles(), { version: 1, keys: [signer], keyList: await keyListOf(root, [signer], 1) });
    const result = await check(bytes);
    expect(result).toMatchObject({ ok: true, keyList: { version: 1, signedBy: root.public.kid } });
  });

  it('rotates: a new signing key in a newer key list works, and the old key stops working once dropped', async () => {
    const oldKey = await makeKey();
    const newKey = await makeKey();
    const listV2 = await keyListOf(root, [newKey], 2);
    // The desktop has accepted key list v2 (which dropped the old key).
    const state: TrustState = { keyListVersion: 2 };
    expect(await check(await signFiles(sampleFiles(), { version: 2, keys: [newKey], keyList: listV2 }), { state })).toMatchObject({ ok: true });
    // The old key with the new list: not listed.
    expect(await check(await signFiles(sampleFiles(), { version: 3, keys: [oldKey], keyList: listV2 }), { state })).toMatchObject({
      ok: false,
      code: 'untrusted_key',
    });
    // The old key with the old list that still named it: that list is older than the one accepted.
    const listV1 = await keyListOf(root, [oldKey], 1);
    expect(await check(await signFiles(sampleFiles(), { version: 3, keys: [oldKey], keyList: listV1 }), { state })).toMatchObject({
      ok: false,
      code: 'rollback',
      reason: expect.stringContaining('key list is v1, older than v2'),
    });
  });

  it('refuses another key list with the version already accepted, as it refuses another bundle of the same version (rollback)', async () => {
    const kept = await makeKey();
    const added = await makeKey();
    const list = await keyListOf(root, [kept], 3);
    const accepted = await check(await signFiles(sampleFiles(), { version: 1, keys: [kept], keyList: list }));
    expect(accepted).toMatchObject({ ok: true, keyList: { version: 3, digest: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    const state: TrustState = { keyListVersion: 3, keyListDigest: (accepted as { keyList: { digest: string } }).keyList.digest };
    // The very same list again (a later bundle carrying it): fine.
    const same = await signFiles(sampleFiles(), { version: 2, keys: [kept], keyList: list });
    expect(await check(same, { state })).toMatchObject({ ok: true });
    // A different list under the same version (one more key): refused, whichever key signs the bundle.
    const widened = await keyListOf(root, [kept, added], 3);
    for (const signer of [added, kept]) {
      expect(await check(await signFiles(sampleFiles(), { version: 2, keys: [signer], keyList: widened }), { state })).toMatchObject({
        ok: false,
        code: 'rollback',
        reason: 'the key list v3 differs from the v3 this machine already accepted; a changed key list needs a higher version',
      });
    }
    // The change under a higher version is how a key list changes.
    expect(
      await check(await signFiles(sampleFiles(), { version: 2, keys: [added], keyList: await keyListOf(root, [kept, added], 4) }), { state }),
    ).toMatchObject({ ok: true });
  });

  it('refuses a key list signed by a key that is not a root (untrusted_key)', async () => {
    const signer = await makeKey();
    const bytes = await signFiles(sampleFiles(), { version: 1, keys: [signer], keyList: await keyListOf(other, [signer], 1) });
    expect(await check(bytes)).toMatchObject({ ok: false, code: 'untrusted_key', reason: expect.stringContaining('key list is signed by key') });
  });

  it('refuses an expired key list (expired)', async () => {
    const signer = await makeKey();
    const list = await keyListOf(root, [signer], 1, new Date(Date.now() + 1000));
    const bytes = await signFiles(sampleFiles(), { version: 1, keys: [signer], keyList: list });
    expect(await check(bytes, { now: Date.now() + 5000 })).toMatchObject({ ok: false, code: 'expired', reason: expect.stringContaining('key list') });
  });

  it('does not take a key list for a manifest signature (the typ header tells them apart)', async () => {
    const signed = await signFiles(sampleFiles(), { version: 1, keys: [root] });
    const list = await keyListOf(root, [other], 1);
    const [protectedHeader, payload, signature] = list.split('.') as [string, string, string];
    // Graft the root-signed key list in as if it were a manifest signature over its own payload.
    const bytes = reencode(signed, (doc) => {
      doc.manifest = { payload, signatures: [{ protected: protectedHeader, signature }] };
    });
    expect(await check(bytes)).toMatchObject({ ok: false, code: 'bad_signature', reason: expect.stringContaining('typ') });
  });
});
