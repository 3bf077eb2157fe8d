/**
 * `gatehouse login`, `logout` and `whoami`: the user's sign-in with their organisation's identity
 * provider. The browser flow (or the device flow) runs here; the refresh token goes to the OS
 * keychain and nowhere else; the running daemon is then asked to load it, which resumes calls a
 * lapsed sign-in had blocked, without restarting anything.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GatehouseError, errorMessage } from '../common/errors.js';
import type { IdentityStatus } from '../common/status.js';
import type { SecretStore } from '../core/secrets.js';
import { callControl } from '../node/control/control-client.js';
import { OidcClient, noRefreshToken, type TokenSet } from '../node/identity/oidc.js';
import { openBrowser } from '../node/human/open-browser.js';
import { loadIdentitySettings, type IdentitySettings } from '../node/identity/settings.js';
import { TokenStore } from '../node/identity/token-store.js';
import { openUserKeyStore } from './keystore.js';
import type { GatehousePaths } from '../node/paths.js';
import { managedDirFor } from '../node/policy/settings.js';

export { openBrowser };

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** How to run this Gatehouse by absolute path (the packaged app passes its command; default: this Node and bin script). */
  self?: { command: string; args: string[] };
}

export const LOGIN_HELP = `Usage:
  gatehouse login [--device] [--no-browser]
  gatehouse logout [--no-browser]
  gatehouse whoami [--json]

login    signs in with your organisation's identity provider (set in identity.json; see
         docs/identity.md): your browser opens the provider's page and comes back to Gatehouse on
         127.0.0.1. --device shows a code to enter on another device instead (no browser here);
         --no-browser prints the address instead of opening it. The refresh token is kept in the OS
         keychain; the running daemon picks the sign-in up at once.
logout   revokes the sign-in at the provider, forgets it, and opens the provider's sign-out page
         where it has one. With the daemon running, your sign-ins to remote servers (gatehouse
         servers login) are revoked and forgotten first.
whoami   who calls are made as, your groups, and when the session is next renewed.`;

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses options; a mistake is a one-line usage error (exit 2). */
export function parseOptions(
  args: string[],
  options: Options,
): { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true as const, strict: true as const });
  } catch (error) {
    throw new GatehouseError(
      'usage',
      errorMessage(error)
        .replace(/\. To specify.*$/s, '')
        .replace(/\s*\n\s*/g, ' '),
    );
  }
}

function settingsFor(paths: GatehousePaths): IdentitySettings {
  const loaded = loadIdentitySettings({ managedDir: managedDirFor(process.platform), configDir: paths.configDir });
  if (loaded.kind === 'none') {
    throw new GatehouseError(
      'no_identity_provider',
      `no identity provider is configured: write ${paths.configDir}/identity.json (see docs/identity.md), or ask your administrator`,
    );
  }
  if (loaded.kind === 'invalid') throw new GatehouseError('identity_settings_invalid', loaded.error);
  return loaded.settings;
}

async function tellDaemon(paths: GatehousePaths): Promise<IdentityStatus | undefined> {
  try {
    return (await callControl(paths.controlSocketPath, 'identity.reload', {}, 30_000)) as IdentityStatus;
  } catch (error) {
    if (error instanceof GatehouseError && error.code === 'daemon_not_running') return undefined;
    throw error;
  }
}

