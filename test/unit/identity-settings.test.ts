/**
 * Where the identity provider is configured. An organisation's managed location wins, and there
 * only a root-owned file counts: a user who could point Gatehouse at an IdP of their own could
 * mint any group claim. Unmanaged, the user's own identity.json is used.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { groupsFrom } from '../../src/node/identity/oidc.js';
import { IdentitySettingsSchema, loadIdentitySettings } from '../../src/node/identity/settings.js';

const dirs: string[] = [];
function tree(): { managedDir: string; configDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'gh-idset-'));
  dirs.push(root);
  const managedDir = join(root, 'etc-gatehouse');
  const configDir = join(root, 'config');
  mkdirSync(configDir);
  return { managedDir, configDir };
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const good = { issuer: 'https://login.example.com/oauth2/default', clientId: '0oa1' };

describe('identity settings', () => {
  it('uses nothing when no identity.json exists: calls are made as the OS user', () => {
    expect(loadIdentitySettings(tree())).toEqual({ kind: 'none' });
  });

  it("uses the user's identity.json when the device is not managed, with defaults filled in", () => {
    const t = tree();
    writeFileSync(join(t.configDir, 'identity.json'), JSON.stringify(good));
    const loaded = loadIdentitySettings(t);
    expect(loaded).toMatchObject({
      kind: 'ok',
      source: 'user',
      settings: { ...good, groupsClaim: 'groups', scopes: ['openid', 'profile', 'email', 'offline_access'], clockToleranceSeconds: 30 },
    });
  });

  it("ignores the user's identity.json on a managed device, and refuses a managed one not owned by root", () => {
    const t = tree();
    mkdirSync(t.managedDir);
    writeFileSync(join(t.managedDir, 'policy.json'), '{}');
    writeFileSync(join(t.configDir, 'identity.json'), JSON.stringify({ issuer: 'https://my-own-idp.example', clientId: 'mine' }));
    // Only the managed location counts, and there is no identity.json there.
    expect(loadIdentitySettings(t)).toEqual({ kind: 'none' });
    writeFileSync(join(t.managedDir, 'identity.json'), JSON.stringify(good));
    const loaded = loadIdentitySettings(t);
    if (process.getuid?.() === 0) {
      // Tests run as root here, so the files are root's: the mode check still applies.
      expect(loaded).toMatchObject({ kind: 'ok', source: 'managed', settings: good });
    } else {
      expect(loaded).toMatchObject({
        kind: 'invalid',
        error: expect.stringMatching(/not root; a user who can change it could name an identity provider of their own/),
      });
    }
  });

  it('refuses an http issuer other than loopback, scopes without openid, and overriding the parameters Gatehouse sets', () => {
    const issue = (input: object) => IdentitySettingsSchema.safeParse({ ...good, ...input }).error?.issues[0]?.message;
    expect(issue({ issuer: 'http://idp.example' })).toBe('the issuer must be https:// (http:// only on 127.0.0.1, for tests)');
    expect(IdentitySettingsSchema.safeParse({ ...good, issuer: 'http://127.0.0.1:8080' }).success).toBe(true);
    expect(issue({ scopes: ['profile'] })).toBe('the scopes must include "openid"');
    expect(issue({ authorizationParams: { nonce: 'fixed' } })).toBe('"nonce" is set by Gatehouse and cannot be overridden');
  });

  it('reports a malformed file with its path', () => {
    const t = tree();
    writeFileSync(join(t.configDir, 'identity.json'), '{ not json');
    expect(loadIdentitySettings(t)).toMatchObject({ kind: 'invalid', error: expect.stringMatching(/identity\.json: not valid JSON/) });
  });
});

describe('the groups claim', () => {
  it('takes a list of strings or one string, and nothing else', () => {
    expect(groupsFrom({ groups: ['b', 'a', 'a', 7] }, 'groups')).toEqual(['a', 'b']);
    expect(groupsFrom({ roles: 'admin' }, 'roles')).toEqual(['admin']);
    expect(groupsFrom({ groups: { admin: true } }, 'groups')).toEqual([]);
    expect(groupsFrom({}, 'groups')).toEqual([]);
  });
});
