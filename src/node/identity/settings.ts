/**
 * Where Gatehouse learns which identity provider the user signs in with: `identity.json`.
 *
 * When an organisation manages the device (its policy settings are in the managed location,
 * /etc/gatehouse and friends), only the managed `identity.json` there counts, and it must be owned
 * by root and not writable by others: otherwise a user could point Gatehouse at an IdP of their
 * own and mint any group claim. Unmanaged, the user's own `identity.json` in the config directory
 * is used (there the user owns the policy anyway). See docs/identity.md.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { formatPath } from '../../common/config.js';
import { entryExists } from '../paths.js';
import { managedFileProblem } from '../policy/settings.js';

export const IDENTITY_FILE = 'identity.json';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export const IdentitySettingsSchema = z
  .object({
    /** The issuer identifier; discovery reads `<issuer>/.well-known/openid-configuration`. */
    issuer: z
      .string()
      .url()
      .refine((u) => {
        const url = new URL(u);
        return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
      }, 'the issuer must be https:// (http:// only on 127.0.0.1, for tests)'),
    /** The client id of Gatehouse's registration at the IdP: a public, native client. */
    clientId: z.string().min(1).max(300),
    /**
     * Only for providers that insist on one for desktop apps (Google): such a "secret" ships inside
     * every copy of the app and protects nothing; PKCE does. Leave it out everywhere else.
     */
    clientSecret: z.string().min(1).max(500).optional(),
    /** The redirect's host: `127.0.0.1` (RFC 8252's advice), or `localhost` where the IdP only accepts that (Entra ID). */
    loopbackHost: z.enum(['127.0.0.1', 'localhost']).default('127.0.0.1'),
    /** The redirect's port: 0 picks a free one for each sign-in; a fixed one only for IdPs that match ports exactly. */
    loopbackPort: z.number().int().min(0).max(65_535).default(0),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope is printable ASCII without spaces, quotes or backslashes'))
      .max(50)
      .default(['openid', 'profile', 'email', 'offline_access']),
    /** The ID token claim that holds the user's groups (a list of strings, or one string). */
    groupsClaim: z.string().min(1).max(200).default('groups'),
    /** The claims tried in order for the user's name in status and audit records. */
    userClaims: z.array(z.string().min(1).max(200)).min(1).max(10).default(['email', 'preferred_username', 'upn', 'sub']),
    /** Extra authorization request parameters some providers need (Google: access_type=offline; Auth0: audience). */
    authorizationParams: z.record(z.string().regex(/^[a-z_]+$/), z.string().max(1000)).default({}),
    /** Clock tolerance when checking ID token times, in seconds. */
    clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
    /** How long before the access token expires it is refreshed, in seconds. */
    refreshMarginSeconds: z.number().int().min(1).max(3600).default(60),
    /** Open the provider's end-session page at `gatehouse logout` when it offers one. */
    rpInitiatedLogout: z.boolean().default(true),
    /**
     * Enterprise-managed authorization (ID-JAG, docs/remote-servers.md): the remote servers whose
     * authorization servers trust this IdP, so that the user's sign-in is exchanged for their tokens
     * with no consent screen. Honoured only in the managed identity.json.
     */
    enterpriseAuthorization: z
      .object({
        upstreams: z
          .array(
            z
              .object({
                /** The server's resource identifier as its protected resource metadata names it (or a prefix of it), https. */
                resource: z
                  .string()
                  .url()
                  .regex(/^https:\/\/|^http:\/\/(127\.0\.0\.1|localhost)[:/]/, 'the resource must be https:// (http:// only on 127.0.0.1, for tests)'),
                /** Gatehouse's client id at that server's authorization server. */
                clientId: z.string().min(1).max(500),
              })
              .strict(),
          )
          .max(200),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!s.scopes.includes('openid')) ctx.addIssue({ code: 'custom', path: ['scopes'], message: 'the scopes must include "openid"' });
    const reserved = ['state', 'nonce', 'code_challenge', 'code_challenge_method', 'redirect_uri', 'client_id', 'response_type', 'scope'];
    for (const key of Object.keys(s.authorizationParams)) {
      if (reserved.includes(key)) {
        ctx.addIssue({ code: 'custom', path: ['authorizationParams', key], message: `"${key}" is set by Gatehouse and cannot be overridden` });
      }
    }
  });
export type IdentitySettings = z.infer<typeof IdentitySettingsSchema>;

export type IdentitySettingsResult =
  { kind: 'none' } | { kind: 'ok'; settings: IdentitySettings; file: string; source: 'managed' | 'user' } | { kind: 'invalid'; file: string; error: string };

export interface IdentitySettingsOptions {
  /** The managed location (policy settings and a managed identity.json). */
  managedDir: string;
  /** The user's config directory. */
  configDir: string;
  platform?: NodeJS.Platform;
  /** Tests only: skip the root-ownership check of the managed file (tests cannot run as another user). */
  trustManagedOwner?: boolean;
}

function ownershipProblem(file: string, platform: NodeJS.Platform): string | undefined {
  return managedFileProblem(file, platform, 'a user who can change it could name an identity provider of their own');
}

export function parseIdentitySettings(raw: unknown, file: string): { ok: true; settings: IdentitySettings } | { ok: false; error: string } {
  const parsed = IdentitySettingsSchema.safeParse(raw);
  if (parsed.success) return { ok: true, settings: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, error: `${file}: ${formatPath(issue.path)}: ${issue.message.replace(/^Invalid input: /, '')}` };
}

export function loadIdentitySettings(options: IdentitySettingsOptions): IdentitySettingsResult {
  const platform = options.platform ?? process.platform;
  const managedFile = path.join(options.managedDir, IDENTITY_FILE);
  const managed = entryExists(path.join(options.managedDir, 'policy.json')) || entryExists(managedFile);
  const file = managed ? managedFile : path.join(options.configDir, IDENTITY_FILE);
  if (!entryExists(file)) return { kind: 'none' };
  try {
    if (managed && !options.trustManagedOwner) {
      for (const checked of [options.managedDir, file]) {
        const problem = ownershipProblem(checked, platform);
        if (problem) return { kind: 'invalid', file, error: problem };
      }
    }
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      return { kind: 'invalid', file, error: `${file}: not valid JSON (${(error as Error).message})` };
    }
    const result = parseIdentitySettings(raw, file);
    if (!result.ok) return { kind: 'invalid', file, error: result.error };
    return { kind: 'ok', settings: result.settings, file, source: managed ? 'managed' : 'user' };
  } catch (error) {
    return { kind: 'invalid', file, error: `${file}: ${(error as Error).message}` };
  }
}