export async function loginCommand(
  command: 'login' | 'logout' | 'whoami',
  args: string[],
  io: Io,
  paths: GatehousePaths,
  store?: SecretStore,
): Promise<number> {
  const { values } = parseOptions(args, { device: { type: 'boolean' }, 'no-browser': { type: 'boolean' }, json: { type: 'boolean' } });
  if (values.help) {
    io.out(LOGIN_HELP + '\n');
    return 0;
  }
  const keychain = store ?? (await openUserKeyStore(paths));
  const say = (line: string): void => io.err(line + '\n');
  const open = values['no-browser'] ? async () => false : (url: string) => openBrowser(url, io.env);

  if (command === 'whoami') {
    let status: IdentityStatus | undefined;
    try {
      status = (await callControl(paths.controlSocketPath, 'identity.status', {}, 10_000)) as IdentityStatus;
    } catch (error) {
      if (!(error instanceof GatehouseError && error.code === 'daemon_not_running')) throw error;
    }
    if (!status) {
      const loaded = loadIdentitySettings({ managedDir: managedDirFor(process.platform), configDir: paths.configDir });
      if (loaded.kind !== 'ok')
        status = {
          mode: loaded.kind === 'none' ? 'os' : 'oidc',
          state: loaded.kind === 'none' ? 'local' : 'misconfigured',
          ...(loaded.kind === 'invalid' ? { reason: loaded.error } : {}),
        };
      else {
        const stored = await new TokenStore(keychain, loaded.settings.issuer, loaded.settings.clientId).load();
        status = stored
          ? {
              mode: 'oidc',
              state: 'signed-out',
              issuer: stored.issuer,
              user: stored.displayName,
              notice: 'a sign-in is stored; the daemon is not running, so it is not in use',
            }
          : { mode: 'oidc', state: 'signed-out', issuer: loaded.settings.issuer, notice: 'not signed in; run `gatehouse login`' };
      }
    }
    if (values.json) io.out(JSON.stringify(status, null, 2) + '\n');
    else io.out(describeIdentity(status).join('\n') + '\n');
    return 0;
  }

  const settings = settingsFor(paths);
  const tokens = new TokenStore(keychain, settings.issuer, settings.clientId);

  if (command === 'logout') {
    let revoked = false;
    let viaDaemon = false;
    try {
      revoked = ((await callControl(paths.controlSocketPath, 'identity.logout', {}, 30_000)) as { revoked: boolean }).revoked;
      viaDaemon = true;
    } catch (error) {
      if (!(error instanceof GatehouseError && error.code === 'daemon_not_running')) throw error;
    }
    let client: OidcClient | undefined;
    if (!viaDaemon) {
      const stored = await tokens.load();
      if (stored) {
        try {
          client = await OidcClient.discover(settings);
          revoked = await client.revoke(stored.refreshToken, 'refresh_token');
        } catch (error) {
          say(`gatehouse logout: could not revoke the sign-in at the provider (${errorMessage(error)}); it is forgotten here all the same`);
        }
        await tokens.clear();
      }
    }
    io.out(`signed out${revoked ? ' (the provider revoked the session)' : ''}\n`);
    try {
      client ??= await OidcClient.discover(settings);
      const end = client.endSessionUrl(undefined);
      if (end && !(await open(end.href))) say(`To end your session at the provider too, open:\n  ${end.href}`);
    } catch {
      // No end-session page, or the provider cannot be reached: nothing more to do.
    }
    return 0;
  }

  // login: the keychain must work before anyone types a password.
  await keychain.list();
  const client = await OidcClient.discover(settings);
  let status: IdentityStatus | undefined;
  /** Keeps the sign-in and tells the daemon; in the browser flow, while the tab waits to show how it went. */
  const keep = async (result: TokenSet): Promise<string> => {
    if (!result.refreshToken) throw noRefreshToken(settings);
    const user = result.user!;
    await tokens.save({ refreshToken: result.refreshToken, sub: user.sub, displayName: user.displayName });
    status = await tellDaemon(paths);
    return `Signed in to Gatehouse as ${user.displayName}.`;
  };
  const result = values.device
    ? await client.loginWithDevice({ openBrowser: open, say })
    : await client.loginWithBrowser({ openBrowser: open, say }, { accept: keep });
  if (values.device) await keep(result);
  const user = result.user!;
  io.out(`signed in as ${user.displayName}${user.groups.length ? ` (groups: ${user.groups.join(', ')})` : ''}\n`);
  say(`gatehouse login: the sign-in is kept in ${keychain.description}`);
  const after = status as IdentityStatus | undefined;
  if (after && after.state !== 'active') say(`gatehouse login: the daemon could not use the sign-in yet: ${after.notice ?? after.reason ?? after.state}`);
  return 0;
}

export function describeIdentity(status: IdentityStatus): string[] {
  if (status.mode === 'os') return ['no identity provider configured: calls are made as the OS user (unmanaged)'];
  const lines = [`identity: ${status.user ?? '(nobody)'} — ${status.state}${status.issuer ? ` at ${status.issuer}` : ''}`];
  if (status.groups) lines.push(`groups: ${status.groups.length ? status.groups.join(', ') : '(none)'}`);
  if (status.roles) {
    lines.push(`roles: ${status.roles.length ? status.roles.join(', ') : '(none: the managed policy permits you nothing; ask your administrator)'}`);
  }
  if (status.accessTokenExpiresAt) lines.push(`session renewed until ${status.accessTokenExpiresAt}`);
  if (status.notice) lines.push(status.notice);
  return lines;
}
